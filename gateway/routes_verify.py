"""POST /v1/verify: the verification report of a signed PDF (API.md). Open by default
(rate-limited per address by the auth middleware); a setting can require a token."""

from __future__ import annotations

import datetime as dt
import json

from aiohttp import web

from .body import read_upload
from .keys import APP_STATE
from .work import spooling, while_connected

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.post("/v1/verify")
async def verify(request: web.Request) -> web.Response:
    state = request.app[APP_STATE]
    upload = await read_upload(
        request, state.settings.service.max_upload_bytes, spooling=spooling(state)
    )
    now = dt.datetime.now(dt.UTC)
    try:
        if upload.path is None:
            report = await while_connected(request, state.pool.verify(upload.data, now))
        else:
            report = await while_connected(request, state.pool.verify_file(upload.path, now))
    finally:
        await upload.release()
    state.metrics.verifications.labels("valid" if report["valid"] else "not_valid").inc()
    return web.json_response(report, dumps=_dumps)


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)
