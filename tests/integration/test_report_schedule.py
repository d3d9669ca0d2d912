"""The monthly report on a schedule (exchange/schedule.py), on both databases: the month
just closed runs once at the 1st 00:30 local, also with two schedulers on one database,
and after a restart that missed the moment. Months far in the future keep these runs
apart from the other tests' reports on the shared session database."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import delete, func, select

from exchange.db import Database
from exchange.models import AuditEntry, ReportRevision, ScheduledRun, SchedulerJob
from exchange.reports import LOCAL_TZ
from exchange.schedule import (
    JOB_ID,
    MISFIRE_GRACE,
    ReportScheduler,
    closed_month,
    monthly_trigger,
    run_closed_month,
    sync_url,
)


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LOCAL_TZ)


async def _count(db: Database, query) -> int:
    async with db.sessions() as s:
        return await s.scalar(query)


async def _revisions(db: Database, month: str) -> int:
    return await _count(
        db, select(func.count()).select_from(ReportRevision).where(ReportRevision.month == month)
    )


async def _clear_jobs(db: Database) -> None:
    async with db.sessions() as s:
        await s.execute(delete(SchedulerJob))
        await s.commit()


@pytest.fixture
async def jobs_cleared(db):
    await _clear_jobs(db)
    yield
    await _clear_jobs(db)


async def _wait_for_run(db: Database, month: str, timeout: float = 10.0) -> ScheduledRun:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with db.sessions() as s:
            row = await s.get(ScheduledRun, month)
        if row is not None and row.revision is not None:
            return row
        assert asyncio.get_running_loop().time() < deadline, f"{month} was not run"
        await asyncio.sleep(0.05)


def test_sync_urls_of_the_job_store():
    assert sync_url("sqlite+aiosqlite:////var/db/docgate.db") == "sqlite:////var/db/docgate.db"
    assert sync_url("postgresql+asyncpg://u:p@h:5432/d") == "postgresql+psycopg://u:p@h:5432/d"


async def test_frozen_clock_across_the_month_boundary_runs_the_closed_month_once(db):
    before = local(2033, 10, 31, 23, 59)
    fire = monthly_trigger().get_next_fire_time(None, before)
    assert fire == local(2033, 11, 1, 0, 30)
    assert closed_month(before) == "2033-09" and closed_month(fire) == "2033-10"
    # 00:30 local on the 1st is still the previous day in UTC
    assert closed_month(fire.astimezone(dt.UTC)) == "2033-10"

    report = await run_closed_month(db, now=fire.astimezone(dt.UTC), target=0.9)
    assert report is not None
    assert (report["month"], report["revision"], report["provisional"]) == ("2033-10", 1, False)
    for later in (fire + dt.timedelta(minutes=1), fire + dt.timedelta(days=1)):
        assert await run_closed_month(db, now=later, target=0.9) is None
    assert await _revisions(db, "2033-10") == 1
    async with db.sessions() as s:
        run = await s.get(ScheduledRun, "2033-10")
        actors = (
            await s.scalars(
                select(AuditEntry.actor).where(AuditEntry.subject == "e-exchange/2033-10")
            )
        ).all()
    assert run.revision == 1 and actors == ["scheduler"]


async def test_two_processes_on_one_database_run_it_once(database_url):
    first, second = Database.open(database_url), Database.open(database_url)
    try:
        now = local(2034, 3, 1, 0, 30)
        results = await asyncio.gather(
            run_closed_month(first, now=now, target=0.95, instance="gw-1"),
            run_closed_month(second, now=now, target=0.95, instance="gw-2"),
        )
        assert sorted(r is None for r in results) == [False, True]
        assert await _revisions(first, "2034-02") == 1
    finally:
        await first.close()
        await second.close()


async def test_the_job_is_stored_once_in_the_database(db, database_url, jobs_cleared):
    one = ReportScheduler(db, database_url)
    one.start()
    stored = one.scheduler.get_job(JOB_ID).next_run_time
    await one.stop()

    other = Database.open(database_url)
    two = ReportScheduler(other, database_url)
    try:
        two.start()
        jobs = two.scheduler.get_jobs()
        assert [j.id for j in jobs] == [JOB_ID]
        job = jobs[0]
        assert str(job.trigger) == "cron[day='1', hour='0', minute='30']"
        assert job.trigger.timezone == LOCAL_TZ
        assert (job.coalesce, job.max_instances) == (True, 1)
        assert job.misfire_grace_time == MISFIRE_GRACE.total_seconds()
        assert job.next_run_time == stored  # a restart keeps the stored run time
        assert (job.next_run_time.day, job.next_run_time.hour, job.next_run_time.minute) == (
            1,
            0,
            30,
        )
    finally:
        await two.stop()
        await other.close()
    assert await _count(db, select(func.count()).select_from(SchedulerJob)) == 1


async def test_restart_after_a_missed_moment_runs_it_once(db, database_url, jobs_cleared):
    frozen = local(2034, 6, 1, 0, 30).astimezone(dt.UTC)

    def clock() -> dt.datetime:
        return frozen

    # the gateway was down at 00:30 on the 1st: the stored job's run time has passed
    down = ReportScheduler(db, database_url, clock=clock)
    down.start()
    down.scheduler.pause()
    missed = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    down.scheduler.modify_job(JOB_ID, next_run_time=missed)
    await down.stop()
    assert await _revisions(db, "2034-05") == 0

    # it comes back as two processes on the same database: the month runs once
    dbs = [Database.open(database_url), Database.open(database_url)]
    back = [ReportScheduler(d, database_url, clock=clock) for d in dbs]
    try:
        for scheduler in back:
            scheduler.start()
        run = await _wait_for_run(db, "2034-05")
        await asyncio.sleep(0.3)
        assert run.revision == 1 and await _revisions(db, "2034-05") == 1
        for scheduler in back:
            assert scheduler.scheduler.get_job(JOB_ID).next_run_time > dt.datetime.now(dt.UTC)
    finally:
        for scheduler in back:
            await scheduler.stop()
        for d in dbs:
            await d.close()

    # a second restart does not run it again
    again = ReportScheduler(db, database_url, clock=clock)
    again.start()
    try:
        await asyncio.sleep(0.3)
        assert again.scheduler.get_job(JOB_ID).next_run_time > dt.datetime.now(dt.UTC)
    finally:
        await again.stop()
    assert await _revisions(db, "2034-05") == 1
