"""The audit chain (exchange.audit) on SQLite and PostgreSQL: appends link, concurrent
appenders serialise, and any changed, deleted, swapped or forged row, or a tampered
checkpoint, is detected at the right entry."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json

import pytest
from asn1crypto import cms
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyhanko.sign.general import extract_signer_info
from pyhanko.sign.validation.generic_cms import extract_certs_for_validation
from sqlalchemy import delete, func, select, update

from exchange.audit import (
    GENESIS_HASH,
    AuditError,
    ChainVerdict,
    append,
    checkpoint,
    entry_hash,
    render_verdict,
    verify_chain,
)
from exchange.models import AuditCheckpoint, AuditEntry, AuditEvent
from exchange.uow import UnitOfWork
from signing.keys.certs import load_certificates
from signing.timestamps import load_dev_timestamper

T0 = dt.datetime(2025, 3, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)
ICT = dt.timezone(dt.timedelta(hours=7))

PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# PostgreSQL text cannot hold NUL; JSON escapes it inside the payload.
_name = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_entry = st.fixed_dictionaries(
    {
        "event": st.sampled_from(AuditEvent),
        "actor": _name,
        "subject": _name,
        "payload": st.dictionaries(st.text(max_size=8), _json, max_size=4),
        "now": st.datetimes(
            min_value=dt.datetime(2000, 1, 1),
            max_value=dt.datetime(2100, 1, 1),
            timezones=st.sampled_from([dt.UTC, ICT, dt.timezone(dt.timedelta(hours=-3.5))]),
        ),
    }
)
_chain = st.lists(_entry, min_size=1, max_size=7)


async def _clear(db) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(delete(AuditCheckpoint))
        await conn.execute(delete(AuditEntry))


@pytest.fixture
async def chain_db(db):
    """The session's database with an empty audit chain (emptied again afterwards)."""
    await _clear(db)
    yield db
    await _clear(db)


@pytest.fixture
def tsa(dev_pki):
    return load_dev_timestamper(
        dev_pki.tsa_cert, dev_pki.tsa_key, (dev_pki.intermediate_cert, dev_pki.root_cert)
    )


@pytest.fixture
def tsa_certs(dev_pki):
    return load_certificates(dev_pki.tsa_cert)


def _simple(i: int) -> dict:
    return {
        "event": AuditEvent.SENT,
        "actor": "000.00.00.H41",
        "subject": f"exchange-{i}",
        "payload": {"i": i},
        "now": T0 + dt.timedelta(seconds=i),
    }


async def _fresh_chain(db, specs: list[dict], *, per_transaction: int = 3) -> None:
    await _clear(db)
    for start in range(0, len(specs), per_transaction):
        async with UnitOfWork(db) as uow:
            for spec in specs[start : start + per_transaction]:
                await append(uow.session, **spec)
            await uow.commit()


async def _verify(db, **kwargs) -> ChainVerdict:
    async with UnitOfWork(db) as uow:
        return await verify_chain(uow.session, **kwargs)


async def _checkpoint(db, tsa, now: dt.datetime = T0) -> AuditCheckpoint | None:
    async with UnitOfWork(db) as uow:
        row = await checkpoint(uow.session, tsa, now=now)
        await uow.commit()
    return row


async def _rows(db) -> list:
    async with db.engine.connect() as conn:
        return list(await conn.execute(select(AuditEntry.__table__).order_by(AuditEntry.seq)))


async def _update(db, table, where, **values) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(update(table).where(where).values(**values))


def _broken(verdict: ChainVerdict, seq: int) -> None:
    assert not verdict.ok, verdict
    assert verdict.first_broken_seq == seq, verdict
    assert f"entry {seq}" in verdict.reason or f"to {seq - 1} are missing" in verdict.reason
    assert render_verdict(verdict).startswith(f"audit chain BROKEN at entry {seq}: ")


def _forged(row, **changes) -> dict:
    """Row values with ``changes`` and a hash recomputed over them."""
    values = dict(row._mapping) | changes
    values["hash"] = entry_hash(
        values["prev_hash"],
        seq=values["seq"],
        created_at=values["created_at"],
        event=values["event"],
        actor=values["actor"],
        subject=values["subject"],
        payload=json.loads(values["payload_json"]),
    )
    return values


# -- appending ---------------------------------------------------------------------------


