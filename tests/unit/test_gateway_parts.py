"""Roles, rate limiting and the signing-record store."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib

import pytest

from exchange.records import IdempotencyConflict, RecordStore
from gateway.auth import Principal, Role
from gateway.problems import Problem
from gateway.ratelimit import RateLimiter


def test_roles_decide_which_agency_signs():
    agency = Principal(Role.AGENCY, "000.00.00.H41", "b")
    assert agency.signing_agency(None) == "000.00.00.H41"
    assert agency.signing_agency("000.00.00.H41") == "000.00.00.H41"
    with pytest.raises(Problem) as exc:
        agency.signing_agency("000.00.01.H41")
    assert exc.value.status == 403
    admin = Principal(Role.ADMIN, None, "a")
    assert admin.signing_agency("000.00.01.H41") == "000.00.01.H41"
    with pytest.raises(Problem):
        admin.signing_agency(None)
    with pytest.raises(Problem) as exc:
        Principal(Role.AUDITOR, None, "c").signing_agency("000.00.01.H41")
    assert exc.value.status == 403


def test_rate_limiter_bucket():
    limiter = RateLimiter(rate_per_s=1, burst=3)
    assert [limiter.allow("a", now=0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b", now=0)  # per client
    assert limiter.allow("a", now=1.5)  # refilled


def test_record_store_keeps_bytes_and_replays(tmp_path):
    store = RecordStore(tmp_path / "archive")
    now = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)

    async def run():
        rec = await store.add(
            agency="000.00.00.H41",
            requested_by="b",
            level="B-B",
            appearance="none",
            input_sha256="00",
            output_sha256=hashlib.sha256(b"%PDF-signed").hexdigest(),
            pdf=b"%PDF-signed",
            now=now,
            idempotency_key="k1",
            request_fingerprint="f1",
        )
        again = await RecordStore(tmp_path / "archive").replay("b", "k1", "f1")  # reloads journal
        assert again is not None and again[0] == rec and again[1] == b"%PDF-signed"
        assert await store.replay("b", "other", "f1") is None
        with pytest.raises(IdempotencyConflict):
            await store.replay("b", "k1", "different-request")

    asyncio.run(run())


async def test_event_loop_lag_is_measured():
    import time

    from gateway.metrics import Metrics

    metrics = Metrics()
    watch = asyncio.create_task(metrics.watch_event_loop(interval=0.01))
    await asyncio.sleep(0.05)
    time.sleep(0.12)  # block the loop on purpose
    await asyncio.sleep(0.05)
    watch.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watch
    text = metrics.render().decode()
    buckets = {
        line.split('le="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("docgate_event_loop_lag_seconds_bucket")
    }
    assert buckets["+Inf"] >= 3
    assert buckets["+Inf"] - buckets["0.1"] >= 1  # the blocked turn was seen late by > 100 ms
