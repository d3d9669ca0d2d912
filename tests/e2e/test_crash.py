"""Crash consistency of exchanges: ``kill -9`` of the whole service under load.

Agency A keeps sending signed exchanges to B and C from 8 threads; after 3-5 s the
service's process group (the server and its signing workers) gets SIGKILL, at whatever
point each request is (signing, blob write, the transaction, the webhook dispatcher in
the middle of a delivery). The service restarts on the same var dir and database, and:

- every exchange that got a 201 survived: it is in B's and C's inbox and A's outbox, its
  document downloads (as B and as C) with the acknowledged SHA-256, is a signed revision
  of the bytes A sent, and verifies valid;
- every exchange visible after the restart is whole (all or nothing): both recipients, a
  readable document, its four audit entries (signed, sent, received x2) and one webhook
  outbox row per recipient; no exchange audit entry names an exchange that does not exist;
- the audit chain verifies;
- the webhook notifications are not lost: after the restart they are delivered (at least
  once), except those the killed dispatcher had claimed, which stay pending until their
  lease ends.

On SQLite and on PostgreSQL (a fresh database per run, dropped at the end). B and C get a
webhook (set in the database: there is no API for it yet) pointing at a receiver in this
process. The load, the kill, the receiver and the checks are in tests/fixtures/load.py.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

from tests.fixtures.db import Backend, throwaway_pg_database
from tests.fixtures.load import (
    SENDERS,
    WEBHOOK_SECRET,
    A,
    B,
    C,
    Load,
    Receiver,
    check,
    kill_group,
    send_until,
)
from tests.fixtures.service import RunningService, start_service, stop_service

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    var_dir = tmp_path / "var"
    if request.param == "sqlite":
        yield Backend("sqlite", var_dir, {})
        return
    with throwaway_pg_database("docgate_crash") as url:
        yield Backend("postgresql", var_dir, {"DOCGATE_DATABASE__URL": url}, url)


@pytest.fixture
def services():
    """Services started by the test; whatever still runs at the end is killed (group)."""
    started: list[RunningService] = []
    yield started
    for svc in started:
        if svc.process.poll() is None:
            try:
                os.killpg(svc.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            svc.process.wait(timeout=30)


# -- the test ---------------------------------------------------------------------------


def test_kill_9_under_load_loses_no_acknowledged_exchange(backend: Backend, services):
    env = {"DOCGATE_DELIVERY__POLL_SECONDS": "0.2", **backend.env}
    with Receiver() as receiver:
        svc = start_service(backend.var_dir, env, new_session=True)
        services.append(svc)
        for agency in (B, C):  # webhooks: no API sets them yet
            backend.execute(
                f"UPDATE agencies SET webhook_url = '{receiver.url(agency)}', "
                f"webhook_secret = '{WEBHOOK_SECRET}' WHERE code = '{agency}'"
            )

        load, stop = Load(), threading.Event()
        token_a = svc.token(A)
        senders = [
            threading.Thread(target=send_until, args=(svc, token_a, stop, load, i), daemon=True)
            for i in range(SENDERS)
        ]
        started_at = time.monotonic()
        for t in senders:
            t.start()
        time.sleep(random.uniform(3.0, 5.0))
        kill_at = time.monotonic()
        killed = kill_group(svc)
        stop.set()
        for t in senders:
            t.join(timeout=90)
        assert not any(t.is_alive() for t in senders), "a sender thread hangs"
        with load.lock:
            acked = list(load.acked)
        in_flight = [error for started, error in load.cut if started < kill_at]
        summary = [
            f"{backend.name}: killed the group {killed} (server, workers, helpers) after "
            f"{kill_at - started_at:.1f} s: {len(acked)} exchanges acknowledged, "
            f"{len(in_flight)} requests in flight cut off ({sorted(set(in_flight))[:3]}), "
            f"{len(load.refused)} refused"
        ]
        assert len(killed) >= 3, f"expected the server and its 2 workers in the group: {killed}"
        assert len(acked) >= 10, f"the load produced too few exchanges: {summary}"

        svc = start_service(backend.var_dir, env, new_session=True)
        services.append(svc)
        problems = check(svc, backend, receiver, acked, summary)
        problems += [f"answer other than 201 before the kill: {r}" for r in load.refused]
        stop_service(svc)

    print("\n".join(summary))
    assert not problems, "\n".join(summary + problems[:60] + [f"({len(problems)} problems)"])
