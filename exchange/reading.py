"""Reading exchanges: who may see one, its detail, and the inbox/outbox listings.

Access: a party is the sender of an outgoing exchange and each recipient (for a paper
document received from outside, only the registering agency: the agency it came from is
no party to that registration). Non-parties get 403 ``forbidden`` on an exchange that
exists and 404 ``not_found`` on one that does not. Admins read and download everything;
auditors read everything but download nothing. A recipient sees its own status history;
the sender, admins and auditors see every recipient's.

Listings are newest first, with keyset pagination on (created_at, id).

The cursor is opaque to clients (base64url of the last item's key). ``status`` filters on
the recipient's status (``new``: not acknowledged yet); in the outbox an exchange matches
when any of its recipients does. ``since`` keeps exchanges created at or after it.
The inbox holds what was addressed to the agency (electronic) and the paper documents it
registered as received; the outbox what it sent or registered as sent on paper.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, or_, select

from .delivery import delivery_state
from .envelope import ForbiddenError, InvalidQueryError, NotFoundError
from .models import Direction, Exchange, Recipient, Role, StatusEvent
from .statuses import StatusCode

__all__ = [
    "MAX_LIMIT",
    "NEW",
    "Page",
    "authorize",
    "decode_cursor",
    "encode_cursor",
    "exchange_detail",
    "list_exchanges",
    "load_exchange",
    "sender_party",
    "utc",
]

MAX_LIMIT = 200
NEW = "new"  # the status filter for "not acknowledged yet"


@dataclass(frozen=True)
class Page:
    items: tuple[dict[str, Any], ...]
    next_cursor: str | None

    def to_json(self) -> dict[str, Any]:
        return {"items": list(self.items), "next_cursor": self.next_cursor}


def utc(t: dt.datetime) -> dt.datetime:
    """Aware UTC (SQLite hands back naive UTC; everything is stored in UTC)."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


# -- one exchange ----------------------------------------------------------------------


def sender_party(exchange: Exchange) -> str | None:
    """The sender is a party of what it sent, not of a paper document that another agency
    registered as received from it."""
    return exchange.sender_code if exchange.direction == Direction.OUTGOING.value else None


def authorize(
    exchange: Exchange,
    recipients: list[Recipient],
    agency: str | None,
    role: Role,
    *,
    download: bool,
) -> None:
    if role is Role.ADMIN or (role is Role.AUDITOR and not download):
        return
    if (
        role is Role.AGENCY
        and agency is not None
        and (agency == sender_party(exchange) or any(r.agency_code == agency for r in recipients))
    ):
        return
    raise ForbiddenError("only the parties of an exchange may see it")


async def load_exchange(s, exchange_id: object) -> tuple[Exchange, list[Recipient]]:
    if not isinstance(exchange_id, str) or len(exchange_id) > 36:
        raise NotFoundError()
    exchange = await s.get(Exchange, exchange_id)
    if exchange is None:
        raise NotFoundError()
    recipients = (
        await s.execute(
            select(Recipient)
            .where(Recipient.exchange_id == exchange_id)
            .order_by(Recipient.agency_code)
        )
    ).scalars()
    return exchange, list(recipients)


async def exchange_detail(
    s, exchange: Exchange, recipients: list[Recipient], agency: str | None, role: Role
) -> dict[str, Any]:
    """Envelope, per-recipient status history, verification report and the webhook
    notifications (``delivery``: each one's state, as ``delivery.delivery_state``; a
    recipient agency sees those addressed to it, like its status history)."""
    events = (
        await s.execute(
            select(StatusEvent)
            .where(StatusEvent.exchange_id == exchange.id)
            .order_by(StatusEvent.id)
        )
    ).scalars()
    history: dict[str, list[dict]] = {}
    for e in events:
        history.setdefault(e.recipient_code, []).append(
            {"code": e.code, "note": e.note, "actor": e.actor_code, "at": _iso(e.created_at)}
        )
    own_only = role is Role.AGENCY and agency != sender_party(exchange)
    report = exchange.verification_json
    delivery = [
        _delivery_view(d, agency if role is Role.AGENCY else None)
        for d in await delivery_state(s, exchange.id)
        if not own_only or d["agency"] == agency
    ]
    return {
        **_item(exchange),
        "envelope": json.loads(exchange.envelope_json),
        "signed_by_gateway": exchange.signed_by_gateway,
        "level": exchange.level,
        "verification": json.loads(report) if report else None,
        "recipients": [
            {
                "agency": r.agency_code,
                "status": r.status,
                "updated_at": _iso(r.updated_at),
                "history": history.get(r.agency_code, []),
            }
            for r in recipients
            if not own_only or r.agency_code == agency
        ],
        "delivery": delivery,
    }


