"""GET /v1/reports/e-exchange/{month}.pdf (admin, auditor): the month's report as a PDF
signed at B-LT by the gateway's report key (``reports.signing_agency``; development:
the first demo agency)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib

from aiohttp import web

from exchange.models import Role
from exchange.reports import get_report, month_bounds
from exchange.uow import UnitOfWork

from .keys import APP_STATE, PRINCIPAL
from .problems import Problem
from .report_task import render_and_sign_report

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get(r"/v1/reports/e-exchange/{month:\d{4}-\d{2}}.pdf")
async def report_pdf(request: web.Request) -> web.Response:
    request[PRINCIPAL].require(Role.ADMIN, Role.AUDITOR)
    state = request.app[APP_STATE]
    month = request.match_info["month"]
    month_bounds(month)
    revision = request.query.get("revision")
    if revision is not None and not revision.isdigit():
        raise Problem(422, "invalid_query", "revision must be a positive integer", field="revision")
    async with UnitOfWork(state.db) as uow:
        report = await get_report(uow.session, month, int(revision) if revision else None)
    agency = state.settings.reports.signing_agency or next(
        iter(sorted(state.wiring.agencies)), None
    )
    if agency is None or agency not in state.wiring.agencies:
        raise Problem(503, "key_unavailable", "no key is configured to sign reports")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pdf = await state.pool.run(render_and_sign_report, report, agency, now)
    digest = base64.b64encode(
        await asyncio.to_thread(lambda: hashlib.sha256(pdf).digest())
    ).decode()
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={
            "Repr-Digest": f"sha-256=:{digest}:",
            "Content-Disposition": f'attachment; filename="e-exchange-{month}.pdf"',
        },
    )
