"""Writing one new exchange, inside the caller's unit of work: the blob row, the
exchange, its recipients, the audit entries, the webhook outbox rows, duplicate
detection and the idempotency record (the stored first answer).

Recipient rows (what inboxes, statuses and the monthly report count as received):

- electronic: one per ``to`` agency, status empty (delivered, not acknowledged yet);
- paper, incoming: one for the registering agency (it processes the document and posts
  its statuses; the agency it came from is not a party);
- paper, outgoing: none; each receiving agency registers its own paper copy.

Audit entries: SIGNED when the gateway signed, then SENT + RECEIVED per recipient for an
electronic exchange, or REGISTERED for paper.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from signing.options import Level

from .envelope import Envelope, ExchangeError, IdempotencyConflict
from .models import (
    AuditEvent,
    BlobRecord,
    Channel,
    Direction,
    Exchange,
    IdempotencyRecord,
    Recipient,
)

__all__ = [
    "CreateResult",
    "Prepared",
    "check_idempotency_key",
    "find_duplicate",
    "receivers",
    "record_exchange",
    "remember_answer",
    "stored_answer",
    "weakest_level",
]

Audit = Callable[..., Awaitable[object]]
Notify = Callable[..., Awaitable[None]]  # (session, exchange_id, agency, payload, now)


@dataclass(frozen=True)
class CreateResult:
    id: str
    document_sha256: str | None
    recipients: tuple[tuple[str, str | None], ...]  # (agency, status)
    created_at: dt.datetime
    duplicate_of: str | None
    replayed: bool = False  # the stored first answer to a retried Idempotency-Key

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "document_sha256": self.document_sha256,
            "recipients": [{"agency": a, "status": s} for a, s in self.recipients],
            "created_at": self.created_at.isoformat(),
            "duplicate_of": self.duplicate_of,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool) -> CreateResult:
        return cls(
            data["id"],
            data["document_sha256"],
            tuple((r["agency"], r["status"]) for r in data["recipients"]),
            dt.datetime.fromisoformat(data["created_at"]),
            data["duplicate_of"],
            replayed,
        )


@dataclass(frozen=True)
class Prepared:
    """The bytes to archive and what is known of their signature."""

    data: bytes | Path | None  # Path: a large document on disk (moved into the blob store)
    input_sha256: str | None = None  # of the document as submitted
    level: str | None = None
    report: dict | None = None  # the verification report (sign: false)
    signature_valid: bool | None = None  # None: not checked (paper)


def receivers(envelope: Envelope) -> tuple[str, ...]:
    if envelope.channel is Channel.ELECTRONIC:
        return envelope.recipients
    if envelope.direction is Direction.INCOMING:
        return (envelope.registrant,)
    return ()


async def record_exchange(
    s,
    *,
    envelope: Envelope,
    prepared: Prepared,
    blob: tuple[str, int] | None,
    exchanged_at: dt.datetime,
    now: dt.datetime,
    actor: str,
    audit: Audit,
    notify: Notify,
) -> CreateResult:
    """Add everything for one new exchange to session ``s`` (``blob`` is the stored
    document's (sha256, size), already durable)."""
    sha = blob[0] if blob is not None else None
    if blob is not None:
        await s.execute(_insert_blob(s, blob, now))
    duplicate_of = await find_duplicate(s, envelope, prepared.input_sha256)
    doc = envelope.document
    exchange = Exchange(
        id=str(uuid.uuid4()),
        sender_code=envelope.sender,
        channel=envelope.channel.value,
        direction=envelope.direction.value,
        doc_number=doc.number,
        doc_notation=doc.notation,
        doc_type=doc.type,
        subject=doc.subject,
        promulgated_at=doc.promulgated_at,
        due_date=doc.due_date,
        secret=doc.secret,
        document_sha256=sha,
        input_sha256=prepared.input_sha256,
        signed_by_gateway=envelope.sign,
        level=prepared.level,
        signature_valid=prepared.signature_valid,
        verification_json=json.dumps(prepared.report) if prepared.report else None,
        envelope_json=json.dumps(envelope.to_json(), ensure_ascii=False),
        duplicate_of=duplicate_of,
        exchanged_at=exchanged_at,
        created_at=now,
    )
    s.add(exchange)
    await s.flush()
    codes = receivers(envelope)
    s.add_all(Recipient(exchange_id=exchange.id, agency_code=c, updated_at=now) for c in codes)
    await s.flush()

    async def log(event: AuditEvent, payload: dict[str, Any]) -> None:
        await audit(s, event=event, actor=actor, subject=exchange.id, payload=payload, now=now)

    common = {"from": envelope.sender, "to": list(envelope.recipients), "document_sha256": sha}
    if envelope.sign:
        signed = {"level": prepared.level, "level_requested": envelope.level.value}
        await log(AuditEvent.SIGNED, common | signed)
    if envelope.channel is Channel.PAPER:
        registered = {
            "agency": envelope.registrant,
            "direction": envelope.direction.value,
            "exchanged_at": exchanged_at.isoformat(),
        }
        await log(AuditEvent.REGISTERED, common | registered)
    else:
        sent = {"signature_valid": prepared.signature_valid, "duplicate_of": duplicate_of}
        await log(AuditEvent.SENT, common | sent)
        for code in codes:
            await log(AuditEvent.RECEIVED, {"agency": code, "document_sha256": sha})
            await notify(s, exchange.id, code, common | {"to": code}, now)
    return CreateResult(exchange.id, sha, tuple((c, None) for c in codes), now, duplicate_of)


async def find_duplicate(s, envelope: Envelope, input_sha: str | None) -> str | None:
    """The first exchange from the same sender with the same submitted document and the
    same recipient set (the new one is still created, and points to it). Matching on the
    submitted bytes finds resends that the gateway signed anew each time."""
    if input_sha is None:
        return None
    rows = await s.execute(
        select(Exchange.id, Exchange.envelope_json)
        .where(Exchange.sender_code == envelope.sender, Exchange.input_sha256 == input_sha)
        .order_by(Exchange.created_at, Exchange.id)
        .limit(200)
    )
    wanted = sorted(envelope.recipients)
    for exchange_id, envelope_json in rows:
        if sorted(json.loads(envelope_json)["to"]) == wanted:
            return exchange_id
    return None


def _insert_blob(s, blob: tuple[str, int], now: dt.datetime):
    dialect = postgresql if s.bind.dialect.name == "postgresql" else sqlite
    return (
        dialect.insert(BlobRecord)
        .values(sha256=blob[0], size=blob[1], created_at=now)
        .on_conflict_do_nothing(index_elements=["sha256"])
    )


def weakest_level(report: dict) -> str | None:
    """The lowest PAdES level among the report's signatures."""
    order = [level.value for level in Level]
    found = [
        sig.get("level")
        for sig in report.get("signatures") or ()
        if isinstance(sig, dict) and sig.get("level") in order
    ]
    return min(found, key=order.index) if found else None


# -- idempotency ------------------------------------------------------------------------


def check_idempotency_key(key: object) -> None:
    if not isinstance(key, str) or not 1 <= len(key) <= 200 or not key.isprintable():
        raise ExchangeError(
            "invalid_idempotency_key",
            422,
            "Idempotency-Key must be 1-200 printable characters",
            "Idempotency-Key",
        )


async def stored_answer(s, principal: str, key: str, fingerprint: str) -> CreateResult | None:
    row = await s.get(IdempotencyRecord, (principal, key))
    if row is None:
        return None
    if row.fingerprint != fingerprint:
        raise IdempotencyConflict()
    return CreateResult.from_json(json.loads(row.response_json), replayed=True)


def remember_answer(
    s, principal: str, idempotency: tuple[str, str], result: CreateResult, now: dt.datetime
) -> None:
    key, fingerprint = idempotency
    s.add(
        IdempotencyRecord(
            principal=principal,
            key=key,
            fingerprint=fingerprint,
            status=201,
            response_json=json.dumps(result.to_json()),
            created_at=now,
        )
    )
