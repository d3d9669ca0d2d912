"""POST /v1/verify: the verification report of a signed PDF (API.md). Open by default
(rate-limited per address by the auth middleware); a setting can require a token."""

from __future__ import annotations

import datetime as dt
import json

from aiohttp import web

from .body import read_upload
from .keys import APP_STATE

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.post("/v1/verify")
async def verify(request: web.Request) -> web.Response:
    state = request.app[APP_STATE]
    upload = await read_upload(request, state.settings.service.max_upload_bytes)
    now = dt.datetime.now(dt.UTC)
    report = await state.pool.verify(upload.data, now)
    state.metrics.verifications.labels("valid" if report["valid"] else "not_valid").inc()
    return web.json_response(report, dumps=_dumps)


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)
