"""The app factory: ``create_app(settings) -> web.Application``. Nothing starts at
import time; the signing pool, record store and wiring start in ``cleanup_ctx``."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from exchange import audit
from exchange.agencies import AgencyRegistry
from exchange.blobs import FileBlobStore
from exchange.db import Database
from exchange.delivery import WebhookDispatcher, enqueue
from exchange.exchanges import ExchangeService
from exchange.migrate import upgrade
from exchange.records import RecordStore
from exchange.schedule import ReportScheduler
from exchange.uow import UnitOfWork
from signing.errors import SigningError
from signing.keys.certs import load_certificates, to_pem
from signing.options import Level, SignOptions
from signing.pool import SigningPool
from signing.workers import WorkerLimits

from .auth import Authenticator
from .checkpoints import CheckpointJob, tsa_certificates
from .keys import APP_STATE, PRINCIPAL, AppState
from .metrics import Metrics
from .problems import Problem, problem_middleware
from .ratelimit import RateLimiter
from .routes_agencies import routes as agency_routes
from .routes_audit import routes as audit_routes
from .routes_exchanges import routes as exchange_routes
from .routes_report_pdf import routes as report_pdf_routes
from .routes_reports import routes as report_routes
from .routes_service import routes as service_routes
from .routes_sign import routes as sign_routes
from .routes_verify import routes as verify_routes
from .settings import Settings
from .web import setup_pages
from .wiring import seed_development, wire
from .work import SPOOL_FOLDER, clear_spool

__all__ = ["create_app"]

log = logging.getLogger("docgate")

_OPEN_V1 = {"/v1/verify", "/v1/trust/roots"}


@web.middleware
async def auth_middleware(request: web.Request, handler):
    path = request.path
    if path.startswith("/v1/"):
        state = request.app[APP_STATE]
        open_path = path in _OPEN_V1 and not state.settings.auth.verify_requires_token
        header = request.headers.get("Authorization")
        if open_path and header is None:
            # anonymous use of the open endpoints is rate-limited per address;
            # callers with a token are identified and not throttled here
            if not state.limiter.allow(request.remote or "unknown"):
                raise Problem(429, "rate_limited", "too many requests from this address; slow down")
        else:
            request[PRINCIPAL] = await state.auth.authenticate(header)
    return await handler(request)


@web.middleware
async def metrics_middleware(request: web.Request, handler):
    started = time.perf_counter()
    response = await handler(request)
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    metrics = request.app[APP_STATE].metrics
    metrics.requests.labels(name, request.method, str(response.status)).inc()
    metrics.latency.labels(name).observe(time.perf_counter() - started)
    return response


def _exchange_service(settings: Settings, db: Database, pool: SigningPool) -> ExchangeService:
    """The exchange service with signing and verification on the worker pool; a large
    document (a spooled upload) is signed into a file next to it and never read here."""

    async def sign(document: bytes | Path, agency: str, level: str) -> tuple[bytes | Path, str]:
        options = SignOptions(agency=agency, level=Level(level))
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        if isinstance(document, bytes):
            result = await pool.sign(document, options, now)
            return result.pdf, result.level.value
        result, signed = await pool.sign_file(document, options, now)
        return signed, result.level.value

    async def verify(document: bytes | Path) -> dict:
        now = dt.datetime.now(dt.UTC)
        if isinstance(document, bytes):
            return await pool.verify(document, now)
        return await pool.verify_file(document, now)

    return ExchangeService(
        db,
        FileBlobStore(settings.var_path("archive", "blobs")),
        sign=sign,
        verify=verify,
        audit_append=audit.append,
        enqueue=enqueue,
        clock=lambda: dt.datetime.now(dt.UTC),
    )


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[metrics_middleware, problem_middleware, auth_middleware],
        # bodies are streamed by the handlers with their own limit (gateway/body.py)
        client_max_size=settings.service.max_upload_bytes + 1024 * 1024,
    )
    app.add_routes(service_routes)
    app.add_routes(sign_routes)
    app.add_routes(verify_routes)
    app.add_routes(agency_routes)
    app.add_routes(audit_routes)
    app.add_routes(exchange_routes)
    app.add_routes(report_routes)
    app.add_routes(report_pdf_routes)
    setup_pages(app)

    async def lifecycle(app: web.Application):
        now = dt.datetime.now(dt.UTC)
        wiring = await asyncio.to_thread(wire, settings, now)
        await asyncio.to_thread(clear_spool, settings.var_path(SPOOL_FOLDER))
        roots = await asyncio.to_thread(
            lambda: b"".join(to_pem(c) for p in wiring.trust_roots for c in load_certificates(p))
        )
        svc = settings.service
        db = Database.open(wiring.database_url)
        if settings.database.upgrade_on_start:
            await upgrade(wiring.database_url)
        registry = AgencyRegistry(lambda: UnitOfWork(db), audit.append)
        if wiring.dev_tokens is not None:
            await seed_development(registry, settings, wiring.dev_tokens, now)
        pool = SigningPool(
            wiring.signing,
            svc.workers or None,
            WorkerLimits(
                memory_bytes=svc.worker_memory_mib * 1024 * 1024,
                cpu_seconds=svc.task_timeout_s,
                wall_seconds=svc.task_timeout_s,
            ),
        )
        records = RecordStore(settings.var_path("archive"))
        app[APP_STATE] = AppState(
            settings=settings,
            wiring=wiring,
            pool=pool,
            records=records,
            metrics=Metrics(),
            limiter=RateLimiter(settings.auth.open_rate_per_s, settings.auth.open_burst),
            trust_pem=roots,
            db=db,
            registry=registry,
            auth=Authenticator(registry, settings.auth.token_cache_seconds),
            tsa_certificates=tsa_certificates(wiring.signing.tsa),
            large_uploads=asyncio.Semaphore(svc.parallel_large_uploads),
        )
        http = aiohttp.ClientSession()
        state = app[APP_STATE]
        loop_watch = asyncio.create_task(state.metrics.watch_event_loop())
        state.exchanges = _exchange_service(settings, db, pool)
        dispatcher = WebhookDispatcher(db, http)
        webhooks = asyncio.create_task(dispatcher.run_forever(settings.delivery.poll_seconds))
        checkpoints = CheckpointJob(db, wiring.signing.tsa, http)
        state.checkpoints = checkpoints
        if settings.audit.checkpoint_minutes > 0:
            checkpoints.start(settings.audit.checkpoint_minutes)
        # the month just closed, on the 1st at 00:30 local; once across processes and restarts
        reports = ReportScheduler(db, wiring.database_url, target=settings.reports.target)
        reports.start()
        try:
            statuses = await pool.start()
            log.info(
                "DocGate %s mode: %d signing worker(s), agencies %s",
                settings.service.mode.value,
                len(statuses),
                ", ".join(sorted(wiring.agencies)),
            )
        except SigningError as exc:
            log.error("signing workers failed to start (%s); /readyz will say so", exc.detail)
        yield
        loop_watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop_watch
        checkpoints.stop()
        await reports.stop()
        dispatcher.stop()
        await webhooks
        await http.close()
        await pool.close()
        await db.close()

    app.cleanup_ctx.append(lifecycle)
    return app
