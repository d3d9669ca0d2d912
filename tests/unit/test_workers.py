"""The hardened worker pool: limits kill one worker, the pool replaces it, and the
requests on the other workers never notice."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from pathlib import Path

import pytest

from signing.errors import DamagedPdfError, KeyUnavailableError, SigningError
from signing.options import Appearance, Level, SignOptions
from signing.pool import SigningPool
from signing.runtime import development_spec
from signing.workers import WorkerLimitError, WorkerLimits, WorkerPool
from tests.fixtures import worker_tasks as tasks
from tests.fixtures.pdfs import simple_pdf
from tests.fixtures.pki import DEMO_AGENCIES

MiB = 1024 * 1024
FAST = WorkerLimits(memory_bytes=300 * MiB, cpu_seconds=5, wall_seconds=10)


@pytest.fixture
async def make_pool():
    pools: list[WorkerPool] = []

    async def make(size=2, limits=FAST, initializer=tasks.init_nothing, initargs=()):
        pool = WorkerPool(initializer, initargs, size, limits)
        pools.append(pool)
        await pool.start()
        return pool

    yield make
    for pool in pools:
        await pool.close()


async def wait_alive(pool: WorkerPool, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while pool.alive != count:
        assert time.monotonic() < deadline, f"{pool.alive} workers alive, wanted {count}"
        await asyncio.sleep(0.02)


async def test_runs_tasks_and_carries_large_payloads(make_pool):
    pool = await make_pool()
    assert (pool.size, pool.alive) == (2, 2)
    assert await pool.run(tasks.echo, {"a": [1, 2]}) == {"a": [1, 2]}
    data = os.urandom(100 * MiB)
    assert await pool.run(tasks.size_of, data) == len(data)
    assert await pool.run(tasks.echo, data[: 20 * MiB]) == data[: 20 * MiB]


async def test_callers_wait_their_turn_in_order(make_pool):
    pool = await make_pool(size=1)
    order: list[int] = []

    async def one(i: int) -> None:
        await pool.run(tasks.sleep, 0.01)
        order.append(i)

    await asyncio.gather(*(one(i) for i in range(6)))
    assert order == list(range(6))


async def test_memory_hog_is_stopped_and_replaced(make_pool):
    pool = await make_pool()
    with pytest.raises(WorkerLimitError) as info:
        await pool.run(tasks.hog_memory)
    assert info.value.code == "resource_limit" and info.value.status == 422
    assert info.value.fields["limit"] == "memory"
    assert await pool.run(tasks.echo, 1) == 1
    await wait_alive(pool, 2)


async def test_task_past_the_wall_limit_is_killed(make_pool):
    pool = await make_pool(limits=WorkerLimits(300 * MiB, 5, wall_seconds=0.5))
    before = set(await pool.broadcast(tasks.pid))
    with pytest.raises(WorkerLimitError) as info:  # killed at 0.5 s, not after its 30 s
        await pool.run(tasks.sleep, 30)
    assert info.value.fields["limit"] == "wall"
    await wait_alive(pool, 2)
    after = set(await pool.broadcast(tasks.pid))
    assert len(before & after) == 1  # one worker replaced, the other untouched
    assert await pool.run(tasks.sleep, 0.1, wall_seconds=2) == 0.1


async def test_cpu_burner_is_killed_by_sigxcpu(make_pool):
    pool = await make_pool(size=1, limits=WorkerLimits(300 * MiB, cpu_seconds=1, wall_seconds=20))
    await pool.run(tasks.echo, 0)  # CPU used before a task does not count against it
    with pytest.raises(WorkerLimitError) as info:  # SIGXCPU, not the 20 s wall limit
        await pool.run(tasks.burn_cpu)
    assert info.value.fields["limit"] == "cpu", info.value.detail
    assert await pool.run(tasks.echo, 2) == 2


async def test_recursion_error_replaces_the_worker(make_pool):
    pool = await make_pool(size=1)
    first = await pool.run(tasks.pid)
    with pytest.raises(WorkerLimitError) as info:
        await pool.run(tasks.recurse)
    assert info.value.fields["limit"] == "recursion"
    assert await pool.run(tasks.pid) != first


async def test_crash_is_a_limit_error(make_pool):
    pool = await make_pool(size=1)
    with pytest.raises(WorkerLimitError, match="exit code 3"):
        await pool.run(tasks.crash)
    assert await pool.run(tasks.echo, 3) == 3


async def test_signing_errors_come_back_intact(make_pool):
    pool = await make_pool(size=1)
    with pytest.raises(DamagedPdfError) as info:
        await pool.run(tasks.raise_signing_error, "xref is broken")
    assert (info.value.code, info.value.detail) == ("damaged_pdf", "xref is broken")
    assert info.value.fields == {"page": 3}
    with pytest.raises(RuntimeError, match="cannot be sent"):
        await pool.run(tasks.unpicklable)
    with pytest.raises(Exception, match="pickle"):
        await pool.run(lambda: None)  # not picklable: refused before it reaches a worker
    assert await pool.run(tasks.echo, 4) == 4
    assert pool.alive == 1


async def test_bad_input_never_fails_an_innocent_request(make_pool):
    pool = await make_pool(limits=WorkerLimits(300 * MiB, cpu_seconds=5, wall_seconds=1))
    bad = [asyncio.create_task(pool.run(t)) for t in (tasks.hog_memory, tasks.recurse)]
    bad.append(asyncio.create_task(pool.run(tasks.sleep, 30)))
    await asyncio.sleep(0)
    good = [pool.run(tasks.sleep, 0.05) for _ in range(30)]
    assert await asyncio.gather(*good) == [0.05] * 30
    for task in bad:
        with pytest.raises(WorkerLimitError):
            await task
    await wait_alive(pool, 2)


async def test_a_cancelled_caller_leaves_the_worker_usable(make_pool):
    pool = await make_pool(size=1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pool.run(tasks.sleep, 0.3), timeout=0.05)
    assert await pool.run(tasks.echo, 5) == 5
    assert pool.alive == 1


async def test_a_failing_initializer_stops_the_start(make_pool):
    with pytest.raises(KeyUnavailableError) as info:
        await make_pool(initializer=tasks.fail_to_start, initargs=("the key file is missing",))
    assert info.value.detail == "the key file is missing"
    assert "Traceback" not in info.value.detail


async def test_replacement_retries_until_the_initializer_works(make_pool, tmp_path):
    needed = tmp_path / "key"
    needed.touch()
    pool = await make_pool(size=1, initializer=tasks.init_needs_file, initargs=(str(needed),))
    needed.unlink()
    with pytest.raises(WorkerLimitError):
        await pool.run(tasks.crash)
    with pytest.raises(KeyUnavailableError, match="is missing"):
        await pool.run(tasks.echo, 6)
    needed.touch()
    await wait_alive(pool, 1)
    assert await pool.run(tasks.echo, 6) == 6


async def test_broadcast_reaches_every_worker(make_pool):
    pool = await make_pool(size=3)
    busy = asyncio.create_task(pool.run(tasks.sleep, 0.2))
    await asyncio.sleep(0)
    pids = await pool.broadcast(tasks.pid)
    assert len(set(pids)) == 3
    await busy


async def test_close_runs_the_worker_finalizers(tmp_path):
    pool = WorkerPool(tasks.init_marker, (str(tmp_path),), 2, FAST)
    await pool.start()
    pids = await pool.broadcast(tasks.pid)
    busy = asyncio.create_task(pool.run(tasks.sleep, 0.3))
    await asyncio.sleep(0.05)
    await pool.close()
    assert await busy == 0.3  # a task in flight finishes first
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"closed-{p}" for p in pids)
    assert pool.alive == 0
    with pytest.raises(KeyUnavailableError):
        await pool.run(tasks.echo, 7)


@pytest.fixture(scope="session")
def flate_bomb(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.pdf"
    tasks.bomb_pdf(path)
    return path


@pytest.mark.parametrize("memory", [1024 * MiB, 400 * MiB], ids=["1GiB", "400MiB"])
async def test_flate_bomb_in_pyhanko_ends_cleanly(make_pool, flate_bomb, memory):
    """pyHanko's DecodeLimits stop it under 1 GiB; under 400 MiB the memory limit does."""
    pool = await make_pool(limits=WorkerLimits(memory, cpu_seconds=20, wall_seconds=30))
    bomb = asyncio.create_task(pool.run(tasks.read_every_stream, str(flate_bomb)))
    await asyncio.sleep(0.05)
    assert await pool.run(tasks.echo, "innocent") == "innocent"
    try:
        decoded = await bomb
    except WorkerLimitError:
        pass
    except Exception as exc:  # pyHanko's own limit is a clean refusal too
        assert "limit" in str(exc), exc
    else:
        pytest.fail(f"the bomb decoded to {decoded} bytes")
    assert await pool.run(tasks.echo, 8) == 8


