"""The monthly electronic-exchange report (DOMAIN.md "The electronic-exchange rate",
API.md "Reports"), computed with aggregate SQL and kept as numbered revisions.

Per agency of the registry and calendar month in Asia/Ho_Chi_Minh (``exchanged_at`` in
``[start, end)``, the local month converted to UTC), state-secret documents excluded:

- sent: exchanges whose ``from`` is the agency: every electronic exchange, and outgoing
  paper registrations (incoming paper is not the sending agency's registration);
- received: the recipient rows of the agency (registration.py): one per electronic
  exchange delivered to it, one per incoming paper document it registered;
- ``e_rate_sent``, ``e_rate_received``: electronic / (electronic + paper) in that
  direction; ``e_rate`` both directions together;
- ``signed_valid``: electronic documents sent or received whose signature verified valid
  (``Exchange.signature_valid``); ``signed_rate`` = signed_valid / electronic documents;
- ``on_time_rate``: of the documents the agency must process (its recipient rows, so
  received documents only) with a due date in the month, those whose status 06 was
  posted by that agency before the end of the due date's local day. The sender counts
  nothing here: a due date binds the agency that processes the document. The due date,
  not ``exchanged_at``, places a document in a month for this rate;
- a rate is rounded to 4 decimals, ``None`` when its denominator is 0; ``below_target`` is
  ``e_rate < target``, ``None`` when ``e_rate`` is.

Every exchange is counted, duplicates (resends) included: each is a registration.

``run_month`` stores the result as the month's next revision (``provisional`` while the
month has not closed at ``now``) with its REPORT_RUN audit entry in one transaction, so
a late registration is picked up by the next run and earlier revisions stay readable.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, exists, false, func, literal, or_, select, true
from sqlalchemy.exc import IntegrityError

from . import audit
from .envelope import ExchangeError
from .models import (
    UTC_DATETIME,
    Agency,
    AuditEvent,
    Channel,
    Direction,
    Exchange,
    Recipient,
    ReportRevision,
    StatusEvent,
)
from .statuses import StatusCode
from .uow import UnitOfWork

__all__ = [
    "latest_report",
    "COLUMNS",
    "LOCAL_TZ",
    "MonthBounds",
    "ReportError",
    "ReportNotFound",
    "compute_month",
    "get_report",
    "month_bounds",
    "run_month",
    "to_csv",
]

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
COLUMNS = (
    "agency",
    "name",
    "sent_electronic",
    "sent_paper",
    "received_electronic",
    "received_paper",
    "signed_valid",
    "e_rate",
    "e_rate_sent",
    "e_rate_received",
    "signed_rate",
    "on_time_rate",
    "below_target",
)
_ELECTRONIC = Channel.ELECTRONIC.value


class ReportError(ExchangeError):
    """A report that cannot be computed or read (``code``, ``status``, ``detail``)."""


class ReportNotFound(ReportError):
    def __init__(self, detail: str) -> None:
        super().__init__("not_found", 404, detail)


class MonthBounds:
    """A local calendar month: its UTC bounds ``[start, end)`` and its dates ``[first, next_first)``."""

    def __init__(self, month: str) -> None:
        match = _MONTH.match(month) if isinstance(month, str) else None
        if match is None or not 1970 <= int(match.group(1)) <= 9998:
            raise ReportError("invalid_month", 422, "month must be YYYY-MM, e.g. 2026-10", "month")
        year, number = int(match.group(1)), int(match.group(2))
        self.month = month
        self.first = dt.date(year, number, 1)
        self.next_first = dt.date(year + number // 12, number % 12 + 1, 1)
        self.start = _local_midnight_utc(self.first)
        self.end = _local_midnight_utc(self.next_first)

    def days(self) -> list[dt.date]:
        count = (self.next_first - self.first).days
        return [self.first + dt.timedelta(days=i) for i in range(count)]

    def closed_at(self, now: dt.datetime) -> bool:
        return now >= self.end


def _local_midnight_utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), LOCAL_TZ).astimezone(dt.UTC)


def month_bounds(month: str) -> MonthBounds:
    return MonthBounds(month)


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _valid_electronic():
    electronic_valid = and_(Exchange.channel == _ELECTRONIC, Exchange.signature_valid == true())
    return func.coalesce(func.sum(case((electronic_valid, 1), else_=0)), 0)


async def _sent(session, bounds: MonthBounds) -> dict[tuple[str, str], tuple[int, int]]:
    rows = await session.execute(
        select(Exchange.sender_code, Exchange.channel, func.count(), _valid_electronic())
        .where(
            Exchange.exchanged_at >= bounds.start,
            Exchange.exchanged_at < bounds.end,
            Exchange.secret == false(),
            or_(
                Exchange.channel == _ELECTRONIC,
                Exchange.direction == Direction.OUTGOING.value,
            ),
        )
        .group_by(Exchange.sender_code, Exchange.channel)
    )
    return {(code, channel): (int(n), int(valid)) for code, channel, n, valid in rows}


async def _received(session, bounds: MonthBounds) -> dict[tuple[str, str], tuple[int, int]]:
    rows = await session.execute(
        select(Recipient.agency_code, Exchange.channel, func.count(), _valid_electronic())
        .select_from(Recipient)
        .join(Exchange, Exchange.id == Recipient.exchange_id)
        .where(
            Exchange.exchanged_at >= bounds.start,
            Exchange.exchanged_at < bounds.end,
            Exchange.secret == false(),
        )
        .group_by(Recipient.agency_code, Exchange.channel)
    )
    return {(code, channel): (int(n), int(valid)) for code, channel, n, valid in rows}


async def _on_time(session, bounds: MonthBounds) -> dict[str, tuple[int, int]]:
    # the end of each due date's local day, as a UTC instant, chosen in SQL by the date
    deadline = case(
        *(
            (
                Exchange.due_date == day,
                literal(_local_midnight_utc(day + dt.timedelta(1)), UTC_DATETIME),
            )
            for day in bounds.days()
        )
    )
    completed = (
        exists()
        .where(
            StatusEvent.exchange_id == Exchange.id,
            StatusEvent.recipient_code == Recipient.agency_code,
            StatusEvent.code == StatusCode.COMPLETED.value,
            StatusEvent.created_at < deadline,
        )
        .correlate(Exchange, Recipient)
    )
    rows = await session.execute(
        select(
            Recipient.agency_code,
            func.count(),
            func.coalesce(func.sum(case((completed, 1), else_=0)), 0),
        )
        .select_from(Recipient)
        .join(Exchange, Exchange.id == Recipient.exchange_id)
        .where(
            Exchange.due_date >= bounds.first,
            Exchange.due_date < bounds.next_first,
            Exchange.secret == false(),
        )
        .group_by(Recipient.agency_code)
    )
    return {code: (int(due), int(done)) for code, due, done in rows}


async def compute_month(session, month: str, *, target: float = 0.95) -> dict[str, Any]:
    """The report of ``month`` (YYYY-MM) for every agency of the registry, from the
    database as ``session`` sees it (no revision, nothing stored)."""
    if not 0 < target <= 1:
        raise ReportError("invalid_target", 422, "the target must be in (0, 1]", "target")
    bounds = MonthBounds(month)
    sent = await _sent(session, bounds)
    received = await _received(session, bounds)
    on_time = await _on_time(session, bounds)
    agencies = await session.execute(select(Agency.code, Agency.name).order_by(Agency.code))
    paper = Channel.PAPER.value
    rows = []
    for code, name in agencies:
        sent_e, sent_e_valid = sent.get((code, _ELECTRONIC), (0, 0))
        sent_p = sent.get((code, paper), (0, 0))[0]
        recv_e, recv_e_valid = received.get((code, _ELECTRONIC), (0, 0))
        recv_p = received.get((code, paper), (0, 0))[0]
        due, done = on_time.get(code, (0, 0))
        electronic = sent_e + recv_e
        e_rate = _rate(electronic, electronic + sent_p + recv_p)
        rows.append(
            {
                "agency": code,
                "name": name,
                "sent_electronic": sent_e,
                "sent_paper": sent_p,
                "received_electronic": recv_e,
                "received_paper": recv_p,
                "signed_valid": sent_e_valid + recv_e_valid,
                "e_rate": e_rate,
                "e_rate_sent": _rate(sent_e, sent_e + sent_p),
                "e_rate_received": _rate(recv_e, recv_e + recv_p),
                "signed_rate": _rate(sent_e_valid + recv_e_valid, electronic),
                "on_time_rate": _rate(done, due),
                "below_target": None if e_rate is None else e_rate < target,
            }
        )
    return {"month": bounds.month, "target": target, "agencies": rows}


def _utc(moment: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; they are stored in UTC
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _published(row: ReportRevision) -> dict[str, Any]:
    data = json.loads(row.data_json)
    return {
        "month": row.month,
        "revision": row.revision,
        "generated_at": _utc(row.generated_at).isoformat(),
        "provisional": row.provisional,
        "target": row.target,
        "agencies": data["agencies"],
    }


async def run_month(
    uow_factory: Callable[[], UnitOfWork],
    month: str,
    *,
    now: dt.datetime,
    actor: str,
    target: float = 0.95,
    audit_append: Callable[..., Awaitable[object]] = audit.append,
) -> dict[str, Any]:
    """Compute ``month`` and store it as its next revision, with the REPORT_RUN audit
    entry, in one transaction; the stored report (with ``revision``, ``generated_at``
    and ``provisional``) is returned."""
    bounds = MonthBounds(month)
    async with uow_factory() as uow:
        s = uow.session
        report = await compute_month(s, month, target=target)
        latest = await s.scalar(
            select(func.max(ReportRevision.revision)).where(ReportRevision.month == month)
        )
        data_json = json.dumps(report, ensure_ascii=False, sort_keys=True)
        row = ReportRevision(
            month=month,
            revision=(latest or 0) + 1,
            generated_at=now,
            target=target,
            provisional=not bounds.closed_at(now),
            data_json=data_json,
        )
        s.add(row)
        try:
            await s.flush()
        except IntegrityError:
            raise ReportError(
                "report_conflict", 409, f"another run of {month} finished first; run it again"
            ) from None
        await audit_append(
            s,
            event=AuditEvent.REPORT_RUN,
            actor=actor,
            subject=f"e-exchange/{month}",
            payload={
                "month": month,
                "revision": row.revision,
                "provisional": row.provisional,
                "target": target,
                "sha256": hashlib.sha256(data_json.encode("utf-8")).hexdigest(),
            },
            now=now,
        )
        await uow.commit()
    return _published(row)


async def get_report(session, month: str, revision: int | None = None) -> dict[str, Any]:
    """A stored revision of ``month`` (the latest when ``revision`` is None)."""
    MonthBounds(month)
    query = select(ReportRevision).where(ReportRevision.month == month)
    if revision is not None:
        query = query.where(ReportRevision.revision == revision)
    row = await session.scalar(query.order_by(ReportRevision.revision.desc()).limit(1))
    if row is None:
        which = f"revision {revision} of {month}" if revision is not None else month
        raise ReportNotFound(
            f"no report for {which}; run it first "
            f"(POST /v1/reports/e-exchange/{month}/run or docgate report run --month {month})"
        )
    return _published(row)


async def latest_report(session) -> dict[str, Any] | None:
    """The latest revision of the latest month run (for the e_rate gauge), or None."""
    row = await session.scalar(
        select(ReportRevision)
        .order_by(ReportRevision.month.desc(), ReportRevision.revision.desc())
        .limit(1)
    )
    return _published(row) if row is not None else None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def to_csv(report: dict[str, Any]) -> bytes:
    """One row per agency of ``report`` under the JSON field names; UTF-8 with a BOM (so
    spreadsheet programs read the Vietnamese names), decimals with '.', empty for null."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in report["agencies"]:
        writer.writerow([_cell(row[name]) for name in COLUMNS])
    return out.getvalue().encode("utf-8-sig")
