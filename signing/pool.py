"""Signing in worker processes: one pool sized to the cores, keys opened once per
worker, the event loop of the HTTP service never touched by CPU work.

pyHanko's signing is pure Python and CPU-bound (NOTES 2: threads do not help), and
its synchronous entry points call ``asyncio.run()`` (NOTES 1). Each worker therefore
keeps its own event loop and HTTP session for the TSA and revocation fetching, and
runs the async signing path on it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import multiprocessing
import multiprocessing.util
import os
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import aiohttp

from .engine import SigningContext, SignResult, sign_pdf
from .errors import KeyUnavailableError, SigningError
from .options import SignOptions
from .runtime import SigningSpec, close_context, open_context

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

    worker.loop.run_until_complete(_open())
    _WORKER = worker
    # Runs when the worker exits normally (pool shutdown): close tokens and the session.
    multiprocessing.util.Finalize(worker, _close_worker, args=(worker,), exitpriority=10)


def _close_worker(worker: _Worker) -> None:
    close_context(worker.context)
    worker.loop.run_until_complete(worker.session.close())
    worker.loop.close()


def _state() -> _Worker:
    if _WORKER is None:  # pragma: no cover - the initializer always runs first
        raise KeyUnavailableError("signing worker is not initialised")
    return _WORKER


def _sign_task(data: bytes, options: SignOptions, now: dt.datetime) -> SignResult:
    worker = _state()
    return worker.loop.run_until_complete(sign_pdf(data, options, worker.context, now=now))


def _status_task() -> WorkerStatus:
    worker = _state()
    ts = worker.context.timestamper
    return WorkerStatus(
        os.getpid(),
        tuple(sorted(worker.context.keys)),
        type(ts).__name__ if ts is not None else "none",
    )


class SigningPool:
    """A process pool of signing workers."""

    def __init__(self, spec: SigningSpec, workers: int | None = None) -> None:
        self._spec = spec
        self._workers = workers or os.cpu_count() or 1
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    @property
    def size(self) -> int:
        return self._workers

    async def start(self) -> list[WorkerStatus]:
        """Start the workers and wait until each has opened its keys."""
        self._executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._spec,),
        )
        return await self.status()

    async def status(self) -> list[WorkerStatus]:
        loop = asyncio.get_running_loop()
        tasks = [self._run(loop, _status_task) for _ in range(self._workers)]
        return list(await asyncio.gather(*tasks))

    async def sign(self, data: bytes, options: SignOptions, now: dt.datetime) -> SignResult:
        return await self._run(asyncio.get_running_loop(), _sign_task, data, options, now)

    async def _run(self, loop, fn, *args):
        if self._executor is None:
            raise KeyUnavailableError("the signing pool is not running")
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except SigningError:
            raise
        except BrokenProcessPool:
            raise KeyUnavailableError(
                "the signing workers could not start or died; see the service log"
            ) from None

    async def close(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: executor.shutdown(wait=True, cancel_futures=True)
            )