async def test_signing_pool_signs_and_survives_a_bomb(dev_pki, flate_bomb):
    """SigningPool on WorkerPool: real keys in every worker, ``run`` sees their state."""
    spec = development_spec(dev_pki, DEMO_AGENCIES[:1])
    agency = DEMO_AGENCIES[0].code
    pool = SigningPool(spec, 2, WorkerLimits(400 * MiB, cpu_seconds=20, wall_seconds=30))
    try:
        statuses = await pool.start()
        assert len({s.pid for s in statuses}) == 2 and statuses[0].agencies == (agency,)
        assert await pool.run(tasks.signing_state_agencies) == [agency]
        options = SignOptions(agency=agency, level=Level.B_B, appearance=Appearance.AGENCY)
        now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        bomb = asyncio.create_task(pool.sign(flate_bomb.read_bytes(), options, now))
        await asyncio.sleep(0.05)
        result = await pool.sign(simple_pdf(), options, now)
        assert result.pdf.startswith(b"%PDF")
        try:  # signing appends an update without inflating the page content: it may pass
            assert (await bomb).pdf.startswith(b"%PDF")
        except SigningError as exc:
            assert exc.code in {"resource_limit", "damaged_pdf"}, exc.detail
        assert (await pool.sign(simple_pdf(), options, now)).pdf.startswith(b"%PDF")
    finally:
        await pool.close()


