"""Evidence packages (``GET /v1/exchanges/{id}/evidence``): one ZIP per exchange that a
third party checks offline with nothing from DocGate but the ``verify_evidence/`` folder
it carries: the modules of ``exchange/evidence_check``, copied as they are (``CHECKER``).
Only an operator exports one (admin or auditor), as the chain proof discloses other
exchanges' metadata; the document goes only to an admin (auditors may not download
documents), an auditor's manifest names its SHA-256 for the checker to match the chain.

Layout of the ZIP::

    manifest.json          format, exchange id, generated_at, SHA-256 and size of every
                           other file, the audit range and whether a checkpoint anchors it
    verify_evidence/       the checker (``python verify_evidence <package>``; stdlib, and
                           ``cryptography`` for the token's signature)
    document.pdf           the archived bytes (not for an auditor, nor a paper registration)
    verification.json      the report stored at registration (``sign: false``) or null,
                           with ``signed_by_gateway``, ``level``, ``signature_valid``
    envelope.json          the envelope exactly as registered
    status_history.json    per recipient: status and history (GET /v1/exchanges/{id})
    audit/entries.jsonl    the audit entries, one JSON object a line
    audit/checkpoint.json  the checkpoint that closes the range (when there is one),
    audit/checkpoint.tsr   its RFC 3161 timestamp token (DER)
    audit/tsa_chain.pem    and the certificates embedded in that token

The audit range runs from the first entry that mentions the exchange (as the subject, or
in the payload, e.g. a later ``duplicate_of``) through the nearest checkpoint at or
after the last one, every entry in between included (the chain proof needs each link).
Without such a checkpoint it runs to the head and the manifest says NOT ANCHORED (the
checker refuses that unless told otherwise: anyone can recompute a chain).

Database reads are async (entries streamed in chunks into a spooled temporary file);
hashing and zipping run in a thread. The export is audited as DOWNLOADED with
``{"evidence": true}`` once the package is built; that entry is not in the package.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from asn1crypto import cms, pem
from sqlalchemy import func, or_, select

from .blobs import BlobError
from .envelope import ForbiddenError, StoredDocumentCorrupted
from .models import AuditCheckpoint, AuditEntry, AuditEvent, Role
from .reading import authorize, exchange_detail, load_exchange
from .uow import UnitOfWork

__all__ = ["CHECKER", "FORMAT", "EvidencePackage", "export_evidence"]

FORMAT = "docgate-evidence/1"
AuditAppend = Callable[..., Awaitable[object]]

_CHUNK = 1000  # audit entries per fetch
_SPOOL = 16 * 1024 * 1024  # bytes kept in memory before a temporary file takes over
_ENTRIES = "audit/entries.jsonl"
_CHECKPOINT = "audit/checkpoint.json"
_TOKEN = "audit/checkpoint.tsr"
_TSA_CHAIN = "audit/tsa_chain.pem"
_OPERATORS = (Role.ADMIN, Role.AUDITOR)
_WITHHELD = "not exported to role %s (no document downloads): compared with the chain only"
_CHECKER_SOURCE = Path(__file__).with_name("evidence_check")
_CHECKER_FILES = ("__main__.py", "checks.py", "anchor.py", "der.py")  # not __init__.py
# the checker shipped in every package: its path in the ZIP -> its bytes
CHECKER: dict[str, bytes] = {
    f"verify_evidence/{name}": (_CHECKER_SOURCE / name).read_bytes() for name in _CHECKER_FILES
}


@dataclass(frozen=True)
class EvidencePackage:
    """The ZIP in ``file`` (positioned at its start); the caller reads it, then closes."""

    exchange_id: str
    file: IO[bytes]
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return f"docgate-evidence-{self.exchange_id}.zip"

    def close(self) -> None:
        self.file.close()


@dataclass
class _AuditRange:
    entries: IO[bytes]  # audit/entries.jsonl, written so far
    first_seq: int | None = None
    last_seq: int | None = None  # the last entry that mentions the exchange
    through_seq: int | None = None
    count: int = 0
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    checkpoint: dict[str, Any] | None = None
    token: bytes | None = None


async def export_evidence(
    db,
    blobs,
    exchange_id: str,
    agency: str | None,
    role: Role,
    *,
    audit: AuditAppend,
    now: dt.datetime,
) -> EvidencePackage:
    """Build the evidence ZIP of one exchange for an operator (admin or auditor; the
    document only for an admin), and audit the export."""
    if role not in _OPERATORS:  # before the lookup: says nothing about the exchange
        raise ForbiddenError(
            "evidence packages are exported by an operator (admin or auditor): the chain "
            "proof discloses other exchanges' metadata"
        )
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # closed below
    try:
        async with UnitOfWork(db) as uow:
            s = uow.session
            exchange, recipients = await load_exchange(s, exchange_id)
            authorize(exchange, recipients, agency, role, download=False)
            detail = await exchange_detail(s, exchange, recipients, agency, role)
            exchange_id, sha = exchange.id, exchange.document_sha256
            files: dict[str, bytes] = {
                "verification.json": _json(_verification(exchange)),
                "envelope.json": exchange.envelope_json.encode("utf-8"),
                "status_history.json": _json(
                    {"exchange_id": exchange_id, "recipients": detail["recipients"]}
                ),
            }
            chain = await _audit_range(s, exchange_id, spool)
        document = None
        if sha is not None and role is Role.ADMIN:  # auditors may not download documents
            files["document.pdf"] = await _document(blobs, sha)
            document = {"file": "document.pdf", "sha256": sha}
        elif sha is not None:  # named, for the checker to compare with the chain
            document = {"file": None, "sha256": sha, "withheld": _WITHHELD % role.value}
        if chain.checkpoint is not None and chain.token is not None:
            files[_CHECKPOINT] = _json(chain.checkpoint)
            files[_TOKEN] = chain.token
            chain_pem = _tsa_chain(chain.token)
            if chain_pem:
                files[_TSA_CHAIN] = chain_pem
        manifest = _manifest(exchange_id, document, agency, role, chain, now)
        package = await asyncio.to_thread(_build_zip, files, chain, manifest, now)
    finally:
        spool.close()
    try:
        async with UnitOfWork(db) as uow:
            await audit(
                uow.session,
                event=AuditEvent.DOWNLOADED,
                actor=agency or role.value,
                subject=exchange_id,
                payload={
                    "evidence": True,
                    "role": role.value,
                    "sha256": sha,
                    "document_included": "document.pdf" in files,
                    "package_sha256": package.sha256,
                },
                now=now,
            )
            await uow.commit()
    except BaseException:
        package.close()
        raise
    return package


# -- reading ----------------------------------------------------------------------------


async def _document(blobs, sha: str) -> bytes:
    try:
        data = await blobs.get(sha)
    except BlobError:  # missing or damaged: never packaged, always reported
        raise StoredDocumentCorrupted(sha) from None
    if await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest()) != sha:
        raise StoredDocumentCorrupted(sha)
    return data


async def _audit_range(s, exchange_id: str, out: IO[bytes]) -> _AuditRange:
    chain = _AuditRange(out)
    mentions = or_(
        AuditEntry.subject == exchange_id,
        AuditEntry.payload_json.contains(exchange_id, autoescape=True),
    )
    span = select(func.min(AuditEntry.seq), func.max(AuditEntry.seq)).where(mentions)
    chain.first_seq, chain.last_seq = (await s.execute(span)).one()
    if chain.first_seq is None:
        return chain
    cp = (
        await s.execute(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.seq >= chain.last_seq)
            .order_by(AuditCheckpoint.seq, AuditCheckpoint.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    if cp is not None:
        chain.through_seq, chain.token = cp.seq, bytes(cp.timestamp_token)
        chain.checkpoint = _checkpoint_json(cp)
    else:
        chain.through_seq = (await s.execute(select(func.max(AuditEntry.seq)))).scalar_one()
    table = AuditEntry.__table__
    query = (
        select(table)
        .where(table.c.seq >= chain.first_seq, table.c.seq <= chain.through_seq)
        .order_by(table.c.seq)
    )
    result = await s.stream(query.execution_options(yield_per=_CHUNK))
    try:
        async for rows in result.partitions():
            await asyncio.to_thread(_write_entries, chain, rows)
    finally:
        await result.close()
    return chain


def _write_entries(chain: _AuditRange, rows: Sequence[Any]) -> None:
    data = b"".join(_entry_line(row) for row in rows)
    chain.entries.write(data)
    chain.digest.update(data)
    chain.count += len(rows)
    chain.size += len(data)


def _entry_line(row) -> bytes:
    try:
        payload = json.loads(row.payload_json)
    except ValueError:  # an altered row: packaged as it is, the checker will say so
        payload = row.payload_json
    entry = {k: getattr(row, k) for k in ("seq", "event", "actor", "subject", "prev_hash", "hash")}
    entry.update(created_at=_utc_iso(row.created_at), payload=payload)
    text = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8") + b"\n"


def _utc_iso(moment: dt.datetime) -> str:
    """As ``audit.entry_hash`` writes it (SQLite hands back naive UTC)."""
    utc = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    return utc.isoformat(timespec="microseconds")


def _checkpoint_json(cp: AuditCheckpoint) -> dict[str, Any]:
    token = bytes(cp.timestamp_token)
    try:
        tst = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
        timestamped_at = tst["gen_time"].native.isoformat()
    except (ValueError, TypeError, KeyError, AttributeError):
        timestamped_at = None  # unreadable: the checker reports it
    return {
        "id": cp.id,
        "seq": cp.seq,
        "head_hash": cp.head_hash,
        "created_at": _utc_iso(cp.created_at),
        "timestamp_token": _TOKEN,
        "message_imprint": "SHA-256 of bytes.fromhex(head_hash)",
        "timestamped_at": timestamped_at,
    }


def _tsa_chain(token: bytes) -> bytes | None:
    try:
        certs = cms.ContentInfo.load(token)["content"]["certificates"]
        ders = [c.chosen.dump() for c in certs or () if c.name == "certificate"]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return b"".join(pem.armor("CERTIFICATE", der) for der in ders) or None


# -- writing ----------------------------------------------------------------------------


def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def _verification(exchange) -> dict[str, Any]:
    report = json.loads(exchange.verification_json) if exchange.verification_json else None
    if report is not None:
        note = "the report DocGate made when the signed document was registered"
    elif exchange.signed_by_gateway:
        note = (
            f"DocGate signed this document itself ({exchange.level}); no report was stored. "
            "Check document.pdf with any PAdES validator."
        )
    else:
        note = "no signature was checked at registration (a paper registration)"
    keys = ("signed_by_gateway", "level", "signature_valid")
    return {"report": report, "note": note} | {k: getattr(exchange, k) for k in keys}


def _manifest(
    exchange_id: str,
    document: dict[str, Any] | None,
    agency: str | None,
    role: Role,
    chain: _AuditRange,
    now: dt.datetime,
) -> dict[str, Any]:
    anchored = chain.checkpoint is not None
    if chain.first_seq is None:
        note = "no audit entry mentions this exchange"
    elif anchored:
        note = f"checkpoint at entry {chain.through_seq} covers every entry about the exchange"
    else:
        note = (
            f"NOT ANCHORED: no checkpoint covers entry {chain.last_seq} yet; the entries run "
            f"to the head at export ({chain.through_seq}). Export again after the next "
            "checkpoint for a package a third party can rely on."
        )
    return {
        "format": FORMAT,
        "exchange_id": exchange_id,
        "generated_at": now.astimezone(dt.UTC).isoformat(),
        "generated_for": {"role": role.value, "agency": agency},
        "document": document,
        "audit": {
            "entries_file": _ENTRIES,
            "entries": chain.count,
            "first_seq": chain.first_seq,
            "last_seq_about_exchange": chain.last_seq,
            "through_seq": chain.through_seq,
            "checkpoint": (
                {"file": _CHECKPOINT, "token": _TOKEN, "seq": chain.through_seq}
                if anchored
                else None
            ),
            "anchored": anchored,
            "note": note,
        },
        "how_to_verify": [
            "In the unzipped folder: python3 verify_evidence [this folder or the ZIP] "
            "[--trust TSA-ROOT.pem] (Python runs the folder verify_evidence/, the checker)",
            "Python 3.8+; the timestamp token's signature needs 'pip install cryptography'.",
            "It checks every file's SHA-256 below, recomputes each audit entry's hash "
            "(SHA-256 of the previous hash's bytes and the canonical JSON of seq, created_at, "
            "event, actor, subject, payload), follows the links to the checkpoint's head_hash, "
            "checks that the RFC 3161 token's message imprint is SHA-256(bytes.fromhex("
            "head_hash)) and its signature, and that the document (the file, or without it its "
            "SHA-256 above), envelope and statuses are those the chain records.",
        ],
        "files": {},  # filled in with the hashes when the ZIP is written
    }


def _build_zip(
    files: dict[str, bytes], chain: _AuditRange, manifest: dict[str, Any], now: dt.datetime
) -> EvidencePackage:
    listed = {
        name: (hashlib.sha256(data).hexdigest(), len(data))
        for name, data in (*files.items(), *CHECKER.items())
    }
    listed[_ENTRIES] = (chain.digest.hexdigest(), chain.size)
    manifest["files"] = {n: {"sha256": h, "size": size} for n, (h, size) in sorted(listed.items())}

    stamp = now.astimezone(dt.UTC).timetuple()[:6]
    out = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # the caller closes
    try:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:

            def entry(name: str) -> zipfile.ZipInfo:
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                return info

            zf.writestr(entry("manifest.json"), _json(manifest))
            for name, data in CHECKER.items():
                zf.writestr(entry(name), data)
            for name in sorted(files):
                zf.writestr(entry(name), files[name])
            chain.entries.seek(0)
            big = chain.size >= zipfile.ZIP64_LIMIT
            with zf.open(entry(_ENTRIES), "w", force_zip64=big) as dst:
                shutil.copyfileobj(chain.entries, dst, 1 << 20)
        size = out.tell()
        out.seek(0)
        digest = hashlib.file_digest(out, "sha256")
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return EvidencePackage(manifest["exchange_id"], out, size, digest.hexdigest())
