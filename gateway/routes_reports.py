"""GET /v1/reports/e-exchange (admin, auditor: every agency; an agency token: its own
row) and POST /v1/reports/e-exchange/{month}/run (admin): the monthly electronic-exchange
report of exchange/reports.py. Reading never computes: a month not run yet is 404."""

from __future__ import annotations

import datetime as dt
import json

from aiohttp import web

from exchange.models import Role
from exchange.reports import get_report, month_bounds, run_month, to_csv
from exchange.uow import UnitOfWork

from .keys import APP_STATE, PRINCIPAL
from .problems import Problem

__all__ = ["routes"]

routes = web.RouteTableDef()

_QUERY = {"month", "agency", "format", "revision"}


def _json(body: dict, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


def _revision(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:
        raise Problem(422, "invalid_query", "revision must be a positive integer", field="revision")
    return int(raw)


@routes.get("/v1/reports/e-exchange")
async def read_report(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    principal.require(Role.ADMIN, Role.AUDITOR, Role.AGENCY)
    query = request.query
    unknown = sorted(set(query) - _QUERY)
    if unknown:
        raise Problem(422, "invalid_query", f"unknown parameter(s): {', '.join(unknown)}")
    month = query.get("month", "")
    month_bounds(month)  # 422 invalid_month
    fmt = query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise Problem(422, "invalid_query", "format must be json or csv", field="format")
    revision = _revision(query.get("revision"))
    agency = query.get("agency") or None
    if principal.role is Role.AGENCY:
        if agency is not None and agency != principal.agency:
            raise Problem(403, "forbidden", "an agency token may read only its own row")
        agency = principal.agency
    async with UnitOfWork(request.app[APP_STATE].db) as uow:
        report = await get_report(uow.session, month, revision)
    if agency is not None:
        rows = [r for r in report["agencies"] if r["agency"] == agency]
        if not rows:
            raise Problem(404, "not_found", f"agency {agency} is not in the report of {month}")
        report = {**report, "agencies": rows}
    if fmt == "json":
        return _json(report)
    name = f"e-exchange-{month}-r{report['revision']}.csv"
    return web.Response(
        body=to_csv(report),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@routes.post("/v1/reports/e-exchange/{month}/run")
async def run_report(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    principal.require(Role.ADMIN)
    state = request.app[APP_STATE]
    month = request.match_info["month"]
    month_bounds(month)
    report = await run_month(
        lambda: UnitOfWork(state.db),
        month,
        now=dt.datetime.now(dt.UTC),
        actor=principal.label,
        target=state.settings.reports.target,
    )
    state.metrics.set_e_rates(report)
    return _json(report, status=201)