async def test_cancelled_caller_stops_its_running_task_only_when_asked(make_pool):
    pool = await make_pool(size=1)
    before = await pool.broadcast(tasks.pid)
    # default: the task finishes on its worker, which stays
    call = asyncio.ensure_future(pool.run(tasks.sleep, 0.5))
    await asyncio.sleep(0.2)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await pool.broadcast(tasks.pid) == before
    # stop_on_cancel: the worker is killed at once and replaced; the next caller is served
    call = asyncio.ensure_future(pool.run(tasks.sleep, 30, stop_on_cancel=True))
    await asyncio.sleep(0.3)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await pool.run(tasks.echo, "next", wall_seconds=20) == "next"
    after = await pool.broadcast(tasks.pid)
    assert after != before and len(after) == 1


async def test_cancelled_caller_leaves_the_queue_before_its_turn(make_pool, tmp_path):
    pool = await make_pool(size=1)
    busy = asyncio.ensure_future(pool.run(tasks.sleep, 0.3))
    await asyncio.sleep(0.05)
    marker = tmp_path / "ran"
    queued = asyncio.ensure_future(pool.run(tasks.touch, str(marker)))
    await asyncio.sleep(0.05)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert await busy == 0.3
    assert await pool.run(tasks.echo, 1) == 1
    assert not marker.exists()  # the cancelled task never ran