async def test_every_event_kind_links_into_a_verifiable_chain(chain_db):
    async with UnitOfWork(chain_db) as uow:
        for i, event in enumerate(AuditEvent):
            entry = await append(
                uow.session,
                event=event,
                actor="auditor" if i % 2 else "000.00.01.H41",
                subject=f"Công văn số {i}/UBND-VP",
                payload={"n": i, "ghi chú": "Đã nhận", "tags": ["a", "b"]},
                now=(T0 + dt.timedelta(minutes=i)).astimezone(ICT),
            )
            assert entry.seq == i + 1
        await uow.commit()

    rows = await _rows(chain_db)
    assert [r.event for r in rows] == [e.value for e in AuditEvent]
    assert rows[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    assert all(_forged(r)["hash"] == r.hash for r in rows)
    assert "Đã nhận" in rows[0].payload_json  # UTF-8, not \u escapes

    verdict = await _verify(chain_db)
    assert verdict == ChainVerdict(True, len(AuditEvent), None, None, 0, True)
    expected = f"audit chain OK: {len(AuditEvent)} entries, 0 checkpoints verified"
    assert render_verdict(verdict) == expected


async def test_the_link_format_is_fixed(chain_db):
    async with UnitOfWork(chain_db) as uow:
        entry = await append(
            uow.session,
            event=AuditEvent.SIGNED,
            actor="000.00.00.H41",
            subject="Quyết định",
            payload={"level": "B-LT", "pages": 2},
            now=dt.datetime(2025, 3, 1, 15, 30, tzinfo=ICT),
        )
        await uow.commit()
    document = (
        '{"actor":"000.00.00.H41","created_at":"2025-03-01T08:30:00.000000+00:00",'
        '"event":"signed","payload":{"level":"B-LT","pages":2},"seq":1,"subject":"Quyết định"}'
    )
    expected = hashlib.sha256(bytes(32) + document.encode("utf-8")).hexdigest()
    assert entry.hash == expected
    assert (await _rows(chain_db))[0].payload_json == '{"level":"B-LT","pages":2}'


async def test_an_empty_chain_verifies(chain_db):
    verdict = await _verify(chain_db)
    assert verdict == ChainVerdict(True, 0, None, None, 0, True)


async def test_a_rolled_back_append_leaves_no_link(chain_db):
    async with UnitOfWork(chain_db) as uow:
        await append(uow.session, **_simple(1))
    await _fresh_chain(chain_db, [_simple(2)])
    rows = await _rows(chain_db)
    assert [(r.seq, r.prev_hash) for r in rows] == [(1, GENESIS_HASH)]


@pytest.mark.parametrize(
    "change",
    [
        {"now": dt.datetime(2025, 3, 1)},
        {"actor": "x" * 201},
        {"subject": "nul\x00"},
        {"payload": {"when": dt.date(2025, 1, 1)}},
        {"payload": {"x": float("nan")}},
        {"payload": ["not", "an", "object"]},
        {"event": "sent"},
    ],
    ids=["naive-now", "long-actor", "nul", "not-json", "nan", "not-object", "bare-string"],
)
async def test_append_rejects_what_it_cannot_record(chain_db, change):
    async with UnitOfWork(chain_db) as uow:
        with pytest.raises(AuditError):
            await append(uow.session, **(_simple(1) | change))


@PROPERTY
@given(specs=_chain, per_transaction=st.integers(1, 4))
async def test_the_chain_verifies_after_any_appends(chain_db, specs, per_transaction):
    await _fresh_chain(chain_db, specs, per_transaction=per_transaction)
    verdict = await _verify(chain_db)
    assert verdict.ok, verdict
    assert verdict.entries == len(specs)


async def test_verification_streams_in_chunks(chain_db, monkeypatch):
    monkeypatch.setattr("exchange.audit._CHUNK", 3)
    await _fresh_chain(chain_db, [_simple(i) for i in range(10)], per_transaction=10)
    assert (await _verify(chain_db)).entries == 10
    await _update(chain_db, AuditEntry, AuditEntry.seq == 7, subject="changed")
    verdict = await _verify(chain_db)
    _broken(verdict, 7)
    assert verdict.entries == 10


async def test_concurrent_appenders_serialise(chain_db):
    appenders = 12

    async def appender(i: int) -> None:
        async with UnitOfWork(chain_db) as uow:
            await uow.session.scalar(select(func.count()).select_from(AuditEntry))
            for j in range(2):
                await append(uow.session, **(_simple(i) | {"actor": f"a{i}", "payload": {"j": j}}))
                await asyncio.sleep(0.005)  # hold the chain while others try to append
            await uow.commit()

    await asyncio.gather(*(appender(i) for i in range(appenders)))
    verdict = await _verify(chain_db)
    assert verdict.ok and verdict.entries == 2 * appenders, verdict
    rows = await _rows(chain_db)
    assert [r.seq for r in rows] == list(range(1, 2 * appenders + 1))
    for first, second in zip(rows[::2], rows[1::2], strict=True):
        assert first.actor == second.actor  # each transaction's entries stay together


# -- tampering with entries --------------------------------------------------------------

_FIELDS = ["seq", "created_at", "event", "actor", "subject", "payload_json", "prev_hash", "hash"]


def _other_value(data, row, field: str):
    """A value for ``field`` of ``row`` that differs from the stored one."""
    if field == "seq":
        return row.seq + data.draw(st.integers(100, 10_000))
    if field == "created_at":
        micros = data.draw(st.integers(-(10**12), 10**12).filter(bool))
        stored = row.created_at.replace(tzinfo=row.created_at.tzinfo or dt.UTC)
        return stored + dt.timedelta(microseconds=micros)
    limit = {"event": 32, "actor": 200, "subject": 200, "prev_hash": 64, "hash": 64}.get(field)
    values = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=limit or 80)
    if field == "payload_json":
        values = values | st.builds(
            lambda s: row.payload_json[:-1] + s + "}", st.sampled_from([" ", ',"x":1'])
        )
    value = data.draw(values)
    assume(value != getattr(row, field))
    return value


