"""Work on behalf of one HTTP request: where its large bodies spool, and the rule that
work ends when its client goes away (a DMS that times out and retries must not leave
its first attempt running on a worker)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from .body import Spooling
from .keys import AppState

__all__ = ["SPOOL_FOLDER", "clear_spool", "spooling", "while_connected"]

T = TypeVar("T")
SPOOL_FOLDER = "tmp"
_POLL_S = 0.2
log = logging.getLogger("docgate")


def spooling(state: AppState) -> Spooling:
    svc = state.settings.service
    return Spooling(
        state.settings.var_path(SPOOL_FOLDER),
        svc.spool_over_bytes,
        state.large_uploads,
        svc.upload_idle_timeout_s,
    )


def clear_spool(folder: Path, older_than_s: float = 3600.0) -> int:
    """Remove what a process that died mid-request left in the spool folder. Only files
    older than any request can run (other gateway processes may share ``var/``)."""
    removed = 0
    if folder.is_dir():
        cutoff = time.time() - older_than_s
        for leftover in folder.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if leftover.is_file() and leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
                    removed += 1
    return removed


async def while_connected(request: web.Request, work: Awaitable[T]) -> T:
    """Await ``work``; if the client disconnects first, cancel it (a task queued for a
    worker leaves the queue; see ``SigningPool.sign_file`` for a running one) and end
    the request with CancelledError, as aiohttp does for a handler whose peer left."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=_POLL_S)
            if done:
                return task.result()
            transport = request.transport
            if transport is None or transport.is_closing():
                log.info(
                    "client of %s %s went away: its work is cancelled", request.method, request.path
                )
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                raise asyncio.CancelledError("the client disconnected")
    except asyncio.CancelledError:
        task.cancel()
        raise
