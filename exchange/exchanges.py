"""Exchanges between agencies (API.md "Exchanges"): create, read, download, statuses.

``ExchangeService`` gets everything with side effects injected: the database, the blob
store, the signing and verification callables (the gateway's worker pool), the audit
chain's ``append``, the delivery outbox's ``enqueue`` and the clock. Every change is one
unit of work together with its audit entries and outbox rows. The document bytes are
stored (durably) before the transaction that refers to them.

Where the parts live: the envelope and the errors in ``envelope.py``, the writing of a new
exchange in ``registration.py``, access rules and listings in ``reading.py``, the status
order in ``statuses.py``. This module orchestrates them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from signing.mapped import file_sha256

from .blobs import BlobError
from .delivery import WebhookEvent
from .envelope import (
    DocumentInfo,
    Envelope,
    EnvelopeError,
    ExchangeError,
    ForbiddenError,
    IdempotencyConflict,
    InvalidQueryError,
    InvalidTransition,
    NotFoundError,
    SignatureInvalidError,
    StoredDocumentCorrupted,
    UnknownAgencyError,
    parse_envelope,
)
from .evidence import EvidencePackage, export_evidence
from .models import Agency, AuditEvent, Channel, Role
from .reading import (
    Page,
    authorize,
    exchange_detail,
    list_exchanges,
    load_exchange,
    sender_party,
    utc,
)
from .registration import (
    CreateResult,
    Prepared,
    check_idempotency_key,
    record_exchange,
    remember_answer,
    stored_answer,
    weakest_level,
)
from .statuses import StatusCode, apply_status, parse_status
from .uow import UnitOfWork

__all__ = [
    "CreateResult",
    "DocumentInfo",
    "Envelope",
    "EnvelopeError",
    "ExchangeError",
    "ExchangeService",
    "ForbiddenError",
    "IdempotencyConflict",
    "InvalidQueryError",
    "InvalidTransition",
    "NotFoundError",
    "Page",
    "SignatureInvalidError",
    "StatusCode",
    "StoredDocumentCorrupted",
    "UnknownAgencyError",
    "parse_envelope",
]

# A document is its bytes, or (a large upload) a file that the service consumes: signed
# into another file, or moved into the blob store as it is.
Document = bytes | Path
Sign = Callable[[Document, str, str], Awaitable[tuple[Document, str]]]
Verify = Callable[[Document], Awaitable[dict]]
AuditAppend = Callable[..., Awaitable[object]]
Enqueue = Callable[..., object]
Clock = Callable[[], dt.datetime]
ADMIN_PRINCIPAL = "admin"  # the idempotency principal of an admin (no agency)


def _sha256_of(document: Document) -> str:
    if isinstance(document, Path):
        return file_sha256(document)[0]
    return hashlib.sha256(document).hexdigest()


class ExchangeService:
    def __init__(
        self,
        db,
        blobs,
        *,
        sign: Sign,
        verify: Verify,
        audit_append: AuditAppend,
        enqueue: Enqueue,
        clock: Clock,
    ) -> None:
        self._db, self._blobs = db, blobs
        self._sign, self._verify = sign, verify
        self._audit, self._enqueue, self._clock = audit_append, enqueue, clock

    # -- create ---------------------------------------------------------------------

    async def create(
        self,
        principal_agency: str | None,
        is_admin: bool,
        envelope: Envelope,
        document: Document | None,
        idempotency: tuple[str, str] | None = None,
    ) -> CreateResult:
        """Sign or verify, archive and register one exchange. ``idempotency`` is the
        (Idempotency-Key, request fingerprint) pair: a retry with the same fingerprint gets
        the stored first answer (``replayed``) and creates nothing."""
        if not is_admin and principal_agency != envelope.registrant:
            raise ForbiddenError(f"only {envelope.registrant} (or an admin) may register this")
        principal = principal_agency or ADMIN_PRINCIPAL
        if idempotency is not None:
            check_idempotency_key(idempotency[0])
            replayed = await self._stored_answer(principal, idempotency)
            if replayed is not None:
                return replayed
        if envelope.channel is Channel.ELECTRONIC and not document:
            raise EnvelopeError("file", "an electronic exchange carries its document")
        now = self._now()
        exchanged_at = utc(envelope.exchanged_at) if envelope.exchanged_at else now
        if exchanged_at > now:
            raise EnvelopeError("exchanged_at", "exchanged_at is in the future")
        await self._check_agencies(envelope)
        prepared = await self._prepare(envelope, document or None)
        blob = None
        if isinstance(prepared.data, Path):  # durable before the commit below
            ref = await self._blobs.put_file(prepared.data)
            blob = (ref.sha256, ref.size)
        elif prepared.data is not None:
            ref = await self._blobs.put(prepared.data)
            blob = (ref.sha256, ref.size)
        try:
            async with UnitOfWork(self._db) as uow:
                result = await record_exchange(
                    uow.session,
                    envelope=envelope,
                    prepared=prepared,
                    blob=blob,
                    exchanged_at=exchanged_at,
                    now=now,
                    actor=principal,
                    audit=self._audit,
                    notify=self._notify,
                )
                if idempotency is not None:
                    remember_answer(uow.session, principal, idempotency, result, now)
                await uow.commit()
            return result
        except IntegrityError:
            if idempotency is None:
                raise
            replayed = await self._stored_answer(principal, idempotency)  # a twin won
            if replayed is None:
                raise
            return replayed

    async def _prepare(self, envelope: Envelope, document: Document | None) -> Prepared:
        submitted = await asyncio.to_thread(_sha256_of, document) if document else None
        if envelope.channel is Channel.PAPER:
            return Prepared(document, submitted)
        assert document is not None
        if envelope.sign:
            signed, level = await self._sign(document, envelope.sender, envelope.level.value)
            return Prepared(signed, submitted, level, None, True)
        report = await self._verify(document)
        if not isinstance(report, dict) or report.get("valid") is not True:
            raise SignatureInvalidError(report if isinstance(report, dict) else {})
        return Prepared(document, submitted, weakest_level(report), report, True)

    async def _stored_answer(self, principal: str, idempotency: tuple[str, str]):
        async with UnitOfWork(self._db) as uow:
            return await stored_answer(uow.session, principal, *idempotency)

    async def _check_agencies(self, envelope: Envelope) -> None:
        codes = {envelope.sender, *envelope.recipients}
        async with UnitOfWork(self._db) as uow:
            rows = await uow.session.execute(select(Agency.code).where(Agency.code.in_(codes)))
            found = set(rows.scalars())
        if envelope.sender not in found:
            raise UnknownAgencyError("from", envelope.sender)
        for i, code in enumerate(envelope.recipients):
            if code not in found:
                raise UnknownAgencyError(f"to[{i}]", code)

    # -- read -----------------------------------------------------------------------

    async def inbox(self, agency: str, status=None, since=None, limit=50, cursor=None) -> Page:
        """Exchanges addressed to ``agency`` (and paper it registered as received)."""
        async with UnitOfWork(self._db) as uow:
            return await list_exchanges(
                uow.session,
                agency,
                inbox=True,
                status=status,
                since=since,
                limit=limit,
                cursor=cursor,
            )

    async def outbox(self, agency: str, status=None, since=None, limit=50, cursor=None) -> Page:
        """Exchanges ``agency`` sent (and paper it registered as sent)."""
        async with UnitOfWork(self._db) as uow:
            return await list_exchanges(
                uow.session,
                agency,
                inbox=False,
                status=status,
                since=since,
                limit=limit,
                cursor=cursor,
            )

    async def get(self, exchange_id: str, principal_agency: str | None, role: Role) -> dict:
        async with UnitOfWork(self._db) as uow:
            exchange, recipients = await load_exchange(uow.session, exchange_id)
            authorize(exchange, recipients, principal_agency, role, download=False)
            return await exchange_detail(uow.session, exchange, recipients, principal_agency, role)

    async def document(self, exchange_id: str, principal_agency: str | None, role: Role) -> bytes:
        """The archived bytes, checked against their SHA-256; the download is audited."""
        data, _ = await self._download(exchange_id, principal_agency, role, self._blobs.get)
        return data

    async def document_file(
        self, exchange_id: str, principal_agency: str | None, role: Role
    ) -> tuple[Path, str]:
        """As ``document``, but a checked file and its SHA-256, to send without reading
        it into memory (a 100 MB scan)."""
        return await self._download(exchange_id, principal_agency, role, self._blobs.get_file)

    async def _download(self, exchange_id: str, principal_agency: str | None, role: Role, fetch):
        """Authorize, fetch (checked by the store), audit: ``(what fetch gave, sha256)``."""
        async with UnitOfWork(self._db) as uow:
            exchange, recipients = await load_exchange(uow.session, exchange_id)
            authorize(exchange, recipients, principal_agency, role, download=True)
            exchange_id, sha = exchange.id, exchange.document_sha256
        if sha is None:
            raise NotFoundError("this paper registration has no document file")
        try:
            found = await fetch(sha)  # checked against ``sha`` by the store
        except BlobError:  # missing or damaged: never served, always reported
            raise StoredDocumentCorrupted(sha) from None
        now = self._now()
        async with UnitOfWork(self._db) as uow:
            await self._audit(
                uow.session,
                event=AuditEvent.DOWNLOADED,
                actor=principal_agency or role.value,
                subject=exchange_id,
                payload={"sha256": sha, "role": role.value},
                now=now,
            )
            await uow.commit()
        return found, sha

    async def evidence(
        self, exchange_id: str, principal_agency: str | None, role: Role
    ) -> EvidencePackage:
        """The offline-checkable evidence ZIP (see ``evidence``); the export is audited."""
        return await export_evidence(
            self._db,
            self._blobs,
            exchange_id,
            principal_agency,
            role,
            audit=self._audit,
            now=self._now(),
        )

    # -- statuses -------------------------------------------------------------------

    async def change_status(
        self, exchange_id: str, actor_agency: str, code: str | StatusCode, note: str | None = None
    ) -> dict:
        """A recipient posts 01-06, 15, 16 for itself; the sender posts 13 (recall) for
        every recipient that has not finished. See ``statuses`` for the order."""
        status, note = parse_status(code, note)
        now = self._now()
        async with UnitOfWork(self._db) as uow:
            exchange, recipients = await load_exchange(uow.session, exchange_id)
            changed = await apply_status(
                uow.session,
                exchange,
                recipients,
                sender=sender_party(exchange),
                actor=actor_agency,
                status=status,
                note=note,
                now=now,
                audit=self._audit,
                notify=self._notify,
            )
            exchange_id = exchange.id
            await uow.commit()
        return {
            "id": exchange_id,
            "code": status.value,
            "recipients": [{"agency": a, "status": st} for a, st in changed],
        }

    # -- helpers --------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return utc(self._clock())

    async def _notify(
        self, s, exchange_id: str, agency_code: str, payload: dict, now, *, status_changed=False
    ) -> None:
        """Queue a webhook call to ``agency_code`` (``enqueue`` skips agencies without one)."""
        agency = await s.get(Agency, agency_code)
        if agency is None:
            return
        event = WebhookEvent.STATUS_CHANGED if status_changed else WebhookEvent.EXCHANGE_RECEIVED
        queued = self._enqueue(
            s, exchange_id=exchange_id, agency=agency, payload=payload, now=now, event=event
        )
        if inspect.isawaitable(queued):
            await queued