@PROPERTY
@given(specs=_chain, field=st.sampled_from(_FIELDS), data=st.data())
async def test_a_changed_field_is_detected_at_its_row(chain_db, specs, field, data):
    await _fresh_chain(chain_db, specs)
    rows = await _rows(chain_db)
    row = data.draw(st.sampled_from(rows))
    value = _other_value(data, row, field)
    await _update(chain_db, AuditEntry, AuditEntry.seq == row.seq, **{field: value})

    verdict = await _verify(chain_db)
    if field == "seq":  # the row moved past the end: the chain has a gap where it was
        _broken(verdict, row.seq + 1 if row.seq < len(rows) else value)
    else:
        _broken(verdict, row.seq)


@pytest.mark.parametrize(
    "assignment",
    ["created_at = 'not a time'", "payload_json = X'7B7D'", "actor = 42", "event = X'00'"],
)
async def test_sqlite_values_of_the_wrong_type_are_reported_not_raised(chain_db, assignment):
    if chain_db.dialect != "sqlite":  # PostgreSQL's column types refuse such values
        return
    await _fresh_chain(chain_db, [_simple(i) for i in range(4)])
    async with chain_db.engine.begin() as conn:
        await conn.exec_driver_sql(f"UPDATE audit_entries SET {assignment} WHERE seq = 3")
    _broken(await _verify(chain_db), 3)


@PROPERTY
@given(specs=_chain, with_checkpoint=st.booleans(), data=st.data())
async def test_a_deleted_row_is_detected_after_the_gap(chain_db, tsa, specs, with_checkpoint, data):
    await _fresh_chain(chain_db, specs)
    if with_checkpoint:
        await _checkpoint(chain_db, tsa)
    n = len(specs)
    seq = data.draw(st.integers(1, n))
    async with chain_db.engine.begin() as conn:
        await conn.execute(delete(AuditEntry).where(AuditEntry.seq == seq))

    verdict = await _verify(chain_db)
    if seq < n:
        _broken(verdict, seq + 1)
    elif with_checkpoint:
        _broken(verdict, n)
        assert "missing entry" in verdict.reason and not verdict.checkpoints_ok
    else:  # a cut-off tail: only a checkpoint (or a later entry) can show it
        assert verdict.ok and verdict.entries == n - 1


@PROPERTY
@given(specs=st.lists(_entry, min_size=2, max_size=7), data=st.data())
async def test_swapped_rows_are_detected(chain_db, specs, data):
    await _fresh_chain(chain_db, specs)
    rows = await _rows(chain_db)
    i, j = sorted(
        data.draw(st.lists(st.integers(1, len(rows)), min_size=2, max_size=2, unique=True))
    )
    a, b = rows[i - 1], rows[j - 1]
    contents = [f for f in _FIELDS if f != "seq"]
    async with chain_db.engine.begin() as conn:  # through a placeholder: hashes are unique
        await conn.execute(update(AuditEntry).where(AuditEntry.seq == i).values(hash="swapping"))
        await conn.execute(
            update(AuditEntry)
            .where(AuditEntry.seq == j)
            .values(**{f: a._mapping[f] for f in contents})
        )
        await conn.execute(
            update(AuditEntry)
            .where(AuditEntry.seq == i)
            .values(**{f: b._mapping[f] for f in contents})
        )
    _broken(await _verify(chain_db), i)


