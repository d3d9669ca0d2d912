"""The processing statuses of an exchange, per recipient (edXML status package,
QCVN 102:2016; DOMAIN.md), and the order they may follow each other, as data.

A recipient's status starts empty (``None``: delivered to its inbox, not acknowledged)::

    None -> 01 arrived
    01   -> 02 rejected | 03 registered
    03   -> 04 assigned | 05 in progress
    04   -> 05 in progress
    05   -> 06 completed
    None, 01, 03, 04, 05 -> 13 recall requested   (posted by the sender only)
    13   -> 15 recall accepted | 16 recall refused (posted by the recipient)

02, 06 and 15 are final. 16 is an event, never a resting status: it puts the recipient
back where it was when 13 arrived (so the work goes on, and the sender may ask again).
Everything else is refused (409 ``invalid_transition``). A code posted by the wrong party
(a recipient posting 13, the sender posting 03) is 403 ``forbidden``.

``apply_status`` writes one posted code: the recipient's new status (a conditional update,
so two concurrent posts cannot both pass the same check), its ``StatusEvent``, the audit
entry and the notification of the other side, in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import select, update

from .envelope import ExchangeError, ForbiddenError, InvalidTransition
from .models import AuditEvent, Exchange, Recipient, StatusEvent

__all__ = [
    "FINAL",
    "POSTED_BY",
    "TRANSITIONS",
    "Party",
    "StatusCode",
    "Track",
    "after",
    "apply_status",
    "may_follow",
    "parse_status",
    "replay",
]

MAX_NOTE = 2000


class StatusCode(enum.Enum):
    ARRIVED = "01"
    REJECTED = "02"
    REGISTERED = "03"
    ASSIGNED = "04"
    IN_PROGRESS = "05"
    COMPLETED = "06"
    RECALL_REQUESTED = "13"
    RECALL_ACCEPTED = "15"
    RECALL_REFUSED = "16"


class Party(enum.Enum):
    """Who may post a code: the exchange's sender or the recipient concerned."""

    SENDER = "sender"
    RECIPIENT = "recipient"


S = StatusCode

POSTED_BY: Mapping[StatusCode, Party] = MappingProxyType(
    {code: (Party.SENDER if code is S.RECALL_REQUESTED else Party.RECIPIENT) for code in S}
)

FINAL: frozenset[StatusCode] = frozenset({S.REJECTED, S.COMPLETED, S.RECALL_ACCEPTED})

# current status (None: not acknowledged yet) -> the codes that may follow it
TRANSITIONS: Mapping[StatusCode | None, frozenset[StatusCode]] = MappingProxyType(
    {
        None: frozenset({S.ARRIVED, S.RECALL_REQUESTED}),
        S.ARRIVED: frozenset({S.REJECTED, S.REGISTERED, S.RECALL_REQUESTED}),
        S.REGISTERED: frozenset({S.ASSIGNED, S.IN_PROGRESS, S.RECALL_REQUESTED}),
        S.ASSIGNED: frozenset({S.IN_PROGRESS, S.RECALL_REQUESTED}),
        S.IN_PROGRESS: frozenset({S.COMPLETED, S.RECALL_REQUESTED}),
        S.RECALL_REQUESTED: frozenset({S.RECALL_ACCEPTED, S.RECALL_REFUSED}),
        S.REJECTED: frozenset(),
        S.COMPLETED: frozenset(),
        S.RECALL_ACCEPTED: frozenset(),
    }
)


def may_follow(current: StatusCode | None, code: StatusCode) -> bool:
    return code in TRANSITIONS.get(current, frozenset())


def after(
    current: StatusCode | None, code: StatusCode, before_recall: StatusCode | None
) -> StatusCode | None:
    """The resting status once ``code`` is applied (16 restores ``before_recall``)."""
    if not may_follow(current, code):
        raise ValueError(f"{code.value} may not follow {current.value if current else None}")
    return before_recall if code is S.RECALL_REFUSED else code


@dataclass(frozen=True)
class Track:
    status: StatusCode | None
    before_recall: StatusCode | None