def _delivery_view(state: dict[str, Any], agency: str | None) -> dict[str, Any]:
    """An agency sees that a notification of another agency failed, not why: the error
    text can name that agency's webhook endpoint."""
    if agency is not None and state["agency"] != agency and state["last_error"]:
        return state | {"last_error": "withheld"}
    return state


# -- listings --------------------------------------------------------------------------


def encode_cursor(created_at: dt.datetime, exchange_id: str) -> str:
    raw = json.dumps([utc(created_at).isoformat(), exchange_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, exchange_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        parsed = dt.datetime.fromisoformat(when)
        if parsed.tzinfo is None or not isinstance(exchange_id, str):
            raise ValueError
        return utc(parsed), exchange_id
    except (ValueError, TypeError, UnicodeError, binascii.Error, OverflowError):
        raise InvalidQueryError("cursor", "not a cursor this service handed out") from None


def _limit(limit: object) -> int:
    if isinstance(limit, str) and limit.isdigit() and len(limit) < 6:
        limit = int(limit)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidQueryError("limit", f"limit is a whole number from 1 to {MAX_LIMIT}")
    return limit


def _since(since: object) -> dt.datetime | None:
    if since is None or isinstance(since, dt.datetime):
        return utc(since) if since is not None else None
    try:
        parsed = dt.datetime.fromisoformat(since) if isinstance(since, str) else None
        if parsed is None or parsed.tzinfo is None:
            raise ValueError
        return utc(parsed)
    except (ValueError, OverflowError):
        raise InvalidQueryError("since", "since is an ISO 8601 time with offset") from None


def _status(status: object):
    """A SQL condition on Recipient.status, or None for no filter."""
    if status is None:
        return None
    if status == NEW:
        return Recipient.status.is_(None)
    try:
        return Recipient.status == StatusCode(status).value
    except ValueError:
        allowed = ", ".join([NEW] + [c.value for c in StatusCode])
        raise InvalidQueryError("status", f"status is one of {allowed}") from None


async def list_exchanges(
    s, agency: str, *, inbox: bool, status=None, since=None, limit=50, cursor=None
) -> Page:
    limit, since, on_status = _limit(limit), _since(since), _status(status)
    after = decode_cursor(cursor) if cursor else None
    if inbox:
        query = (
            select(Exchange, Recipient.status)
            .join(Recipient, Recipient.exchange_id == Exchange.id)
            .where(Recipient.agency_code == agency)
        )
        if on_status is not None:
            query = query.where(on_status)
    else:
        query = select(Exchange).where(
            Exchange.sender_code == agency, Exchange.direction == Direction.OUTGOING.value
        )
        if on_status is not None:
            query = query.where(exists().where(Recipient.exchange_id == Exchange.id, on_status))
    if since is not None:
        query = query.where(Exchange.created_at >= since)
    if after is not None:
        when, last_id = after
        query = query.where(
            or_(
                Exchange.created_at < when,
                and_(Exchange.created_at == when, Exchange.id < last_id),
            )
        )
    query = query.order_by(Exchange.created_at.desc(), Exchange.id.desc()).limit(limit + 1)
    rows = (await s.execute(query)).all()
    more, rows = len(rows) > limit, rows[:limit]
    exchanges = [row[0] for row in rows]
    if inbox:
        items = [_item(e) | {"status": row[1]} for e, row in zip(exchanges, rows, strict=True)]
    else:
        states = await _recipient_states(s, [e.id for e in exchanges])
        items = [_item(e) | {"recipients": states.get(e.id, [])} for e in exchanges]
    last = exchanges[-1] if more else None
    return Page(tuple(items), encode_cursor(last.created_at, last.id) if last else None)


async def _recipient_states(s, ids: list[str]) -> dict[str, list[dict]]:
    states: dict[str, list[dict]] = {}
    if not ids:
        return states
    rows = await s.execute(
        select(Recipient.exchange_id, Recipient.agency_code, Recipient.status)
        .where(Recipient.exchange_id.in_(ids))
        .order_by(Recipient.agency_code)
    )
    for exchange_id, code, status in rows:
        states.setdefault(exchange_id, []).append({"agency": code, "status": status})
    return states


def _item(e: Exchange) -> dict[str, Any]:
    envelope = json.loads(e.envelope_json)
    return {
        "id": e.id,
        "from": e.sender_code,
        "to": envelope["to"],
        "channel": e.channel,
        "direction": e.direction,
        "number": e.doc_number,
        "notation": e.doc_notation,
        "type": e.doc_type,
        "subject": e.subject,
        "due_date": e.due_date.isoformat() if e.due_date else None,
        "secret": e.secret,
        "document_sha256": e.document_sha256,
        "signature_valid": e.signature_valid,
        "duplicate_of": e.duplicate_of,
        "exchanged_at": _iso(e.exchanged_at),
        "created_at": _iso(e.created_at),
    }


def _iso(t: dt.datetime) -> str:
    return utc(t).isoformat()
