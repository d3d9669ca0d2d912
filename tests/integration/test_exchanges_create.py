"""Sending exchanges between agencies, on both databases (SQLite and PostgreSQL): signed
and verified electronic exchanges, who may create one, failures that write nothing, paper
registrations, idempotency and duplicates.

The world of agencies (the ``world`` fixture) is in tests/fixtures/exchange_world.py: the
real blob store, audit chain and outbox; signing and verification are fakes that record
their calls. The other exchange tests are in test_exchanges_read.py (access and listings),
test_exchanges_status.py and test_exchanges_envelope.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

import pytest
from sqlalchemy import select

from exchange import delivery
from exchange.exchanges import (
    EnvelopeError,
    ExchangeError,
    ForbiddenError,
    IdempotencyConflict,
    InvalidTransition,
    NotFoundError,
    SignatureInvalidError,
    UnknownAgencyError,
    parse_envelope,
)
from exchange.models import (
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
from exchange.uow import UnitOfWork
from tests.fixtures.exchange_world import PDF, T0, events_for, raw_envelope

# -- sending ----------------------------------------------------------------------------


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
