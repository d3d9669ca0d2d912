"""Webhook notification of agencies through a transactional outbox.

``enqueue`` adds an outbox row in the caller's transaction, so the notification exists
exactly when the exchange does. ``WebhookDispatcher`` delivers due rows:

1. *Claim*, one short transaction: ``UPDATE outbox SET attempts = attempts + 1,
   next_attempt_at = now + lease WHERE id IN (SELECT ... due ... LIMIT n FOR UPDATE SKIP
   LOCKED) RETURNING ...``. On PostgreSQL concurrent dispatchers skip each other's rows;
   SQLite has a single writer, so the same statement (without SKIP LOCKED) is atomic there.
   The bumped ``next_attempt_at`` is a lease: a dispatcher that dies mid-delivery leaves
   the row to be claimed again when the lease ends (delivery is at least once; receivers
   deduplicate on ``DocGate-Delivery``).
2. *POST* each claimed message, outside any transaction, signed with HMAC-SHA256.
3. *Record*, one transaction: a ``DeliveryAttempt`` per POST, and the row's new state:
   delivered on 2xx, else retried with exponential backoff and jitter, failed after
   ``max_attempts``. The update only applies while the claim is still ours (``attempts``
   unchanged), so a late dispatcher never overwrites a newer one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import hashlib
import hmac
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from .db import Database
from .models import Agency, DeliveryAttempt, OutboxMessage, OutboxState

__all__ = [
    "WebhookDispatcher",
    "WebhookEvent",
    "delivery_state",
    "enqueue",
    "signature_header",
    "verify_signature",
]

_log = logging.getLogger(__name__)
_ERROR_MAX = 500  # outbox.last_error and delivery_attempts.error are String(500)


class WebhookEvent(enum.Enum):
    EXCHANGE_RECEIVED = "exchange.received"
    STATUS_CHANGED = "exchange.status_changed"


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _aware_utc(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(dt.UTC)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def enqueue(
    session: AsyncSession,
    *,
    exchange_id: str,
    agency: Agency,
    payload: dict[str, Any],
    now: dt.datetime,
    event: WebhookEvent = WebhookEvent.EXCHANGE_RECEIVED,
) -> OutboxMessage | None:
    """Add a notification for ``agency`` to the caller's transaction (not flushed, not
    committed); ``None`` when the agency has no webhook."""
    if not agency.webhook_url:
        return None
    now = _aware_utc(now)
    body = {
        "event": event.value,
        "exchange_id": exchange_id,
        "agency": agency.code,
        "created_at": now.isoformat(),
        "data": payload,
    }
    message = OutboxMessage(
        exchange_id=exchange_id,
        agency_code=agency.code,
        url=agency.webhook_url,
        payload_json=json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        state=OutboxState.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    return message


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, at: dt.datetime) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``."""
    timestamp = int(_aware_utc(at).timestamp())
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance_s: float = 300,
    now: dt.datetime | None = None,
) -> bool:
    """Whether ``header`` (DocGate-Signature) signs ``body`` with ``secret`` and its time is
    within ``tolerance_s`` of ``now``. Several ``v1`` values (a secret being rotated) are
    accepted; anything malformed is simply ``False``."""
    timestamp: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                return False
            timestamp = int(value)
        elif key == "v1":
            macs.append(value)
    if timestamp is None or not macs:
        return False
    current = (_utc_now() if now is None else _aware_utc(now)).timestamp()
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _mac(secret, timestamp, body)
    return any(hmac.compare_digest(expected.encode(), mac.encode()) for mac in macs)


async def delivery_state(session: AsyncSession, exchange_id: str) -> list[dict[str, Any]]:
    """The webhook notifications of one exchange, JSON-ready, per agency then in order:
    ``id`` (= DocGate-Delivery), ``agency``, ``event``, ``state``, ``attempts``,
    ``last_error``, ``delivered_at``, ``next_attempt_at`` (while pending); times ISO 8601."""
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.exchange_id == exchange_id)
        .order_by(OutboxMessage.agency_code, OutboxMessage.id)
    )

    def iso(value: dt.datetime | None) -> str | None:
        return None if value is None else _utc(value).isoformat()

    pending = OutboxState.PENDING.value
    return [
        {
            "id": m.id,
            "agency": m.agency_code,
            "event": json.loads(m.payload_json).get("event"),
            "state": m.state,
            "attempts": m.attempts,
            "last_error": m.last_error,
            "delivered_at": iso(m.delivered_at),
            "next_attempt_at": iso(m.next_attempt_at) if m.state == pending else None,
        }
        for m in rows
    ]


@dataclass(frozen=True)
class _Claim:
    id: int
    attempts: int  # after the claim's increment: the number of this attempt
    url: str
    payload_json: str
    secret: str | None


@dataclass(frozen=True)
class _Outcome:
    at: dt.datetime
    http_status: int | None
    error: str | None  # None: delivered


