"""Reading exchanges, on both databases (SQLite and PostgreSQL): who may see an exchange
and its document (parties, auditors, admins), a damaged archive, and the inbox and outbox
listings (pagination and filters).

The world of agencies (the ``world`` fixture) is in tests/fixtures/exchange_world.py.
"""

from __future__ import annotations

import datetime as dt

import pytest

from exchange.exchanges import (
    ForbiddenError,
    InvalidQueryError,
    NotFoundError,
    StoredDocumentCorrupted,
)
from exchange.models import AuditEvent, Role
from tests.fixtures.exchange_world import PDF, T0, events_for

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
