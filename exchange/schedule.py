"""The monthly electronic-exchange report on a schedule: on the 1st at 00:30
Asia/Ho_Chi_Minh the report of the month just closed is run (exchange/reports.py
``run_month``, actor ``scheduler``).

- The APScheduler job lives in a job store in the service's own database (table
  ``scheduler_jobs``, created by the migrations), so a restart neither loses nor repeats
  it: a job that is already stored keeps its ``next_run_time`` when the service starts
  again (it is only replaced when its trigger changed).
- ``coalesce`` and a ``misfire_grace_time`` of several days: a service that was down at
  00:30 runs the missed moment once when it comes back.
- Several processes sharing one database each have the job; ``run_closed_month`` first
  inserts the month's ``scheduled_runs`` row in its own transaction, and only the process
  whose insert commits runs the month (the others get the primary-key conflict, also
  across restarts). A run that fails removes its row so it can be run again.

The job is referenced by module path (``run_scheduled_job``), as a stored job must be; it
finds the ``ReportScheduler`` started in this process for that database by a key (a hash
of the database URL) passed as its argument.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import delete, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from .db import Database
from .models import ScheduledRun, SchedulerJob
from .reports import LOCAL_TZ, run_month
from .uow import UnitOfWork

__all__ = [
    "JOB_ID",
    "MISFIRE_GRACE",
    "ReportScheduler",
    "closed_month",
    "monthly_trigger",
    "run_closed_month",
    "run_scheduled_job",
    "sync_url",
]

log = logging.getLogger("docgate.schedule")

JOB_ID = "e-exchange-monthly"
MISFIRE_GRACE = dt.timedelta(days=7)  # a service down at 00:30 on the 1st still runs it
ACTOR = "scheduler"

_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}

# ReportSchedulers started in this process, by database key (run_scheduled_job)
_LIVE: dict[str, list[ReportScheduler]] = {}


def monthly_trigger() -> CronTrigger:
    return CronTrigger(day=1, hour=0, minute=30, timezone=LOCAL_TZ)


def sync_url(url: str) -> str:
    """The synchronous SQLAlchemy URL (APScheduler's job store) of an async one."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _SYNC_DRIVERS:
        raise ValueError(f"no synchronous driver for the {backend} database")
    return parsed.set(drivername=_SYNC_DRIVERS[backend]).render_as_string(hide_password=False)


def closed_month(now: dt.datetime) -> str:
    """The month (YYYY-MM) that closed last at ``now``, in Asia/Ho_Chi_Minh."""
    last_day = now.astimezone(LOCAL_TZ).date().replace(day=1) - dt.timedelta(days=1)
    return f"{last_day.year:04d}-{last_day.month:02d}"


def _instance() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


async def run_closed_month(
    db: Database, *, now: dt.datetime, target: float, instance: str | None = None
) -> dict[str, Any] | None:
    """Run the report of the month just closed at ``now``, unless it was already run (or
    is being run) by the scheduler of any process on this database: then None."""
    month = closed_month(now)
    try:
        async with UnitOfWork(db) as uow:
            uow.session.add(
                ScheduledRun(month=month, started_at=now, instance=instance or _instance())
            )
            await uow.commit()
    except IntegrityError:
        log.info("scheduled report of %s: already run", month)
        return None
    try:
        report = await run_month(lambda: UnitOfWork(db), month, now=now, actor=ACTOR, target=target)
    except Exception:
        log.exception("scheduled report of %s failed; its claim is released", month)
        async with UnitOfWork(db) as uow:
            await uow.session.execute(delete(ScheduledRun).where(ScheduledRun.month == month))
            await uow.commit()
        raise
    async with UnitOfWork(db) as uow:
        await uow.session.execute(
            update(ScheduledRun)
            .where(ScheduledRun.month == month)
            .values(revision=report["revision"])
        )
        await uow.commit()
    log.info("scheduled report of %s: revision %s", month, report["revision"])
    return report


async def run_scheduled_job(key: str) -> dict[str, Any] | None:
    """The stored job: run the closed month with this process's scheduler for ``key``."""
    runners = _LIVE.get(key)
    if not runners:
        log.warning("scheduled report: no scheduler of this database is running here")
        return None
    return await runners[-1].run_now()


class ReportScheduler:
    """The monthly report job on an ``AsyncIOScheduler`` whose job store is the database
    at ``database_url`` (the async URL ``db`` was opened with)."""

    def __init__(
        self,
        db: Database,
        database_url: str,
        *,
        target: float = 0.95,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._db = db
        self._target = target
        self._clock = clock
        url = sync_url(database_url)
        self.key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
        sqlite = make_url(url).get_backend_name() == "sqlite"
        options: dict[str, Any] = (
            {"connect_args": {"timeout": 30}} if sqlite else {"pool_pre_ping": True, "pool_size": 2}
        )
        self.jobstore = SQLAlchemyJobStore(
            url=url, tablename=SchedulerJob.__tablename__, engine_options=options
        )
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": self.jobstore},
            job_defaults={
                "coalesce": True,
                "misfire_grace_time": int(MISFIRE_GRACE.total_seconds()),
                "max_instances": 1,
            },
            timezone=LOCAL_TZ,
        )
        self._runs: set[asyncio.Task] = set()

    def start(self) -> None:
        """Start (from the event loop): the stored job keeps its next run time, so a missed
        moment within the grace time runs now; a missing or changed job is (re)added."""
        _LIVE.setdefault(self.key, []).append(self)
        self.scheduler.start(paused=True)
        trigger = monthly_trigger()
        job = self.scheduler.get_job(JOB_ID)
        if job is None or str(job.trigger) != str(trigger) or job.trigger.timezone != LOCAL_TZ:
            self.scheduler.add_job(
                run_scheduled_job,
                trigger,
                args=[self.key],
                id=JOB_ID,
                name="monthly electronic-exchange report",
                replace_existing=True,
            )
        elif tuple(job.args) != (self.key,):
            self.scheduler.modify_job(JOB_ID, args=[self.key])
        self.scheduler.resume()

    async def run_now(self) -> dict[str, Any] | None:
        task = asyncio.ensure_future(
            run_closed_month(self._db, now=self._clock(), target=self._target)
        )
        self._runs.add(task)
        try:
            return await asyncio.shield(task)
        finally:
            self._runs.discard(task)

    async def stop(self) -> None:
        """Stop the scheduler, wait for a run in progress, release the job store."""
        runners = _LIVE.get(self.key, [])
        if self in runners:
            runners.remove(self)
            if not runners:
                _LIVE.pop(self.key, None)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)  # done on the loop: let it run
        if self._runs:
            await asyncio.gather(*self._runs, return_exceptions=True)
        for _ in range(3):
            await asyncio.sleep(0)