class WebhookDispatcher:
    """Delivers due outbox messages. ``run_once`` for one pass, ``run_forever``/``stop`` for
    the application's background task. The HTTP session is injected and not closed here."""

    def __init__(
        self,
        db: Database,
        session: aiohttp.ClientSession,
        *,
        max_attempts: int = 8,
        base_delay_s: float = 2.0,
        max_delay_s: float = 600.0,
        timeout_s: float = 10.0,
        batch: int = 20,
        lease_s: float | None = None,
        clock: Callable[[], dt.datetime] = _utc_now,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1 or batch < 1:
            raise ValueError("max_attempts and batch must be at least 1")
        self._db = db
        self._http = session
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._batch = batch
        self._lease = dt.timedelta(seconds=lease_s if lease_s is not None else 30 + 3 * timeout_s)
        self._clock = clock
        self._rng = rng or random.Random()
        self._stopping = asyncio.Event()

    def backoff(self, attempts: int) -> dt.timedelta:
        """Delay after failed attempt number ``attempts``: exponential, capped, with the
        upper half jittered so that failing receivers are not hit in lockstep."""
        delay = min(self._max_delay_s, self._base_delay_s * 2 ** min(attempts - 1, 60))
        return dt.timedelta(seconds=delay * (0.5 + 0.5 * self._rng.random()))

    async def run_once(self) -> int:
        """One pass: claim, POST and record up to ``batch`` due messages; how many were
        attempted. A failing endpoint never raises; a failing database does."""
        claims = await self._claim()
        if not claims:
            return 0
        outcomes = await asyncio.gather(*(self._post(claim) for claim in claims))
        await self._record(claims, outcomes)
        return len(claims)

    async def run_forever(self, interval_s: float) -> None:
        self._stopping.clear()
        while not self._stopping.is_set():
            try:
                attempted = await self.run_once()
            except (SQLAlchemyError, OSError):
                # The database is down or busy: the leases keep every message; try later.
                _log.exception("webhook dispatch pass failed")
                attempted = 0
            if attempted >= self._batch:
                continue  # more may be due right now
            try:
                await asyncio.wait_for(self._stopping.wait(), interval_s)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping.set()

    async def _claim(self) -> list[_Claim]:
        now = _aware_utc(self._clock())
        m = OutboxMessage
        due = (
            select(m.id)
            .where(m.state == OutboxState.PENDING.value, m.next_attempt_at <= now)
            .order_by(m.next_attempt_at, m.id)
            .limit(self._batch)
        )
        if self._db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        claim = (
            update(m)
            .where(m.id.in_(due.scalar_subquery()))
            .values(attempts=m.attempts + 1, next_attempt_at=now + self._lease)
            .returning(m.id, m.attempts, m.url, m.payload_json, m.agency_code)
            .execution_options(synchronize_session=False)
        )
        async with self._db.sessions() as session, session.begin():
            rows = (await session.execute(claim)).all()
            if not rows:
                return []
            codes = {row.agency_code for row in rows}
            found = await session.execute(
                select(Agency.code, Agency.webhook_secret).where(Agency.code.in_(codes))
            )
            secrets = {code: secret for code, secret in found}
        return [
            _Claim(row.id, row.attempts, row.url, row.payload_json, secrets.get(row.agency_code))
            for row in sorted(rows, key=lambda r: r.id)
        ]

    async def _post(self, claim: _Claim) -> _Outcome:
        at = _aware_utc(self._clock())
        if not claim.secret:
            return _Outcome(at, None, "the agency has no webhook secret")
        body = claim.payload_json.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "DocGate-Event": str(json.loads(claim.payload_json).get("event", "")),
            "DocGate-Delivery": str(claim.id),
            "DocGate-Signature": signature_header(claim.secret, body, at),
        }
        try:
            async with self._http.post(
                claim.url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                status = response.status
        except TimeoutError:
            return _Outcome(at, None, f"no answer within {self._timeout.total:g} s")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return _Outcome(at, None, f"{type(exc).__name__}: {exc}"[:_ERROR_MAX])
        return _Outcome(at, status, None if 200 <= status < 300 else f"HTTP {status}")

    async def _record(self, claims: Sequence[_Claim], outcomes: Sequence[_Outcome]) -> None:
        now = _aware_utc(self._clock())
        async with self._db.sessions() as session, session.begin():
            for claim, outcome in zip(claims, outcomes, strict=True):
                at, status, error = outcome.at, outcome.http_status, outcome.error
                session.add(
                    DeliveryAttempt(outbox_id=claim.id, at=at, http_status=status, error=error)
                )
                changes: dict[str, Any] = {"last_error": error}
                if error is None:
                    changes |= {"state": OutboxState.DELIVERED.value, "delivered_at": now}
                elif claim.attempts >= self._max_attempts:
                    changes["state"] = OutboxState.FAILED.value
                else:
                    changes["next_attempt_at"] = now + self.backoff(claim.attempts)
                m = OutboxMessage
                result = await session.execute(
                    update(m)  # only while the claim is still ours
                    .where(
                        m.id == claim.id,
                        m.attempts == claim.attempts,
                        m.state == OutboxState.PENDING.value,
                    )
                    .values(**changes)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != 1:
                    _log.warning("outbox message %s was claimed again meanwhile", claim.id)
