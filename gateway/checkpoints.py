"""Timestamping the audit chain head: on demand and every ``audit.checkpoint_minutes``
(APScheduler), with the same TSA the signatures use (the development TSA in-process in
development mode)."""

from __future__ import annotations

import datetime as dt
import logging

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from exchange.audit import checkpoint
from exchange.db import Database
from exchange.uow import UnitOfWork
from signing.errors import SigningError
from signing.keys.certs import load_certificates
from signing.runtime import TsaSpec
from signing.timestamps import HttpTimeStamper, load_dev_timestamper

__all__ = ["CheckpointJob", "tsa_certificates"]

log = logging.getLogger("docgate.audit")


def tsa_certificates(tsa: TsaSpec) -> list | None:
    """The certificates a checkpoint token must be signed with (None: any TSA the
    token embeds; an external TSA's certificate is not configured here)."""
    if tsa.url or not tsa.dev_cert:
        return None
    from pathlib import Path

    return load_certificates(Path(tsa.dev_cert))


class CheckpointJob:
    def __init__(self, db: Database, tsa: TsaSpec, session: aiohttp.ClientSession) -> None:
        self._db = db
        if tsa.url:
            headers = {"Authorization": tsa.auth_header} if tsa.auth_header else None
            self._timestamper = HttpTimeStamper(
                tsa.url, session, timeout=tsa.timeout, retries=tsa.retries, headers=headers
            )
        elif tsa.dev_cert:
            self._timestamper = load_dev_timestamper(tsa.dev_cert, tsa.dev_key, tsa.dev_chain)
        else:
            self._timestamper = None
        self._scheduler: AsyncIOScheduler | None = None

    async def run(self) -> int | None:
        """Timestamp the current head; the checkpoint's seq, or None if nothing to do."""
        if self._timestamper is None:
            return None
        async with UnitOfWork(self._db) as uow:
            try:
                made = await checkpoint(uow.session, self._timestamper, now=dt.datetime.now(dt.UTC))
            except SigningError as exc:
                log.warning("audit checkpoint skipped: %s", exc.detail)
                return None
            await uow.commit()
        return made.seq if made else None

    def start(self, minutes: float) -> None:
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._scheduler.add_job(
            self.run,
            "interval",
            minutes=minutes,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(minutes * 60),
        )
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
