"""Signing in worker processes: one pool sized to the cores, keys opened once per
worker, the event loop of the HTTP service never touched by CPU work.

The workers run under limits (``signing.workers``): a document that exhausts a worker's
memory, CPU or wall time fails alone with ``resource_limit``, and the worker is replaced.

pyHanko's signing is pure Python and CPU-bound (NOTES 2: threads do not help), and
its synchronous entry points call ``asyncio.run()`` (NOTES 1). Each worker therefore
keeps its own event loop and HTTP session for the TSA and revocation fetching, and
runs the async signing path on it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import multiprocessing.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from .engine import SigningContext, SignResult, sign_pdf
from .errors import KeyUnavailableError, NotAPdfError
from .mapped import MappedPdf
from .options import SignOptions
from .runtime import SigningSpec, close_context, open_context
from .verify import VerifyContext, restricted_session, verify_pdf
from .workers import WorkerLimits, WorkerPool

__all__ = ["SigningPool", "WorkerStatus"]


@dataclass(frozen=True)
class WorkerStatus:
    pid: int
    agencies: tuple[str, ...]
    timestamper: str


class _Worker:
    """The state one worker process keeps for its whole life."""

    loop: asyncio.AbstractEventLoop
    session: aiohttp.ClientSession
    context: SigningContext
    verify_session: aiohttp.ClientSession | None
    verify_context: VerifyContext


_WORKER: _Worker | None = None


class _FixedRevocationNotice(logging.Filter):
    """With fetching off on purpose (fixed CRLs/OCSP, e.g. development), pyHanko warns
    on every B-LT signature that fetching is not allowed; that is the configuration,
    not news, so the notice is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "fetching is not allowed" not in record.getMessage()


def _init_worker(spec: SigningSpec) -> None:
    global _WORKER
    if not spec.trust.allow_fetching:
        logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(_FixedRevocationNotice())
    worker = _Worker()
    worker.loop = asyncio.new_event_loop()
    asyncio.set_event_loop(worker.loop)

    async def _open() -> None:
        worker.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60), raise_for_status=False
        )
        worker.context = await open_context(spec, worker.session)
        # Verification fetches (if at all) through its own, allow-listed session: its
        # URLs come from untrusted documents.
        revocation = spec.verification.revocation
        worker.verify_session = (
            restricted_session(revocation) if revocation.allow_fetching else None
        )
        worker.verify_context = VerifyContext.from_spec(spec.verification, worker.verify_session)

    worker.loop.run_until_complete(_open())
    _WORKER = worker
    # Runs when the worker exits normally (pool shutdown): close tokens and the session.
    multiprocessing.util.Finalize(worker, _close_worker, args=(worker,), exitpriority=10)


def _close_worker(worker: _Worker) -> None:
    close_context(worker.context)
    worker.loop.run_until_complete(worker.session.close())
    if worker.verify_session is not None:
        worker.loop.run_until_complete(worker.verify_session.close())
    worker.loop.close()


def _state() -> _Worker:
    if _WORKER is None:  # pragma: no cover - the initializer always runs first
        raise KeyUnavailableError("signing worker is not initialised")
    return _WORKER


def _sign_task(data: bytes, options: SignOptions, now: dt.datetime) -> SignResult:
    worker = _state()
    return worker.loop.run_until_complete(sign_pdf(data, options, worker.context, now=now))


def _verify_task(data: bytes, now: dt.datetime) -> dict:
    worker = _state()
    report = worker.loop.run_until_complete(verify_pdf(data, worker.verify_context, now=now))
    return report.to_dict()


def _open_mapped(path: str) -> MappedPdf:
    try:
        return MappedPdf.open(path)
    except ValueError:  # an empty file cannot be mapped
        raise NotAPdfError("the document is empty") from None


def _sign_file_task(path: str, out_path: str, options: SignOptions, now: dt.datetime) -> SignResult:
    worker = _state()
    with _open_mapped(path) as data, open(out_path, "w+b") as out:
        return worker.loop.run_until_complete(
            sign_pdf(data, options, worker.context, now=now, output=out)
        )


def _verify_file_task(path: str, now: dt.datetime) -> dict:
    worker = _state()
    with _open_mapped(path) as data:
        report = worker.loop.run_until_complete(verify_pdf(data, worker.verify_context, now=now))
    return report.to_dict()


def _status_task() -> WorkerStatus:
    worker = _state()
    ts = worker.context.timestamper
    return WorkerStatus(
        os.getpid(),
        tuple(sorted(worker.context.keys)),
        type(ts).__name__ if ts is not None else "none",
    )


class SigningPool:
    """A pool of signing workers, each with its keys open, under ``limits``."""

    def __init__(
        self, spec: SigningSpec, workers: int | None = None, limits: WorkerLimits | None = None
    ) -> None:
        self._spec = spec
        self._workers = workers or os.cpu_count() or 1
        self._pool = WorkerPool(
            _init_worker, (spec,), self._workers, limits or WorkerLimits(), "docgate-signer"
        )

    @property
    def size(self) -> int:
        return self._workers

    async def start(self) -> list[WorkerStatus]:
        """Start the workers and wait until each has opened its keys."""
        await self._pool.start()
        return await self.status()

    async def status(self) -> list[WorkerStatus]:
        """Asks every live worker (a worker being replaced is not counted)."""
        return await self._pool.broadcast(_status_task)

    async def sign(self, data: bytes, options: SignOptions, now: dt.datetime) -> SignResult:
        return await self.run(_sign_task, data, options, now)

    async def verify(self, data: bytes, now: dt.datetime) -> dict:
        """The verification report (API.md JSON) of ``data``."""
        return await self.run(_verify_task, data, now)

    async def sign_file(
        self, path: Path, options: SignOptions, now: dt.datetime
    ) -> tuple[SignResult, Path]:
        """Sign the document in file ``path`` into a new file beside it, returned with
        the result (whose ``pdf`` is empty); the new file is removed if signing fails.
        If the caller is cancelled while the worker runs, the worker is stopped: a large
        document's work ends with its client."""
        out = path.with_name(path.stem + "-signed.pdf")
        try:
            result = await self._pool.run(
                _sign_file_task, str(path), str(out), options, now, stop_on_cancel=True
            )
        except BaseException:
            await asyncio.shield(asyncio.to_thread(out.unlink, missing_ok=True))
            raise
        return result, out

    async def verify_file(self, path: Path, now: dt.datetime) -> dict:
        """The verification report of the document in file ``path`` (see sign_file)."""
        return await self._pool.run(_verify_file_task, str(path), now, stop_on_cancel=True)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on a worker; ``fn`` is a module-level function that may use
        the worker's state through ``_state()``."""
        return await self._pool.run(fn, *args)

    async def close(self) -> None:
        await self._pool.close()
