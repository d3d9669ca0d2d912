"""The audit chain: every recorded event is one ``AuditEntry`` linked to the one before
it by SHA-256, written in the caller's transaction, and the chain head is timestamped
by a TSA (RFC 3161) now and then as an ``AuditCheckpoint``.

The link is ``hash = SHA-256(bytes.fromhex(prev_hash) || document)`` where the document
is the canonical JSON (sorted keys, no whitespace, UTF-8, ``ensure_ascii=False``) of
``{seq, created_at, event, actor, subject, payload}``, ``created_at`` in UTC ISO 8601
with microseconds; the first entry (seq 1) links to 64 zeros. ``payload_json`` holds the
canonical JSON of the payload, so a changed byte anywhere in a row changes the hash.

Appends serialise so the chain never forks: on PostgreSQL ``append`` takes a
transaction-scoped advisory lock before reading the head; on SQLite it first runs a
write that matches no row, which takes SQLite's single write lock (waiting up to the
busy timeout) before the head is read in the same write transaction. Either way the
lock is held until the caller's transaction ends, so append late in a transaction.
The primary key on ``seq`` turns anything that bypasses the lock into a loud failure.

A chain alone cannot show that its newest entries were cut off; a checkpoint can.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.general import extract_signer_info
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation.generic_cms import (
    extract_certs_for_validation,
    validate_sig_integrity,
)
from sqlalchemy import String, select, text, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from .models import AuditCheckpoint, AuditEntry, AuditEvent

__all__ = [
    "GENESIS_HASH",
    "AuditError",
    "ChainVerdict",
    "append",
    "checkpoint",
    "entry_hash",
    "render_verdict",
    "verify_chain",
]

GENESIS_HASH = "0" * 64
_ADVISORY_LOCK_KEY = 0x446F6347_61746541  # "DocGateA": the audit chain's PostgreSQL lock
_SQLITE_WRITE_LOCK = "UPDATE audit_entries SET seq = seq WHERE 1 = 0"
_CHUNK = 1000  # entries per fetch when verifying
_TEXT_LIMITS = {"actor": 200, "subject": 200}


class AuditError(Exception):
    """An entry that cannot be recorded, or a checkpoint that cannot be made."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    entries: int
    first_broken_seq: int | None
    reason: str | None
    checkpoints: int
    checkpoints_ok: bool


