"""The monthly electronic-exchange report on both databases: a month whose every figure
is known (rows inserted directly, so exchanged_at, secret and signature_valid are exact),
the local-month boundaries, revisions after a late registration, the provisional flag,
the audit entry of each run and the CSV."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid

import pytest
from sqlalchemy import select

from exchange import reports
from exchange.models import Agency, AuditEntry, AuditEvent, Exchange, Recipient, StatusEvent
from exchange.reports import ReportError, ReportNotFound, compute_month, get_report, run_month
from exchange.uow import UnitOfWork

VN = reports.LOCAL_TZ
MONTH = "2031-03"  # no other test reports on it: revisions live for the whole session
CLOSED = dt.datetime(2031, 4, 2, 3, 0, tzinfo=dt.UTC)
NAMES = ("Ủy ban nhân dân xã Đông Hòa", "Sở Tư pháp", "Phòng Giáo dục", "Chi cục Thuế")


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=VN).astimezone(dt.UTC)


async def _agencies(db) -> list[str]:
    async with UnitOfWork(db) as uow:
        while True:
            first = secrets.randbelow(1000)
            codes = [f"{first:03d}.77.{i:02d}.G09" for i in range(4)]
            found = await uow.session.execute(select(Agency.code).where(Agency.code.in_(codes)))
            if not found.first():
                break
        for code, name in zip(codes, NAMES, strict=True):
            uow.session.add(Agency(code=code, name=name, created_at=CLOSED))
        await uow.commit()
    return codes


def _exchange(s, sender, channel, direction, at, to=(), *, secret=False, valid=None, due=None):
    xid = str(uuid.uuid4())
    s.add(
        Exchange(
            id=xid,
            sender_code=sender,
            channel=channel,
            direction=direction,
            subject="Về việc báo cáo",
            due_date=due,
            secret=secret,
            signature_valid=valid,
            envelope_json="{}",
            exchanged_at=at,
            created_at=at,
        )
    )
    for code in to:
        s.add(Recipient(exchange_id=xid, agency_code=code, updated_at=at))
    return xid


def _completed(s, xid, recipient, at):
    s.add(StatusEvent(exchange_id=xid, recipient_code=recipient, code="06", created_at=at))


async def _seed_month(db) -> list[str]:
    a, b, c, d = codes = await _agencies(db)
    async with UnitOfWork(db) as uow:
        s = uow.session
        e, p = "electronic", "paper"
        out, inc = "outgoing", "incoming"
        # the first and last instants of the local month count; the neighbours do not
        x1 = _exchange(s, a, e, out, local(2031, 3, 1, 0, 0, 0), [b, c], valid=True,
                       due=dt.date(2031, 3, 20))  # fmt: skip
        x2 = _exchange(s, a, e, out, local(2031, 3, 15, 10), [b], valid=False,
                       due=dt.date(2031, 3, 31))  # fmt: skip
        _exchange(s, a, e, out, local(2031, 3, 31, 23, 59, 59), [c], valid=True,
                  due=dt.date(2031, 4, 2))  # fmt: skip
        x4 = _exchange(s, a, e, out, local(2031, 2, 28, 23, 59, 59), [b], valid=True,
                       due=dt.date(2031, 3, 10))  # fmt: skip
        _exchange(s, a, e, out, local(2031, 4, 1, 0, 0, 0), [b], valid=True)
        x6 = _exchange(s, a, e, out, local(2031, 3, 5), [b], secret=True, valid=True,
                       due=dt.date(2031, 3, 6))  # fmt: skip
        _exchange(s, a, p, out, local(2031, 3, 10), [])  # A's paper registration
        x8 = _exchange(s, a, p, inc, local(2031, 3, 12), [b], due=dt.date(2031, 3, 5))
        _exchange(s, c, p, out, local(2031, 3, 13), [], secret=True)
        await s.flush()
        _completed(s, x1, b, local(2031, 3, 20, 23, 59, 59))  # on time: last second
        _completed(s, x1, c, local(2031, 3, 21, 0, 0, 0))  # late by a second
        _completed(s, x4, b, local(2031, 3, 9))  # sent in February, due in March
        _completed(s, x6, b, local(2031, 3, 6))  # secret: not counted
        _completed(s, x8, b, local(2031, 3, 4))
        del x2, d  # x2: due, never completed; d: no documents at all
        await uow.commit()
    return codes


def _row(report, code):
    (row,) = [r for r in report["agencies"] if r["agency"] == code]
    return row


def _expected(a, b, c, d):
    return {
        a: {"agency": a, "name": NAMES[0], "sent_electronic": 3, "sent_paper": 1,
            "received_electronic": 0, "received_paper": 0, "signed_valid": 2, "e_rate": 0.75,
            "e_rate_sent": 0.75, "e_rate_received": None, "signed_rate": 0.6667,
            "on_time_rate": None, "below_target": True},
        b: {"agency": b, "name": NAMES[1], "sent_electronic": 0, "sent_paper": 0,
            "received_electronic": 2, "received_paper": 1, "signed_valid": 1,
            "e_rate": 0.6667, "e_rate_sent": None, "e_rate_received": 0.6667,
            "signed_rate": 0.5, "on_time_rate": 0.75, "below_target": True},
        c: {"agency": c, "name": NAMES[2], "sent_electronic": 0, "sent_paper": 0,
            "received_electronic": 2, "received_paper": 0, "signed_valid": 2, "e_rate": 1.0,
            "e_rate_sent": None, "e_rate_received": 1.0, "signed_rate": 1.0,
            "on_time_rate": 0.0, "below_target": False},
        d: {"agency": d, "name": NAMES[3], "sent_electronic": 0, "sent_paper": 0,
            "received_electronic": 0, "received_paper": 0, "signed_valid": 0, "e_rate": None,
            "e_rate_sent": None, "e_rate_received": None, "signed_rate": None,
            "on_time_rate": None, "below_target": None},
    }  # fmt: skip


async def _audit_runs(db, month):
    async with UnitOfWork(db) as uow:
        rows = await uow.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.event == AuditEvent.REPORT_RUN.value)
            .where(AuditEntry.subject == f"e-exchange/{month}")
            .order_by(AuditEntry.seq)
        )
        return [json.loads(r.payload_json) for r in rows]


async def test_month_revisions_and_late_registration(db):
    a, b, c, d = codes = await _seed_month(db)
    expected = _expected(*codes)
    async with UnitOfWork(db) as uow:
        computed = await compute_month(uow.session, MONTH, target=0.95)
    assert computed["month"] == MONTH and computed["target"] == 0.95
    for code in codes:
        assert _row(computed, code) == expected[code]
    listed = [r["agency"] for r in computed["agencies"]]
    assert listed == sorted(listed)  # every agency of the registry, by code

    def uow():
        return UnitOfWork(db)

    first = await run_month(uow, MONTH, now=CLOSED, actor="admin", target=0.95)
    assert (first["revision"], first["provisional"]) == (1, False)
    assert first["generated_at"] == CLOSED.isoformat()
    assert [_row(first, x) for x in codes] == [expected[x] for x in codes]

    # a paper document registered late, after the month closed, amends it
    async with UnitOfWork(db) as u:
        _exchange(u.session, c, "paper", "outgoing", local(2031, 3, 25))
        await u.commit()
    later = CLOSED + dt.timedelta(days=3)
    second = await run_month(uow, MONTH, now=later, actor="admin", target=0.9)
    assert (second["revision"], second["provisional"], second["target"]) == (2, False, 0.9)
    assert _row(second, c) == expected[c] | {
        "sent_paper": 1,
        "e_rate": 0.6667,
        "e_rate_sent": 0.0,
        "below_target": True,
    }

    async with UnitOfWork(db) as u:
        assert (await get_report(u.session, MONTH)) == second
        kept = await get_report(u.session, MONTH, 1)
        assert kept == first and _row(kept, c) == expected[c]
        with pytest.raises(ReportNotFound):
            await get_report(u.session, MONTH, 3)
    runs = await _audit_runs(db, MONTH)
    assert [(r["revision"], r["provisional"]) for r in runs] == [(1, False), (2, False)]


async def test_provisional_while_the_month_is_open(db):
    month = "2031-05"
    end = local(2031, 6, 1)

    def uow():
        return UnitOfWork(db)

    open_run = await run_month(uow, month, now=end - dt.timedelta(seconds=1), actor="cli")
    closed_run = await run_month(uow, month, now=end, actor="cli")
    assert (open_run["revision"], open_run["provisional"]) == (1, True)
    assert (closed_run["revision"], closed_run["provisional"]) == (2, False)
    assert [r["revision"] for r in await _audit_runs(db, month)] == [1, 2]


async def test_unknown_month_and_bad_input(db):
    async with UnitOfWork(db) as u:
        with pytest.raises(ReportNotFound) as missing:
            await get_report(u.session, "2031-07")
        assert "run" in missing.value.detail
        for bad in ("2031-13", "2031-3", "31-03", "2031-03-01", "", "1969-12"):
            with pytest.raises(ReportError) as err:
                await compute_month(u.session, bad)
            assert (err.value.code, err.value.status) == ("invalid_month", 422)


def test_month_bounds_are_local_midnights():
    bounds = reports.month_bounds("2026-12")
    assert bounds.start == dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.UTC)
    assert bounds.end == dt.datetime(2026, 12, 31, 17, 0, tzinfo=dt.UTC)
    assert bounds.next_first == dt.date(2027, 1, 1) and len(bounds.days()) == 31


def test_csv_has_a_bom_vietnamese_names_and_dot_decimals():
    report = {
        "month": MONTH,
        "target": 0.95,
        "agencies": list(_expected("a", "b", "c", "d").values()),
    }
    data = reports.to_csv(report)
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0] == ",".join(reports.COLUMNS)
    assert len(lines) == 5
    assert lines[1] == f"a,{NAMES[0]},3,1,0,0,2,0.7500,0.7500,,0.6667,,true"
    assert lines[4] == f"d,{NAMES[3]},0,0,0,0,0,,,,,,"
    assert "Ủy ban nhân dân xã Đông Hòa" in data.decode("utf-8")