@PROPERTY
@given(specs=_chain, rechain=st.booleans(), actor=_name, data=st.data())
async def test_a_forged_row_is_detected_by_the_next_link_or_the_checkpoint(
    chain_db, tsa, specs, rechain, actor, data
):
    await _fresh_chain(chain_db, specs)
    await _checkpoint(chain_db, tsa)
    rows = await _rows(chain_db)
    n = len(rows)
    row = data.draw(st.sampled_from(rows))
    assume(actor != row.actor)
    forged = _forged(row, actor=actor)
    await _update(chain_db, AuditEntry, AuditEntry.seq == row.seq, **forged)
    if rechain:  # rewrite every later link too: the chain itself is consistent again
        prev = forged["hash"]
        for later in rows[row.seq :]:
            relinked = _forged(later, prev_hash=prev)
            await _update(chain_db, AuditEntry, AuditEntry.seq == later.seq, **relinked)
            prev = relinked["hash"]

    verdict = await _verify(chain_db)
    if rechain or row.seq == n:
        _broken(verdict, n)
        assert "checkpoint" in verdict.reason and not verdict.checkpoints_ok
    else:
        _broken(verdict, row.seq + 1)
        assert "prev_hash mismatch" in verdict.reason


# -- checkpoints -------------------------------------------------------------------------


async def test_checkpoints_timestamp_the_head(chain_db, tsa, tsa_certs, dev_pki):
    assert await _checkpoint(chain_db, tsa) is None  # nothing to timestamp yet
    await _fresh_chain(chain_db, [_simple(i) for i in range(3)])
    first = await _checkpoint(chain_db, tsa)
    assert first is not None and first.seq == 3
    assert first.head_hash == (await _rows(chain_db))[-1].hash
    assert await _checkpoint(chain_db, tsa) is None  # the head already has one
    async with UnitOfWork(chain_db) as uow:
        for i in range(3, 5):
            await append(uow.session, **_simple(i))
        await uow.commit()
    assert (await _checkpoint(chain_db, tsa)).seq == 5

    verdict = await _verify(chain_db, tsa_certificates=tsa_certs)
    assert verdict == ChainVerdict(True, 5, None, None, 2, True)
    assert render_verdict(verdict) == "audit chain OK: 5 entries, 2 checkpoints verified"

    other = await _verify(chain_db, tsa_certificates=load_certificates(dev_pki.root_cert))
    _broken(other, 3)
    assert "unexpected TSA" in other.reason and not other.checkpoints_ok


async def test_checkpoint_refuses_an_altered_head(chain_db, tsa):
    await _fresh_chain(chain_db, [_simple(1), _simple(2)])
    await _update(chain_db, AuditEntry, AuditEntry.seq == 2, actor="someone else")
    async with UnitOfWork(chain_db) as uow:
        with pytest.raises(AuditError, match="entry 2"):
            await checkpoint(uow.session, tsa, now=T0)


def _signed_regions(der: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the token the TSA's signature protects (TSTInfo, signed
    attributes, signature value, signer certificate)."""
    signed = cms.ContentInfo.load(der)["content"]
    signer_info = extract_signer_info(signed)
    parts = [
        bytes(signed["encap_content_info"]["content"]),
        signer_info["signed_attrs"].contents,
        signer_info["signature"].native,
        extract_certs_for_validation(signed).signer_cert.dump(),
    ]
    return [(der.index(p), der.index(p) + len(p)) for p in parts]


@pytest.mark.parametrize(
    "tamper",
    ["head_hash", "seq", "other_head_token", "garbage_token", "truncated_token"],
)
async def test_a_tampered_checkpoint_is_detected(chain_db, tsa, tamper):
    await _fresh_chain(chain_db, [_simple(i) for i in range(3)])
    cp = await _checkpoint(chain_db, tsa)
    rows = await _rows(chain_db)
    values = {
        "head_hash": {"head_hash": rows[1].hash},
        "seq": {"seq": 2},
        "other_head_token": {
            "timestamp_token": (
                await tsa.async_timestamp(hashlib.sha256(b"another head").digest(), "sha256")
            ).dump()
        },
        "garbage_token": {"timestamp_token": b"not a token"},
        "truncated_token": {"timestamp_token": cp.timestamp_token[:-10]},
    }[tamper]
    await _update(chain_db, AuditCheckpoint, AuditCheckpoint.id == cp.id, **values)

    verdict = await _verify(chain_db)
    _broken(verdict, values.get("seq", 3))
    assert not verdict.checkpoints_ok and "checkpoint" in verdict.reason


@PROPERTY
@given(region=st.integers(0, 3), position=st.integers(0, 2**16), flip=st.integers(1, 255))
async def test_any_changed_signed_byte_of_a_token_is_detected(
    chain_db, tsa, region, position, flip
):
    await _fresh_chain(chain_db, [_simple(1), _simple(2)])
    cp = await _checkpoint(chain_db, tsa)
    start, end = _signed_regions(cp.timestamp_token)[region]  # token sizes vary a little
    token = bytearray(cp.timestamp_token)
    token[start + position % (end - start)] ^= flip
    await _update(
        chain_db, AuditCheckpoint, AuditCheckpoint.id == cp.id, timestamp_token=bytes(token)
    )

    verdict = await _verify(chain_db)
    _broken(verdict, 2)
    assert "timestamp token" in verdict.reason