def _canonical(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _utc_iso(moment: dt.datetime) -> str:
    # SQLite hands back naive datetimes; append stores UTC, so naive means UTC.
    utc = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    return utc.isoformat(timespec="microseconds")


def entry_hash(
    prev_hash: str,
    *,
    seq: int,
    created_at: dt.datetime,
    event: str,
    actor: str,
    subject: str,
    payload: Any,
) -> str:
    """The hex SHA-256 link of one entry (``payload`` decoded, not its JSON text)."""
    document = {
        "seq": seq,
        "created_at": _utc_iso(created_at),
        "event": event,
        "actor": actor,
        "subject": subject,
        "payload": payload,
    }
    digest = hashlib.sha256(bytes.fromhex(prev_hash))
    digest.update(_canonical(document).encode("utf-8"))
    return digest.hexdigest()


def _checked_text(name: str, value: str) -> str:
    if not isinstance(value, str) or len(value) > _TEXT_LIMITS[name]:
        raise AuditError(f"{name} must be a string of at most {_TEXT_LIMITS[name]} characters")
    if "\x00" in value:
        raise AuditError(f"{name} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise AuditError(f"{name} is not encodable as UTF-8") from None
    return value


def _payload_json(payload: dict) -> str:
    if not isinstance(payload, dict):
        raise AuditError("payload must be a JSON object (a dict)")
    try:
        first = _canonical(payload)
        stored = _canonical(json.loads(first))  # int keys become strings, tuples lists
        stored.encode("utf-8")
    except (TypeError, ValueError):
        raise AuditError("payload is not representable as canonical JSON") from None
    return stored


def _aware(now: dt.datetime) -> dt.datetime:
    if not isinstance(now, dt.datetime) or now.utcoffset() is None:
        raise AuditError("now must be a timezone-aware datetime")
    return now.astimezone(dt.UTC)


async def _take_append_lock(session: AsyncSession) -> None:
    dialect = (await session.connection()).dialect.name
    if dialect == "postgresql":
        await session.execute(text(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK_KEY})"))
    elif dialect == "sqlite":
        # The driver opens a deferred transaction before this statement; the write
        # takes the database write lock now (honouring busy_timeout), so the head is
        # read below inside a write transaction no other appender can enter.
        await session.execute(text(_SQLITE_WRITE_LOCK))
    else:
        raise AuditError(f"the audit chain does not support the {dialect} database")


async def _entries(session: AsyncSession):
    """A query of every entry column; on SQLite ``created_at`` comes as the stored text
    (parsed by ``_link_problem``) so that an unreadable value is reported, not raised."""
    table = AuditEntry.__table__
    columns = list(table.c)
    if (await session.connection()).dialect.name == "sqlite":
        raw = type_coerce(table.c.created_at, String).label("created_at")
        columns = [raw if c.name == "created_at" else c for c in columns]
    return select(*columns)


async def append(
    session: AsyncSession,
    *,
    event: AuditEvent,
    actor: str,
    subject: str,
    payload: dict,
    now: dt.datetime,
) -> AuditEntry:
    """Add the next link in the caller's transaction (flushed, not committed)."""
    if not isinstance(event, AuditEvent):
        raise AuditError("event must be an AuditEvent")
    created_at = _aware(now)
    actor, subject = _checked_text("actor", actor), _checked_text("subject", subject)
    payload_json = _payload_json(payload)
    await _take_append_lock(session)
    query = select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    head = (await session.execute(query)).first()
    seq, prev_hash = (head.seq + 1, head.hash) if head is not None else (1, GENESIS_HASH)
    fields = dict(seq=seq, created_at=created_at, event=event.value, actor=actor, subject=subject)
    link = entry_hash(prev_hash, payload=json.loads(payload_json), **fields)
    entry = AuditEntry(**fields, payload_json=payload_json, prev_hash=prev_hash, hash=link)
    session.add(entry)
    await session.flush()
    return entry


def _link_problem(row, expected_seq: int, prev_hash: str) -> str | None:
    """Why ``row`` does not continue a chain whose last link is ``prev_hash``."""
    seq = row.seq
    if seq < expected_seq:
        return f"entry {seq} is out of sequence (expected {expected_seq})"
    if seq > expected_seq:
        if seq == expected_seq + 1:
            return f"entry {expected_seq} is missing before entry {seq}"
        return f"entries {expected_seq} to {seq - 1} are missing before entry {seq}"
    if row.prev_hash != prev_hash:
        before = "the genesis hash" if seq == 1 else f"entry {seq - 1}"
        return f"entry {seq} does not link to {before} (prev_hash mismatch)"
    try:
        payload = json.loads(row.payload_json)
        canonical = _canonical(payload) == row.payload_json
    except (TypeError, ValueError):
        canonical = False
    if not canonical:
        return f"entry {seq} was altered (payload is not canonical JSON)"
    created_at = row.created_at
    try:
        if isinstance(created_at, str):  # SQLite's stored text
            created_at = dt.datetime.fromisoformat(created_at)
        fields = dict(created_at=created_at, event=row.event, actor=row.actor, subject=row.subject)
        recomputed = entry_hash(prev_hash, seq=seq, payload=payload, **fields)
    except (TypeError, ValueError, AttributeError):  # a value of the wrong type or shape
        recomputed = None
    if recomputed != row.hash:
        return f"entry {seq} was altered (hash mismatch)"
    return None


def _token_problem(
    der: bytes, head_hash: str, trusted: Sequence[asn1_x509.Certificate] | None
) -> str | None:
    """Why ``der`` is not an RFC 3161 token over SHA-256(head) signed by a trusted TSA."""
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            return "is not a CMS SignedData"
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            return "does not hold a TSTInfo"
        tst_info = encap["content"].parsed
        imprint = tst_info["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        hashed = imprint["hashed_message"].native
        signer_info = extract_signer_info(signed)
        signer = extract_certs_for_validation(signed).signer_cert
        md = signer_info["digest_algorithm"]["algorithm"].native
        content_digest = hashlib.new(md, bytes(encap["content"])).digest()
        intact, valid = validate_sig_integrity(signer_info, signer, "tst_info", content_digest)
        usages = signer.extended_key_usage_value
        for_timestamps = usages is not None and "time_stamping" in usages.native
        expected = hashlib.sha256(bytes.fromhex(head_hash)).digest()
    except (ValueError, TypeError, KeyError, AttributeError, LookupError):
        return "is unreadable or malformed"
    if algorithm != "sha256" or hashed != expected:
        return "does not cover the chain head (message imprint mismatch)"
    if not (intact and valid):
        return "has an invalid signature"
    if not for_timestamps:
        return "is signed by a certificate not meant for timestamping"
    if trusted is not None and signer.dump() not in {c.dump() for c in trusted}:
        return "is signed by an unexpected TSA"
    return None


def _earliest(current: tuple[int, str] | None, seq: int, reason: str) -> tuple[int, str]:
    return current if current is not None and current[0] <= seq else (seq, reason)


async def verify_chain(
    session: AsyncSession, *, tsa_certificates: Sequence[asn1_x509.Certificate] | None = None
) -> ChainVerdict:
    """Recompute every link (streamed in chunks) and check every checkpoint."""
    # Checkpoints first: each one names an entry committed before it, so the entry
    # scan below sees it even while new entries and checkpoints keep arriving.
    marks: dict[int, list[tuple[int, str]]] = {}
    for cp_id, cp_seq, head in await session.execute(
        select(AuditCheckpoint.id, AuditCheckpoint.seq, AuditCheckpoint.head_hash)
    ):
        marks.setdefault(cp_seq, []).append((cp_id, head))
    known = {cp_id for found in marks.values() for cp_id, _ in found}

    chain_break: tuple[int, str] | None = None
    cp_break: tuple[int, str] | None = None
    entries, expected_seq, prev_hash = 0, 1, GENESIS_HASH
    query = (await _entries(session)).order_by(AuditEntry.seq)
    result = await session.stream(query.execution_options(yield_per=_CHUNK))
    try:
        async for rows in result.partitions():
            for row in rows:
                entries += 1
                if chain_break is None:
                    problem = _link_problem(row, expected_seq, prev_hash)
                    if problem is not None:
                        chain_break = (row.seq, problem)
                expected_seq, prev_hash = row.seq + 1, row.hash
                for cp_id, head in marks.pop(row.seq, ()):
                    if head != row.hash:
                        why = f"checkpoint {cp_id} does not match entry {row.seq}"
                        cp_break = _earliest(cp_break, row.seq, why)
    finally:
        await result.close()
    for seq, found in marks.items():
        for cp_id, _ in found:
            cp_break = _earliest(cp_break, seq, f"checkpoint {cp_id} names missing entry {seq}")

    tokens = select(AuditCheckpoint.__table__).order_by(AuditCheckpoint.seq, AuditCheckpoint.id)
    result = await session.stream(tokens.execution_options(yield_per=_CHUNK))
    try:
        async for rows in result.partitions():
            for cp in rows:
                if cp.id not in known:  # committed after the entries were read
                    continue
                problem = _token_problem(cp.timestamp_token, cp.head_hash, tsa_certificates)
                if problem is not None:
                    why = f"the timestamp token of checkpoint {cp.id} at entry {cp.seq} {problem}"
                    cp_break = _earliest(cp_break, cp.seq, why)
    finally:
        await result.close()

    first = chain_break if cp_break is None else _earliest(chain_break, *cp_break)
    return ChainVerdict(
        ok=first is None,
        entries=entries,
        first_broken_seq=None if first is None else first[0],
        reason=None if first is None else first[1],
        checkpoints=len(known),
        checkpoints_ok=cp_break is None,
    )


async def checkpoint(
    session: AsyncSession, timestamper: TimeStamper, *, now: dt.datetime
) -> AuditCheckpoint | None:
    """Timestamp the chain head (a pyHanko ``TimeStamper``) and store it, flushed, not
    committed; None when the chain is empty or its head already has a checkpoint.
    Appends are not blocked meanwhile: the checkpoint pins the head it read."""
    created_at = _aware(now)
    query = (await _entries(session)).order_by(AuditEntry.seq.desc()).limit(1)
    head = (await session.execute(query)).first()
    if head is None:
        return None
    done = select(AuditCheckpoint.id).where(AuditCheckpoint.seq == head.seq).limit(1)
    if (await session.execute(done)).first() is not None:
        return None
    if _link_problem(head, head.seq, head.prev_hash) is not None:
        raise AuditError(f"entry {head.seq}, the chain head, was altered; not timestamping it")
    digest = hashlib.sha256(bytes.fromhex(head.hash)).digest()
    der = (await timestamper.async_timestamp(digest, "sha256")).dump()
    problem = _token_problem(der, head.hash, None)
    if problem is not None:
        raise AuditError(f"the timestamp authority's token {problem}")
    row = AuditCheckpoint(
        seq=head.seq, head_hash=head.hash, timestamp_token=der, created_at=created_at
    )
    session.add(row)
    await session.flush()
    return row


def render_verdict(verdict: ChainVerdict) -> str:
    """One line for ``docgate audit verify``."""
    if verdict.ok:
        entries = f"{verdict.entries} entr{'y' if verdict.entries == 1 else 'ies'}"
        checkpoints = f"{verdict.checkpoints} checkpoint{'' if verdict.checkpoints == 1 else 's'}"
        return f"audit chain OK: {entries}, {checkpoints} verified"
    return f"audit chain BROKEN at entry {verdict.first_broken_seq}: {verdict.reason}"
