"""Webhook delivery through the outbox, on SQLite and PostgreSQL, to a real HTTP receiver
on 127.0.0.1. Time is a fake clock; the dispatcher is driven pass by pass."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import uuid
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select, update

from exchange.db import Database
from exchange.delivery import (
    WebhookDispatcher,
    WebhookEvent,
    delivery_state,
    enqueue,
    signature_header,
    verify_signature,
)
from exchange.models import (
    Agency,
    Channel,
    DeliveryAttempt,
    Direction,
    Exchange,
    OutboxMessage,
    OutboxState,
)

SECRET = "whsec-test-0123456789"
T0 = dt.datetime(2025, 6, 2, 8, 0, tzinfo=dt.UTC)  # in the past: due for the real clock too


class FakeClock:
    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class Receiver:
    url: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_next: int = 0  # answer 500 to this many requests
    delay_s: float = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.requests.append((dict(request.headers), body))
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=500, text="down")
        return web.Response(status=204)

    def deliveries(self) -> list[str]:
        return [headers["DocGate-Delivery"] for headers, _ in self.requests]


@pytest.fixture
async def receiver():
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    rec.url = f"http://{host}:{port}/hook"
    yield rec
    await runner.cleanup()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def quiet_outbox(db):
    """The session's database is shared: retire what earlier tests left pending, so that
    every pass of this test's dispatcher sees only this test's messages."""
    async with db.sessions() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.state == OutboxState.PENDING.value)
            .values(state=OutboxState.FAILED.value, last_error="retired by the test suite")
        )


def _code() -> str:
    r = random.Random()
    return f"{r.randrange(1000):03d}.{r.randrange(100):02d}.{r.randrange(100):02d}.H41"


def _agency(webhook_url: str | None) -> Agency:
    return Agency(
        code=_code(),
        name="Sở Thử nghiệm",
        webhook_url=webhook_url,
        webhook_secret=SECRET if webhook_url else None,
        created_at=T0,
    )


def _exchange(sender: Agency) -> Exchange:
    return Exchange(
        id=str(uuid.uuid4()),
        sender_code=sender.code,
        channel=Channel.ELECTRONIC.value,
        direction=Direction.OUTGOING.value,
        subject="Về việc thử nghiệm",
        envelope_json="{}",
        exchanged_at=T0,
        created_at=T0,
    )


async def _send(db: Database, webhook_url: str | None, count: int = 1) -> tuple[Agency, list[str]]:
    """A sender, a recipient with ``webhook_url``, ``count`` exchanges each enqueued in the
    transaction that creates it. Returns the recipient and the exchange ids."""
    sender, recipient = _agency(None), _agency(webhook_url)
    async with db.sessions() as session, session.begin():
        session.add_all([sender, recipient])
    ids = []
    for i in range(count):
        async with db.sessions() as session, session.begin():
            exchange = _exchange(sender)
            session.add(exchange)
            enqueue(
                session,
                exchange_id=exchange.id,
                agency=recipient,
                payload={"subject": exchange.subject, "n": i},
                now=T0,
            )
            ids.append(exchange.id)
    return recipient, ids


async def _messages(db: Database, exchange_ids: list[str]) -> list[OutboxMessage]:
    async with db.sessions() as session:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.exchange_id.in_(exchange_ids))
                .order_by(OutboxMessage.id)
            )
        )


async def _attempts(db: Database, outbox_id: int) -> list[DeliveryAttempt]:
    async with db.sessions() as session:
        return list(
            await session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.outbox_id == outbox_id)
                .order_by(DeliveryAttempt.id)
            )
        )


def _dispatcher(db, http, clock, **kwargs) -> WebhookDispatcher:
    kwargs.setdefault("base_delay_s", 0.01)
    kwargs.setdefault("timeout_s", 5)
    return WebhookDispatcher(db, http, clock=clock, rng=random.Random(7), **kwargs)


pytestmark = pytest.mark.usefixtures("quiet_outbox")


async def test_delivered_on_first_try_with_a_valid_signature(db, http, receiver):
    clock = FakeClock()
    _, (exchange_id,) = await _send(db, receiver.url)
    assert await _dispatcher(db, http, clock).run_once() == 1

    (message,) = await _messages(db, [exchange_id])
    assert message.state == OutboxState.DELIVERED.value and message.attempts == 1
    ((headers, body),) = receiver.requests
    assert headers["Content-Type"] == "application/json"
    assert headers["DocGate-Event"] == WebhookEvent.EXCHANGE_RECEIVED.value
    assert headers["DocGate-Delivery"] == str(message.id)
    sig = headers["DocGate-Signature"]
    assert verify_signature(SECRET, sig, body, now=clock())
    tampered = body.replace("thử".encode(), b"thu")
    assert tampered != body and not verify_signature(SECRET, sig, tampered, now=clock())
    assert not verify_signature("another-secret", sig, body, now=clock())
    assert not verify_signature(SECRET, sig, body, now=clock() + dt.timedelta(minutes=6))
    doc = json.loads(body)
    assert doc["exchange_id"] == exchange_id and doc["data"]["subject"] == "Về việc thử nghiệm"

    (attempt,) = await _attempts(db, message.id)
    assert (attempt.http_status, attempt.error) == (204, None)
    async with db.sessions() as session:
        (state,) = await delivery_state(session, exchange_id)
    assert state["state"] == "delivered" and state["attempts"] == 1
    assert state["last_error"] is None and state["next_attempt_at"] is None
    assert dt.datetime.fromisoformat(state["delivered_at"]) == clock()
    assert await _dispatcher(db, http, clock).run_once() == 0  # nothing is sent twice


async def test_retries_with_backoff_after_errors_then_delivers(db, http, receiver):
    clock = FakeClock()
    receiver.fail_next = 2
    _, (exchange_id,) = await _send(db, receiver.url)
    dispatcher = _dispatcher(db, http, clock, base_delay_s=10)

    assert await dispatcher.run_once() == 1
    (message,) = await _messages(db, [exchange_id])
    assert (message.state, message.attempts, message.last_error) == ("pending", 1, "HTTP 500")
    wait = (message.next_attempt_at.replace(tzinfo=dt.UTC) - clock()).total_seconds()
    assert 5 <= wait <= 10  # base delay, upper half jittered
    assert await dispatcher.run_once() == 0  # not due yet

    clock.advance(10)
    assert await dispatcher.run_once() == 1
    (message,) = await _messages(db, [exchange_id])
    wait = (message.next_attempt_at.replace(tzinfo=dt.UTC) - clock()).total_seconds()
    assert 10 <= wait <= 20 and message.attempts == 2  # doubled

    clock.advance(20)
    assert await dispatcher.run_once() == 1
    (message,) = await _messages(db, [exchange_id])
    assert message.state == "delivered" and message.attempts == 3 and message.last_error is None
    assert [a.http_status for a in await _attempts(db, message.id)] == [500, 500, 204]
    assert len(set(receiver.deliveries())) == 1 and len(receiver.requests) == 3


async def test_gives_up_after_max_attempts(db, http, receiver):
    clock = FakeClock()
    receiver.fail_next = 100
    _, (exchange_id,) = await _send(db, receiver.url)
    dispatcher = _dispatcher(db, http, clock, max_attempts=3)
    for _ in range(5):
        await dispatcher.run_once()
        clock.advance(60)
    (message,) = await _messages(db, [exchange_id])
    assert (message.state, message.attempts, message.last_error) == ("failed", 3, "HTTP 500")
    assert len(await _attempts(db, message.id)) == 3 and len(receiver.requests) == 3
    async with db.sessions() as session:
        (state,) = await delivery_state(session, exchange_id)
    assert state["state"] == "failed" and state["delivered_at"] is None


async def test_unreachable_endpoint_is_recorded_not_raised(db, http, receiver):
    clock = FakeClock()
    dead = receiver.url.replace("/hook", "/missing")  # 404
    _, ids = await _send(db, dead)
    _, more = await _send(db, "http://127.0.0.1:9/hook")  # discard port: refused
    dispatcher = _dispatcher(db, http, clock)
    assert await dispatcher.run_once() == 2
    first, second = await _messages(db, ids + more)
    assert first.last_error == "HTTP 404"
    (attempt,) = await _attempts(db, second.id)
    assert attempt.http_status is None and "ClientConnector" in attempt.error


async def test_no_webhook_url_enqueues_nothing(db, http):
    sender, recipient = _agency(None), _agency(None)
    async with db.sessions() as session, session.begin():
        session.add_all([sender, recipient])
        exchange = _exchange(sender)
        session.add(exchange)
        assert (
            enqueue(session, exchange_id=exchange.id, agency=recipient, payload={}, now=T0) is None
        )
    assert await _messages(db, [exchange.id]) == []
    async with db.sessions() as session:
        assert await delivery_state(session, exchange.id) == []


async def test_rolled_back_enqueue_is_never_delivered(db, http, receiver):
    sender, recipient = _agency(None), _agency(receiver.url)
    async with db.sessions() as session, session.begin():
        session.add_all([sender, recipient])
    async with db.sessions() as session:
        async with session.begin():
            exchange = _exchange(sender)
            session.add(exchange)
            message = enqueue(
                session, exchange_id=exchange.id, agency=recipient, payload={}, now=T0
            )
            assert message is not None
            await session.flush()  # the row exists inside the transaction...
            await session.rollback()  # ...which then fails
    assert await _dispatcher(db, http, FakeClock()).run_once() == 0
    assert receiver.requests == [] and await _messages(db, [exchange.id]) == []


async def test_two_dispatchers_never_deliver_the_same_message_twice(database_url, db, receiver):
    clock = FakeClock()
    receiver.delay_s = 0.02  # keep claims overlapping
    _, ids = await _send(db, receiver.url, count=24)
    other = Database.open(database_url)
    try:
        async with aiohttp.ClientSession() as http_a, aiohttp.ClientSession() as http_b:
            dispatchers = [
                _dispatcher(db, http_a, clock, batch=3),
                _dispatcher(other, http_b, clock, batch=3),
            ]

            async def drain(dispatcher: WebhookDispatcher) -> int:
                total = 0
                while n := await dispatcher.run_once():
                    total += n
                return total

            counts = await asyncio.gather(*(drain(d) for d in dispatchers))
    finally:
        await other.close()
    assert sum(counts) == 24 and all(counts)  # both took part
    assert sorted(receiver.deliveries()) == sorted({*receiver.deliveries()})
    messages = await _messages(db, ids)
    assert {m.state for m in messages} == {"delivered"} and {m.attempts for m in messages} == {1}
    assert sorted(receiver.deliveries()) == sorted(str(m.id) for m in messages)
    async with db.sessions() as session:
        attempts = await session.scalar(
            select(func.count()).where(DeliveryAttempt.outbox_id.in_([m.id for m in messages]))
        )
    assert attempts == 24


async def test_an_expired_lease_is_claimed_again_and_the_late_result_is_ignored(db, http, receiver):
    clock = FakeClock()
    _, (exchange_id,) = await _send(db, receiver.url)
    first = _dispatcher(db, http, clock, lease_s=30)
    claims = await first._claim()  # a dispatcher that claims and then stalls
    assert len(claims) == 1
    assert await _dispatcher(db, http, clock).run_once() == 0  # leased
    clock.advance(31)
    assert await _dispatcher(db, http, clock).run_once() == 1  # the lease ran out
    await first._record(claims, [await first._post(claims[0])])  # the stalled one finishes
    (message,) = await _messages(db, [exchange_id])
    assert message.state == "delivered" and message.attempts == 2
    assert len(await _attempts(db, message.id)) == 2


async def test_run_forever_delivers_and_stops(db, http, receiver):
    _, (exchange_id,) = await _send(db, receiver.url)
    dispatcher = WebhookDispatcher(db, http, base_delay_s=0.01)  # the real clock
    task = asyncio.create_task(dispatcher.run_forever(interval_s=0.05))
    for _ in range(200):
        if receiver.requests:
            break
        await asyncio.sleep(0.01)
    dispatcher.stop()
    await asyncio.wait_for(task, 5)
    (message,) = await _messages(db, [exchange_id])
    assert message.state == "delivered"


def test_signature_header_format_and_malformed_headers():
    body = b'{"a":1}'
    header = signature_header(SECRET, body, T0)
    t, v1 = header.split(",")
    assert t == f"t={int(T0.timestamp())}" and v1.startswith("v1=") and len(v1) == 3 + 64
    assert verify_signature(SECRET, f"{header},v1={'0' * 64}", body, now=T0)  # rotation
    for bad in ["", "t=1", v1, "t=x," + v1, f"{t},{t},{v1}", "garbage", f"{t},v1=é"]:
        assert not verify_signature(SECRET, bad, body, now=T0)
