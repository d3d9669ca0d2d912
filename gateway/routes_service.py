"""Service endpoints: health, readiness, metrics, OpenAPI, trust anchors, and the
development PKI's CRLs (development mode only)."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from exchange.reports import latest_report
from exchange.uow import UnitOfWork
from signing.errors import SigningError

from .keys import APP_STATE
from .metrics import CONTENT_TYPE_LATEST
from .openapi import openapi_document
from .problems import Problem

__all__ = ["routes"]

log = logging.getLogger("docgate.ready")
routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _tsa_reachable(url: str, timeout: float) -> str | None:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, port), timeout=timeout
        )
    except (OSError, TimeoutError):
        return f"timestamp service {parts.hostname}:{port} is not reachable"
    writer.close()
    return None


async def _database_ok(db) -> str:
    try:
        async with asyncio.timeout(3):
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except (TimeoutError, SQLAlchemyError, OSError) as exc:
        return f"database is not reachable ({type(exc).__name__})"
    return "ok"


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    state = request.app[APP_STATE]
    checks: dict[str, str] = {}
    failing: list[str] = []
    try:
        statuses = await asyncio.wait_for(state.pool.status(), timeout=10)
        wanted = set(state.wiring.agencies)
        loaded = set.intersection(*(set(s.agencies) for s in statuses)) if statuses else set()
        missing = sorted(wanted - loaded)
        checks["keys"] = "ok" if not missing else f"keys not loaded: {', '.join(missing)}"
    except (SigningError, TimeoutError) as exc:
        checks["keys"] = getattr(exc, "detail", "signing workers do not answer")
    url = state.wiring.signing.tsa.url
    if url:
        problem = await _tsa_reachable(url, timeout=min(3.0, state.settings.signing.tsa_timeout_s))
        checks["timestamp_service"] = problem or "ok"
    else:
        checks["timestamp_service"] = (
            "ok" if state.wiring.signing.tsa.dev_cert else "not configured"
        )
    checks["archive"] = await asyncio.to_thread(state.records.check_writable)
    checks["database"] = await _database_ok(state.db)
    for name, value in checks.items():
        if value != "ok" and value != "not configured":
            failing.append(name)
    if failing:
        log.warning("not ready: %s", checks)
        return web.json_response(
            {"status": "unavailable", "failing": failing, "checks": checks}, status=503
        )
    return web.json_response({"status": "ready", "checks": checks})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    state = request.app[APP_STATE]
    # the e_rate gauge follows the latest report, whoever ran it (scheduler, CLI, API)
    try:
        async with UnitOfWork(state.db) as uow:
            report = await latest_report(uow.session)
        if report is not None:
            state.metrics.set_e_rates(report)
    except SQLAlchemyError:
        log.warning("e_rate gauge not refreshed: the database did not answer")
    body = state.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


@routes.get("/v1/trust/roots")
async def trust_roots(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[APP_STATE].trust_pem,
        content_type="application/x-pem-file",
    )


@routes.get(r"/dev/pki/{name:(root|intermediate)\.crl}")
async def dev_crl(request: web.Request) -> web.Response:
    state = request.app[APP_STATE]
    if not state.settings.development_mode:
        raise Problem(404, "not_found", "no such resource")
    path = state.settings.var_path("pki", request.match_info["name"])
    data = await asyncio.to_thread(path.read_bytes)
    return web.Response(body=data, content_type="application/pkix-crl")