def replay(codes: Iterable[StatusCode]) -> Track:
    """Fold one recipient's posted codes (oldest first) into its status, and where it
    stood when the last recall request arrived."""
    status: StatusCode | None = None
    before: StatusCode | None = None
    for code in codes:
        if code is S.RECALL_REQUESTED:
            before = status
        status = after(status, code, before)
    return Track(status, before)


def parse_status(code: object, note: object) -> tuple[StatusCode, str | None]:
    """The posted ``{"code", "note"}``, checked."""
    try:
        status = code if isinstance(code, StatusCode) else StatusCode(code)
    except ValueError:
        allowed = ", ".join(c.value for c in StatusCode)
        raise ExchangeError("invalid_status", 422, f"code is one of {allowed}", "code") from None
    if note is not None and not _is_text(note):
        raise ExchangeError(
            "invalid_status", 422, f"note is text of at most {MAX_NOTE} characters", "note"
        )
    return status, note


def _is_text(note: object) -> bool:
    if not isinstance(note, str) or len(note) > MAX_NOTE or "\x00" in note:
        return False
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


Audit = Callable[..., Awaitable[object]]
# notify(session, exchange_id, agency_code, payload, now, *, status_changed)
Notify = Callable[..., Awaitable[None]]


async def apply_status(
    s,
    exchange: Exchange,
    recipients: list[Recipient],
    *,
    sender: str | None,
    actor: str,
    status: StatusCode,
    note: str | None,
    now: dt.datetime,
    audit: Audit,
    notify: Notify,
) -> list[tuple[str, str | None]]:
    """Apply a code posted by ``actor``; ``sender`` is the exchange's sending party (None
    when it has none). Returns (agency, new status) of every recipient it moved: the
    actor itself, or for a recall every recipient that had not finished."""
    mine = [r for r in recipients if r.agency_code == actor]
    if actor == sender:
        party, targets = Party.SENDER, recipients
    elif mine:
        party, targets = Party.RECIPIENT, mine
    else:
        raise ForbiddenError("only the sender and the recipients post statuses")
    if POSTED_BY[status] is not party:
        raise ForbiddenError(f"status {status.value} is posted by the {POSTED_BY[status].value}")
    movable = [r for r in targets if may_follow(_current(r), status)]
    if not movable:
        raise InvalidTransition(targets[0].status if targets else None, status.value)
    changed = []
    for recipient in movable:
        current = _current(recipient)
        before = await _before_recall(s, exchange.id, recipient.agency_code, status)
        new = after(current, status, before)
        await _move(s, recipient, current, new, status, now)
        s.add(
            StatusEvent(
                exchange_id=exchange.id,
                recipient_code=recipient.agency_code,
                code=status.value,
                note=note,
                actor_code=actor,
                created_at=now,
            )
        )
        payload = {
            "agency": recipient.agency_code,
            "code": status.value,
            "previous": current.value if current else None,
            "status": new.value if new else None,
            "note": note,
        }
        await audit(
            s,
            event=AuditEvent.STATUS_CHANGED,
            actor=actor,
            subject=exchange.id,
            payload=payload,
            now=now,
        )
        other = sender if party is Party.RECIPIENT else recipient.agency_code
        if other is not None:
            await notify(s, exchange.id, other, payload, now, status_changed=True)
        changed.append((recipient.agency_code, payload["status"]))
    return changed


def _current(recipient: Recipient) -> StatusCode | None:
    return StatusCode(recipient.status) if recipient.status else None


async def _before_recall(s, exchange_id: str, agency: str, status: StatusCode) -> StatusCode | None:
    if status is not S.RECALL_REFUSED:
        return None
    codes = (
        await s.execute(
            select(StatusEvent.code)
            .where(StatusEvent.exchange_id == exchange_id, StatusEvent.recipient_code == agency)
            .order_by(StatusEvent.id)
        )
    ).scalars()
    return replay(StatusCode(c) for c in codes).before_recall


async def _move(s, recipient, current, new, status, now) -> None:
    guard = Recipient.status.is_(None) if current is None else Recipient.status == current.value
    done = await s.execute(
        update(Recipient)
        .where(Recipient.id == recipient.id, guard)
        .values(status=new.value if new else None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # a concurrent post moved it first
        raise InvalidTransition(current.value if current else None, status.value)
