"""GET /v1/agencies (any token), POST /v1/agencies (admin)."""

from __future__ import annotations

import datetime as dt
import json

from aiohttp import web

from exchange.agencies import AgencyError
from exchange.models import Role

from .keys import APP_STATE, PRINCIPAL
from .problems import Problem

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/v1/agencies")
async def list_agencies(request: web.Request) -> web.Response:
    agencies = await request.app[APP_STATE].registry.list_agencies()
    return web.json_response(
        {"agencies": agencies}, dumps=lambda v: json.dumps(v, ensure_ascii=False)
    )


@routes.post("/v1/agencies")
async def add_agency(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    principal.require(Role.ADMIN)
    if request.content_length is not None and request.content_length > 64 * 1024:
        raise Problem(413, "too_large", "the body is larger than 64 KiB")
    try:
        body = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Problem(422, "invalid_agency", "the body must be a JSON object") from None
    if not isinstance(body, dict) or set(body) - {"code", "name", "parent"}:
        raise Problem(422, "invalid_agency", 'send {"code", "name", "parent"} only')
    try:
        agency = await request.app[APP_STATE].registry.add_agency(
            body.get("code"),
            body.get("name"),
            body.get("parent"),
            actor=principal.label,
            now=dt.datetime.now(dt.UTC),
        )
    except AgencyError as exc:
        raise Problem(exc.status, exc.code, exc.detail, field=exc.field) from None
    return web.json_response(agency, status=201, dumps=lambda v: json.dumps(v, ensure_ascii=False))
