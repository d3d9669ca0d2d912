"""Exchanges between agencies on both databases (SQLite and PostgreSQL): sending,
inboxes, statuses and recalls, access, paper registrations, idempotency, duplicates and
pagination; the envelope parser on its own, with Hypothesis.

The real blob store (in a temporary folder), audit chain and outbox are used; signing and
verification (the gateway's worker pool) are fakes that record their calls. Each test
seeds its own agencies under a random first group, since the database lives for the
whole session.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from exchange import audit, delivery
from exchange.blobs import FileBlobStore
from exchange.exchanges import (
    Envelope,
    EnvelopeError,
    ExchangeError,
    ExchangeService,
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
from exchange.models import (
    Agency,
    AuditEntry,
    AuditEvent,
    BlobRecord,
    Exchange,
    IdempotencyRecord,
    OutboxMessage,
    Recipient,
    Role,
    StatusEvent,
)
from exchange.statuses import FINAL, POSTED_BY, TRANSITIONS, Party, StatusCode, replay
from exchange.uow import UnitOfWork

PDF = b"%PDF-1.7\n% a document\n%%EOF\n"
T0 = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)


# -- fixtures ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class World:
    db: object
    service: ExchangeService
    clock: Clock
    blobs: FileBlobStore
    a: str
    b: str
    c: str
    d: str
    signed: list = field(default_factory=list)
    verified: list = field(default_factory=list)
    audited: list = field(default_factory=list)
    enqueued: list = field(default_factory=list)

    def envelope(self, **changes) -> Envelope:
        to = changes.pop("to", [self.b, self.c])
        return parse_envelope(raw_envelope(self.a, to, **changes))

    async def send(self, envelope: Envelope | None = None, document: bytes | None = PDF, **kw):
        envelope = envelope or self.envelope()
        return await self.service.create(envelope.registrant, False, envelope, document, **kw)

    async def count(self, model, *where) -> int:
        async with UnitOfWork(self.db) as uow:
            query = select(func.count()).select_from(model)
            return (await uow.session.execute(query.where(*where))).scalar_one()


def raw_envelope(sender: str, to: list[str], **changes) -> dict:
    raw = {
        "from": sender,
        "to": to,
        "channel": "electronic",
        "direction": "outgoing",
        "document": {
            "number": "123",
            "notation": "UBND-VP",
            "type": "CV",
            "subject": "Về việc tổ chức hội nghị",
            "promulgated_at": "2026-11-02",
            "due_date": "2026-11-20",
            "secret": False,
        },
        "sign": True,
        "level": "B-LT",
    }
    raw.update(changes)
    return raw


async def _seed_agencies(db, count: int = 4) -> list[str]:
    async with UnitOfWork(db) as uow:
        while True:
            first, second = secrets.randbelow(1000), secrets.randbelow(100)
            codes = [f"{first:03d}.{second:02d}.{i:02d}.H41" for i in range(count)]
            found = await uow.session.execute(select(Agency.code).where(Agency.code.in_(codes)))
            if not found.first():
                break
        for i, code in enumerate(codes):
            uow.session.add(
                Agency(
                    code=code,
                    name=f"Cơ quan {i}",
                    webhook_url=f"https://agency{i}.example/hook" if i < 2 else None,
                    webhook_secret="s3cret" if i < 2 else None,
                    created_at=T0,
                )
            )
        await uow.commit()
    return codes


@pytest.fixture
async def world(db, tmp_path) -> World:
    a, b, c, d = await _seed_agencies(db)
    clock = Clock()
    blobs = FileBlobStore(tmp_path / "blobs")
    w = World(db, None, clock, blobs, a, b, c, d)  # type: ignore[arg-type]

    async def sign(document: bytes, agency: str, level: str) -> tuple[bytes, str]:
        w.signed.append((document, agency, level))
        return document + f"% signed by {agency} at {level}\n".encode(), level

    async def verify(document: bytes) -> dict:
        w.verified.append(document)
        valid = b"BROKEN" not in document
        indication = "TOTAL_PASSED" if valid else "TOTAL_FAILED"
        return {
            "valid": valid,
            "document": {"sha256": hashlib.sha256(document).hexdigest(), "size": len(document)},
            "signatures": [{"field": "Sig1", "indication": indication, "level": "B-T"}],
            "summary": {"vi": "...", "en": "valid" if valid else "the signature is broken"},
        }

    async def audit_append(session, **kw):
        w.audited.append((kw["event"], kw["subject"], kw["payload"]))
        return await audit.append(session, **kw)

    def enqueue(session, **kw):  # records the notifications actually queued
        message = delivery.enqueue(session, **kw)
        if message is not None:
            w.enqueued.append((kw["agency"].code, kw["event"], kw["payload"]))
        return message

    w.service = ExchangeService(
        db, blobs, sign=sign, verify=verify, audit_append=audit_append, enqueue=enqueue, clock=clock
    )
    return w


def events_for(w: World, exchange_id: str) -> list[AuditEvent]:
    return [event for event, subject, _ in w.audited if subject == exchange_id]


# -- sending and statuses ---------------------------------------------------------------


async def test_signed_electronic_exchange_reaches_both_inboxes_and_is_processed(world):
    w = world
    result = await w.send()
    signed_pdf = PDF + f"% signed by {w.a} at B-LT\n".encode()

    assert w.signed == [(PDF, w.a, "B-LT")] and w.verified == []
    assert result.document_sha256 == hashlib.sha256(signed_pdf).hexdigest()
    assert result.to_json()["recipients"] == [
        {"agency": w.b, "status": None},
        {"agency": w.c, "status": None},
    ]
    assert result.duplicate_of is None and result.created_at == T0 and not result.replayed
    assert events_for(w, result.id) == [
        AuditEvent.SIGNED,
        AuditEvent.SENT,
        AuditEvent.RECEIVED,
        AuditEvent.RECEIVED,
    ]
    # B and A have webhooks, C has none: one notification, for B
    assert [(code, event) for code, event, _ in w.enqueued] == [
        (w.b, delivery.WebhookEvent.EXCHANGE_RECEIVED)
    ]
    assert await w.count(OutboxMessage, OutboxMessage.exchange_id == result.id) == 1

    for agency in (w.b, w.c):
        page = await w.service.inbox(agency)
        assert [item["id"] for item in page.items] == [result.id]
        assert page.items[0]["status"] is None and page.items[0]["from"] == w.a
    outbox = await w.service.outbox(w.a)
    assert [item["id"] for item in outbox.items] == [result.id]
    assert outbox.items[0]["recipients"] == [
        {"agency": w.b, "status": None},
        {"agency": w.c, "status": None},
    ]
    assert (await w.service.inbox(w.a)).items == ()
    assert (await w.service.outbox(w.b)).items == ()

    assert await w.service.document(result.id, w.b, Role.AGENCY) == signed_pdf
    assert events_for(w, result.id)[-1] is AuditEvent.DOWNLOADED

    for code in ("01", "03", "04", "05", "06"):
        w.clock.tick()
        answer = await w.service.change_status(result.id, w.b, code, f"note {code}")
        assert answer["recipients"] == [{"agency": w.b, "status": code}]

    detail = await w.service.get(result.id, w.a, Role.AGENCY)
    by_agency = {r["agency"]: r for r in detail["recipients"]}
    assert by_agency[w.b]["status"] == "06" and by_agency[w.c]["status"] is None
    assert [h["code"] for h in by_agency[w.b]["history"]] == ["01", "03", "04", "05", "06"]
    assert by_agency[w.b]["history"][0] == {
        "code": "01",
        "note": "note 01",
        "actor": w.b,
        "at": (T0 + dt.timedelta(seconds=1)).isoformat(),
    }
    assert by_agency[w.c]["history"] == []
    assert detail["envelope"]["from"] == w.a and detail["envelope"]["to"] == [w.b, w.c]
    assert detail["signed_by_gateway"] is True and detail["signature_valid"] is True
    assert detail["level"] == "B-LT" and detail["verification"] is None
    assert await w.count(StatusEvent, StatusEvent.exchange_id == result.id) == 5
    assert events_for(w, result.id).count(AuditEvent.STATUS_CHANGED) == 5
    # each of B's statuses notified the sender A (A has a webhook)
    status_calls = [x for x in w.enqueued if x[1] is delivery.WebhookEvent.STATUS_CHANGED]
    assert [(code, payload["code"]) for code, _, payload in status_calls] == [
        (w.a, c) for c in ("01", "03", "04", "05", "06")
    ]

    # the archive holds exactly one blob row for the signed bytes
    assert await w.count(BlobRecord, BlobRecord.sha256 == result.document_sha256) == 1
    async with UnitOfWork(w.db) as uow:
        rows = await uow.session.execute(
            select(AuditEntry.event).where(AuditEntry.subject == result.id)
        )
        assert len(rows.all()) == len(events_for(w, result.id))


async def test_verified_exchange_keeps_its_report(world):
    w = world
    result = await w.send(w.envelope(sign=False))
    assert w.signed == [] and w.verified == [PDF]
    assert result.document_sha256 == hashlib.sha256(PDF).hexdigest()
    detail = await w.service.get(result.id, w.b, Role.AGENCY)
    assert detail["verification"]["valid"] is True
    assert detail["level"] == "B-T" and detail["signed_by_gateway"] is False
    assert await w.service.document(result.id, w.a, Role.AGENCY) == PDF


@pytest.mark.parametrize(
    "steps, refused",
    [
        ([], "03"),  # registered before it arrived
        ([], "02"),
        (["01"], "01"),
        (["01"], "04"),
        (["01", "02"], "03"),  # rejected is final
        (["01", "03"], "06"),
        (["01", "03", "04"], "04"),
        (["01", "03", "05", "06"], "05"),  # completed is final
        ([], "15"),  # nothing to agree to
        (["01"], "16"),
    ],
)
async def test_status_order_is_enforced(world, steps, refused):
    w = world
    result = await w.send()
    for code in steps:
        await w.service.change_status(result.id, w.b, code, None)
    before = await w.count(StatusEvent, StatusEvent.exchange_id == result.id)
    with pytest.raises(InvalidTransition) as err:
        await w.service.change_status(result.id, w.b, refused, None)
    assert (err.value.status, err.value.code, err.value.field) == (
        409,
        "invalid_transition",
        "code",
    )
    assert await w.count(StatusEvent, StatusEvent.exchange_id == result.id) == before


async def test_status_codes_belong_to_their_party(world):
    w = world
    result = await w.send()
    with pytest.raises(ForbiddenError):
        await w.service.change_status(result.id, w.a, "01", None)  # the sender
    with pytest.raises(ForbiddenError):
        await w.service.change_status(result.id, w.b, "13", None)  # a recipient
    with pytest.raises(ExchangeError) as err:
        await w.service.change_status(result.id, w.b, "07", None)
    assert (err.value.code, err.value.status, err.value.field) == ("invalid_status", 422, "code")
    with pytest.raises(ExchangeError) as err:
        await w.service.change_status(result.id, w.b, "01", "x" * 2001)
    assert err.value.field == "note"


async def test_recall_and_the_answers_to_it(world):
    w = world
    result = await w.send()
    for code in ("01", "03"):
        await w.service.change_status(result.id, w.b, code, None)
    for code in ("01", "02"):
        await w.service.change_status(result.id, w.c, code, None)

    recall = await w.service.change_status(result.id, w.a, "13", "sent by mistake")
    assert recall["recipients"] == [{"agency": w.b, "status": "13"}]  # C had rejected it
    with pytest.raises(InvalidTransition):
        await w.service.change_status(result.id, w.b, "05", None)  # answer the recall first
    with pytest.raises(InvalidTransition):
        await w.service.change_status(result.id, w.c, "15", None)

    refused = await w.service.change_status(result.id, w.b, "16", "already registered")
    assert refused["recipients"] == [{"agency": w.b, "status": "03"}]  # back where it was
    await w.service.change_status(result.id, w.b, "05", None)

    await w.service.change_status(result.id, w.a, "13", "please")
    agreed = await w.service.change_status(result.id, w.b, "15", None)
    assert agreed["recipients"] == [{"agency": w.b, "status": "15"}]
    with pytest.raises(InvalidTransition):
        await w.service.change_status(result.id, w.b, "06", None)
    with pytest.raises(InvalidTransition):
        await w.service.change_status(result.id, w.a, "13", None)  # everyone has finished

    detail = await w.service.get(result.id, w.a, Role.AGENCY)
    history = {r["agency"]: [h["code"] for h in r["history"]] for r in detail["recipients"]}
    assert history == {w.b: ["01", "03", "13", "16", "05", "13", "15"], w.c: ["01", "02"]}
    recalled = [x for x in w.enqueued if x[2].get("code") == "13"]
    assert [code for code, _, _ in recalled] == [w.b, w.b]  # C has no webhook; B told twice


async def test_a_recall_before_arrival_can_be_refused_back_to_nothing(world):
    w = world
    result = await w.send()
    moved = await w.service.change_status(result.id, w.a, "13", None)
    assert {r["agency"] for r in moved["recipients"]} == {w.b, w.c}
    await w.service.change_status(result.id, w.b, "16", None)
    await w.service.change_status(result.id, w.b, "01", None)
    page = await w.service.inbox(w.b)
    assert page.items[0]["status"] == "01"


# -- access -----------------------------------------------------------------------------


async def test_non_parties_are_forbidden_and_unknown_ids_not_found(world):
    w = world
    result = await w.send()
    with pytest.raises(ForbiddenError) as err:
        await w.service.get(result.id, w.d, Role.AGENCY)
    assert (err.value.status, err.value.code) == (403, "forbidden")
    with pytest.raises(ForbiddenError):
        await w.service.document(result.id, w.d, Role.AGENCY)
    with pytest.raises(ForbiddenError):
        await w.service.change_status(result.id, w.d, "01", None)
    assert (await w.service.inbox(w.d)).items == ()

    missing = "00000000-0000-4000-8000-000000000000"
    for call in (
        w.service.get(missing, w.a, Role.AGENCY),
        w.service.document(missing, w.a, Role.AGENCY),
        w.service.change_status(missing, w.b, "01", None),
        w.service.get("x" * 500, None, Role.ADMIN),
    ):
        with pytest.raises(NotFoundError) as err:
            await call
        assert (err.value.status, err.value.code) == (404, "not_found")

    # auditors read but do not download; admins do both
    assert (await w.service.get(result.id, None, Role.AUDITOR))["id"] == result.id
    with pytest.raises(ForbiddenError):
        await w.service.document(result.id, None, Role.AUDITOR)
    assert (await w.service.get(result.id, None, Role.ADMIN))["id"] == result.id
    assert await w.service.document(result.id, None, Role.ADMIN)
    # an agency token without an agency is nobody's party
    with pytest.raises(ForbiddenError):
        await w.service.get(result.id, None, Role.AGENCY)


async def test_a_recipient_sees_only_its_own_history(world):
    w = world
    result = await w.send()
    await w.service.change_status(result.id, w.c, "01", None)
    detail = await w.service.get(result.id, w.b, Role.AGENCY)
    assert [r["agency"] for r in detail["recipients"]] == [w.b]
    auditor = await w.service.get(result.id, None, Role.AUDITOR)
    assert [r["agency"] for r in auditor["recipients"]] == [w.b, w.c]


async def test_only_the_sender_or_an_admin_creates(world):
    w = world
    envelope = w.envelope()
    with pytest.raises(ForbiddenError):
        await w.service.create(w.b, False, envelope, PDF)
    with pytest.raises(ForbiddenError):
        await w.service.create(None, False, envelope, PDF)
    result = await w.service.create(None, True, envelope, PDF)
    assert w.audited[-1][0] is AuditEvent.RECEIVED
    assert (await w.service.get(result.id, w.a, Role.AGENCY))["envelope"]["from"] == w.a


async def test_a_damaged_archive_is_reported_not_served(world):
    w = world
    result = await w.send()
    path = w.blobs.path_of(result.document_sha256)
    path.write_bytes(path.read_bytes().replace(b"document", b"d0cument"))
    with pytest.raises(StoredDocumentCorrupted) as err:
        await w.service.document(result.id, w.b, Role.AGENCY)
    assert (err.value.status, err.value.code) == (500, "document_corrupted")
    path.unlink()
    with pytest.raises(StoredDocumentCorrupted):
        await w.service.document(result.id, w.b, Role.AGENCY)
    assert AuditEvent.DOWNLOADED not in events_for(w, result.id)


# -- concurrency ------------------------------------------------------------------------


async def test_concurrent_retries_of_one_key_create_one_exchange(world):
    w = world
    answers = await asyncio.gather(
        *(w.send(w.envelope(to=[w.b]), idempotency=("same-key", "fp")) for _ in range(4))
    )
    assert len({a.id for a in answers}) == 1
    assert sum(not a.replayed for a in answers) == 1
    assert await w.count(Exchange, Exchange.sender_code == w.a) == 1
    assert await w.count(Recipient, Recipient.agency_code == w.b) == 1


async def test_concurrent_posts_of_one_status_apply_once(world):
    w = world
    result = await w.send()
    outcomes = await asyncio.gather(
        *(w.service.change_status(result.id, w.b, "01", None) for _ in range(4)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, dict) for o in outcomes) == 1
    assert all(isinstance(o, dict | InvalidTransition) for o in outcomes), outcomes
    assert await w.count(StatusEvent, StatusEvent.exchange_id == result.id) == 1


# -- failures that write nothing --------------------------------------------------------


async def test_invalid_signature_writes_nothing(world):
    w = world
    tables = (Exchange, Recipient, AuditEntry, BlobRecord, OutboxMessage, StatusEvent)
    before = [await w.count(model) for model in tables]
    with pytest.raises(SignatureInvalidError) as err:
        await w.send(w.envelope(sign=False), PDF + b"BROKEN", idempotency=("k-broken", "fp"))
    assert (err.value.status, err.value.code) == (422, "signature_invalid")
    assert err.value.report["valid"] is False and err.value.detail == "the signature is broken"
    assert [await w.count(model) for model in tables] == before
    assert await w.count(IdempotencyRecord, IdempotencyRecord.key == "k-broken") == 0
    assert w.audited == [] and w.enqueued == [] and w.signed == []
    assert not (w.blobs.root.exists() and any(w.blobs.root.rglob("*")))
    assert (await w.service.inbox(w.b)).items == () and (await w.service.outbox(w.a)).items == ()

    # the key was not consumed: the corrected request goes through
    result = await w.send(w.envelope(sign=False), PDF, idempotency=("k-broken", "fp2"))
    assert not result.replayed


async def test_unknown_agencies_and_missing_file_are_named(world):
    w = world
    stranger = f"{w.a[:7]}99.H41"
    with pytest.raises(UnknownAgencyError) as err:
        await w.send(parse_envelope(raw_envelope(w.a, [w.b, stranger])))
    assert (err.value.field, err.value.code, err.value.status) == ("to[1]", "unknown_agency", 422)
    with pytest.raises(UnknownAgencyError) as err:
        envelope = parse_envelope(raw_envelope(stranger, [w.b]))
        await w.service.create(None, True, envelope, PDF)
    assert err.value.field == "from"
    with pytest.raises(EnvelopeError) as err:
        await w.send(document=None)
    assert err.value.field == "file"
    with pytest.raises(EnvelopeError) as err:
        await w.send(document=b"")
    assert err.value.field == "file"
    assert w.signed == [] and w.audited == []
    assert await w.count(Exchange, Exchange.sender_code == w.a) == 0


# -- paper ------------------------------------------------------------------------------


async def test_paper_registrations_count_for_the_registering_agency_only(world):
    w = world
    sent_at = "2026-10-30T09:30:00+07:00"
    outgoing = parse_envelope(
        raw_envelope(w.a, [w.b], channel="paper", sign=False, exchanged_at=sent_at)
    )
    out = await w.send(outgoing, document=None)
    assert out.recipients == () and out.document_sha256 is None
    assert events_for(w, out.id) == [AuditEvent.REGISTERED]
    assert [i["id"] for i in (await w.service.outbox(w.a)).items] == [out.id]
    assert (await w.service.inbox(w.b)).items == ()  # B registers its own copy
    detail = await w.service.get(out.id, w.a, Role.AGENCY)
    assert detail["exchanged_at"] == "2026-10-30T02:30:00+00:00"
    assert detail["created_at"] == T0.isoformat() and detail["signature_valid"] is None
    with pytest.raises(ForbiddenError):
        await w.service.get(out.id, w.b, Role.AGENCY)
    with pytest.raises(NotFoundError):
        await w.service.document(out.id, w.a, Role.AGENCY)
    with pytest.raises(InvalidTransition):
        await w.service.change_status(out.id, w.a, "13", None)  # nobody to recall from

    # B registers the paper it received from A, with a scan; nothing is verified
    incoming = parse_envelope(
        raw_envelope(
            w.a, [w.b], channel="paper", direction="incoming", sign=False,
            exchanged_at="2026-10-31T08:00:00+07:00",
        )
    )  # fmt: skip
    with pytest.raises(ForbiddenError):
        await w.service.create(w.a, False, incoming, None)  # only B registers what B got
    scan = b"%PDF-1.4 scanned at 300 dpi BROKEN"
    got = await w.send(incoming, document=scan)
    assert w.verified == [] and w.signed == []
    assert got.recipients == ((w.b, None),)
    assert events_for(w, got.id) == [AuditEvent.REGISTERED]
    assert [i["id"] for i in (await w.service.inbox(w.b)).items] == [got.id]
    assert [i["id"] for i in (await w.service.outbox(w.a)).items] == [out.id]
    assert await w.service.document(got.id, w.b, Role.AGENCY) == scan
    with pytest.raises(ForbiddenError):
        await w.service.get(got.id, w.a, Role.AGENCY)  # A is not a party of B's register
    for code in ("01", "03", "05", "06"):
        await w.service.change_status(got.id, w.b, code, None)
    with pytest.raises(ForbiddenError):
        await w.service.change_status(got.id, w.a, "13", None)
    assert w.enqueued == []  # paper notifies nobody


async def test_paper_registration_time_defaults_to_now_and_is_never_in_the_future(world):
    w = world
    envelope = parse_envelope(raw_envelope(w.a, [w.c], channel="paper", sign=False))
    result = await w.send(envelope, document=None)
    assert (await w.service.get(result.id, w.a, Role.AGENCY))["exchanged_at"] == T0.isoformat()
    future = (T0 + dt.timedelta(hours=1)).isoformat()
    envelope = parse_envelope(
        raw_envelope(w.a, [w.c], channel="paper", sign=False, exchanged_at=future)
    )
    with pytest.raises(EnvelopeError) as err:
        await w.send(envelope, document=None)
    assert err.value.field == "exchanged_at"


# -- idempotency and duplicates ---------------------------------------------------------


async def test_idempotency_replays_the_first_answer_and_refuses_another_request(world):
    w = world
    first = await w.send(idempotency=("key-1", "fp-1"))
    count = await w.count(Exchange, Exchange.sender_code == w.a)
    w.clock.tick(60)
    again = await w.send(idempotency=("key-1", "fp-1"))
    assert again.replayed and again.to_json() == first.to_json()
    assert len(w.signed) == 1 and await w.count(Exchange, Exchange.sender_code == w.a) == count

    with pytest.raises(IdempotencyConflict) as err:
        await w.send(w.envelope(to=[w.b]), idempotency=("key-1", "fp-other"))
    assert (err.value.status, err.value.code) == (422, "idempotency_key_reused")
    assert await w.count(Exchange, Exchange.sender_code == w.a) == count

    # keys belong to their principal: the admin's "key-1" is another request
    admin = await w.service.create(None, True, w.envelope(), PDF, ("key-1", "fp-1"))
    assert not admin.replayed and admin.id != first.id
    with pytest.raises(ExchangeError) as err:
        await w.send(idempotency=("", "fp"))
    assert err.value.code == "invalid_idempotency_key"


async def test_duplicates_are_created_and_reported(world):
    w = world
    first = await w.send(w.envelope(sign=False))
    w.clock.tick()
    second = await w.send(w.envelope(sign=False, to=[w.c, w.b]))  # same set, other order
    assert second.id != first.id and second.duplicate_of == first.id
    w.clock.tick()
    third = await w.send(w.envelope(sign=False, to=[w.b]))  # another recipient set
    assert third.duplicate_of is None
    fourth = await w.send(w.envelope(sign=False), document=PDF + b"% v2\n")
    assert fourth.duplicate_of is None
    detail = await w.service.get(second.id, w.a, Role.AGENCY)
    assert detail["duplicate_of"] == first.id
    sent = [p for e, s, p in w.audited if e is AuditEvent.SENT and s == second.id]
    assert sent[0]["duplicate_of"] == first.id
    inbox = [(i["id"], i["duplicate_of"]) for i in (await w.service.inbox(w.c)).items]
    assert inbox == [(fourth.id, None), (second.id, first.id), (first.id, None)]


# -- listings ---------------------------------------------------------------------------


async def test_inbox_and_outbox_page_newest_first_without_overlap(world):
    w = world
    created = []
    for i in range(7):
        if i % 2 == 0:
            w.clock.tick()  # pairs share a created_at: the id breaks the tie
        envelope = w.envelope(to=[w.b])
        created.append(await w.send(envelope, document=PDF + f"{i}".encode()))
    expected = [r.id for r in sorted(created, key=lambda r: (r.created_at, r.id), reverse=True)]

    for listing, agency in ((w.service.inbox, w.b), (w.service.outbox, w.a)):
        seen, cursor, sizes = [], None, []
        while True:
            page = await listing(agency, limit=3, cursor=cursor)
            sizes.append(len(page.items))
            seen += [item["id"] for item in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sizes == [3, 3, 1]
        assert seen == expected and len(set(seen)) == 7

    await w.service.change_status(created[0].id, w.b, "01", None)
    assert [i["id"] for i in (await w.service.inbox(w.b, status="01")).items] == [created[0].id]
    assert len((await w.service.inbox(w.b, status="new")).items) == 6
    assert len((await w.service.outbox(w.a, status="01")).items) == 1
    since = (T0 + dt.timedelta(seconds=4)).isoformat()
    assert len((await w.service.inbox(w.b, since=since)).items) == 1
    assert len((await w.service.inbox(w.b, since=T0 + dt.timedelta(seconds=3))).items) == 3
    assert len((await w.service.inbox(w.b, limit="200")).items) == 7

    for kwargs, name in (
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "W10"}, "cursor"),
        ({"status": "99"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-11-02T00:00:00"}, "since"),
    ):
        with pytest.raises(InvalidQueryError) as err:
            await w.service.inbox(w.b, **kwargs)
        assert (err.value.field, err.value.status) == (name, 422)


# -- the envelope, without a database ---------------------------------------------------

A, B, C = "000.00.00.H41", "000.00.01.H41", "000.00.02.H41"


def test_a_valid_envelope_parses_and_round_trips():
    envelope = parse_envelope(raw_envelope(A, [B, C]))
    assert envelope.sender == A and envelope.recipients == (B, C)
    assert envelope.document.promulgated_at == dt.date(2026, 11, 2)
    assert envelope.level.value == "B-LT" and envelope.registrant == A
    assert parse_envelope(json.loads(json.dumps(envelope.to_json()))) == envelope
    minimal = {k: v for k, v in raw_envelope(A, [B]).items() if k not in ("sign", "level")}
    minimal["document"] = {"subject": "x"}
    parsed = parse_envelope(minimal)
    assert parsed.sign is False and parsed.level.value == "B-LT"
    assert parsed.document.due_date is None and parsed.document.secret is False


def _doc(**changes) -> dict:
    doc = raw_envelope(A, [B])["document"]
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"document": _doc(subject="x" * 501)}, "document.subject"),
        ({"document": _doc(subject="   ")}, "document.subject"),
        ({"document": _doc(subject=None)}, "document.subject"),
        ({"document": _doc(subject="a\x00b")}, "document.subject"),
        ({"document": _doc(number="1" * 51)}, "document.number"),
        ({"document": _doc(promulgated_at="2026-02-30")}, "document.promulgated_at"),
        ({"document": _doc(due_date="20261120")}, "document.due_date"),
        ({"document": _doc(secret="no")}, "document.secret"),
        ({"document": _doc(author="me")}, "document.author"),
        ({"document": "subject"}, "document"),
        ({"to": [B, "000.00.01.h41"]}, "to[1]"),
        ({"to": [B, "000.00.02.H41\n"]}, "to[1]"),
        ({"to": [B, C, B]}, "to[2]"),
        ({"to": [B, A]}, "to[1]"),
        ({"to": []}, "to"),
        ({"to": B}, "to"),
        ({"from": "H41"}, "from"),
        ({"channel": "fax"}, "channel"),
        ({"direction": "incoming"}, "direction"),
        ({"sign": 1}, "sign"),
        ({"level": "B-X"}, "level"),
        ({"exchanged_at": "2026-11-02T09:30:00+07:00"}, "exchanged_at"),
        ({"channel": "paper", "sign": True}, "sign"),
        ({"channel": "paper", "sign": False, "exchanged_at": "2026-11-02T09:30"}, "exchanged_at"),
        ({"channel": "paper", "sign": False, "exchanged_at": "2026-11-02"}, "exchanged_at"),
        ({"channel": "paper", "sign": False, "direction": "incoming", "to": [B, C]}, "to"),
        ({"urgent": True}, "urgent"),
    ],
)
def test_envelope_errors_name_the_field(changes, field):
    raw = raw_envelope(A, [B])
    raw.update(changes)
    with pytest.raises(EnvelopeError) as err:
        parse_envelope(raw)
    assert (err.value.field, err.value.code, err.value.status) == (field, "invalid_envelope", 422)


def test_paper_envelopes():
    incoming = parse_envelope(
        raw_envelope(A, [B], channel="paper", direction="incoming", sign=False,
                     exchanged_at="2026-11-02T09:30:00+07:00")
    )  # fmt: skip
    assert incoming.registrant == B
    assert incoming.exchanged_at.utcoffset() == dt.timedelta(hours=7)
    with pytest.raises(EnvelopeError) as err:
        parse_envelope([])
    assert err.value.field == "envelope"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_codes = st.sampled_from([A, B, C, "000.00.00.h41", "", "999.99.99.Z99"]) | st.text(max_size=14)
_dates = st.sampled_from(["2026-11-02", "2026-02-29", "0000-01-01", "2026-1-2"]) | _json
_times = (
    st.sampled_from(
        ["2026-11-02T09:30:00+07:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
    )
    | st.datetimes(timezones=st.none() | st.timezones()).map(lambda t: t.isoformat())
    | _json
)
_document = st.fixed_dictionaries(
    {},
    optional={
        "number": _json,
        "notation": st.text(max_size=120),
        "type": _json,
        "subject": st.text(max_size=600) | _json,
        "promulgated_at": _dates,
        "due_date": _dates,
        "secret": _json,
        "extra": _json,
    },
)
_envelopes = st.fixed_dictionaries(
    {},
    optional={
        "from": _codes,
        "to": st.lists(_codes, max_size=4) | _json,
        "channel": st.sampled_from(["electronic", "paper", "Paper"]) | _json,
        "direction": st.sampled_from(["outgoing", "incoming"]) | _json,
        "document": _document | _json,
        "sign": st.booleans() | _json,
        "level": st.sampled_from(["B-B", "B-T", "B-LT", "B-LTA", "b-lt"]) | _json,
        "exchanged_at": _times,
        "unknown": _json,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_envelopes, _json))
def test_random_envelopes_raise_only_exchange_errors(raw):
    try:
        envelope = parse_envelope(raw)
    except ExchangeError as err:
        assert err.code == "invalid_envelope" and err.status == 422 and err.field
        return
    assert parse_envelope(envelope.to_json()) == envelope


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "from": st.just(A),
            "to": st.lists(st.sampled_from([B, C]), min_size=1, max_size=2, unique=True),
            "channel": st.sampled_from(["electronic", "paper"]),
            "direction": st.just("outgoing"),
            "document": st.fixed_dictionaries({"subject": st.text(min_size=1, max_size=500)}),
        }
    )
)
def test_near_valid_envelopes_parse_or_name_the_subject(raw):
    try:
        envelope = parse_envelope(raw)
    except EnvelopeError as err:
        assert err.field == "document.subject"
        return
    assert envelope.document.subject == raw["document"]["subject"]


# -- the status table -------------------------------------------------------------------


def test_the_status_table():
    assert all(not TRANSITIONS[code] for code in FINAL)
    assert POSTED_BY[StatusCode.RECALL_REQUESTED] is Party.SENDER
    assert {c for c, p in POSTED_BY.items() if p is Party.RECIPIENT} == set(StatusCode) - {
        StatusCode.RECALL_REQUESTED
    }
    for current, following in TRANSITIONS.items():
        recallable = current not in FINAL and current is not StatusCode.RECALL_REQUESTED
        assert (StatusCode.RECALL_REQUESTED in following) == recallable
    S = StatusCode
    track = replay([S.ARRIVED, S.REGISTERED, S.RECALL_REQUESTED, S.RECALL_REFUSED, S.IN_PROGRESS])
    assert (track.status, track.before_recall) == (S.IN_PROGRESS, S.REGISTERED)
    with pytest.raises(ValueError):
        replay([S.REGISTERED])
