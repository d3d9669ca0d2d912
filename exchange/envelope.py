"""The exchange envelope (API.md "Exchanges", edXML header fields of QCVN 102:2016) and
the errors of the exchange service.

``parse_envelope`` turns the untrusted JSON of ``POST /v1/exchanges`` into a frozen
``Envelope`` or raises ``EnvelopeError`` naming the field (``to[1]``,
``document.subject``, ...). It raises nothing else, whatever the input.

Who registers what (the report counts each registration for that agency only):

- ``direction: outgoing`` (electronic or paper): ``from`` sends; ``from`` registers it.
- ``direction: incoming`` with ``channel: paper``: a paper document that came from
  ``from`` by post and is registered by the single ``to`` agency (``registrant``).
- ``direction: incoming`` with ``channel: electronic`` is refused: an electronic exchange
  on this gateway is one outgoing exchange, received by each recipient.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from signing.options import Level

from .models import Channel, Direction

__all__ = [
    "AGENCY_CODE",
    "MAX_RECIPIENTS",
    "DocumentInfo",
    "Envelope",
    "EnvelopeError",
    "ExchangeError",
    "ForbiddenError",
    "IdempotencyConflict",
    "InvalidQueryError",
    "InvalidTransition",
    "NotFoundError",
    "SignatureInvalidError",
    "StoredDocumentCorrupted",
    "UnknownAgencyError",
    "parse_envelope",
]

AGENCY_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
MAX_RECIPIENTS = 500
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TOP_KEYS = frozenset(
    {"from", "to", "channel", "direction", "document", "sign", "level", "exchanged_at"}
)
_DOC_LIMITS = {"number": 50, "notation": 100, "type": 50, "subject": 500}
_DOC_KEYS = frozenset(_DOC_LIMITS) | {"promulgated_at", "due_date", "secret"}


# -- errors ---------------------------------------------------------------------------


class ExchangeError(Exception):
    """Base of the exchange service's errors: a stable ``code``, the suggested HTTP
    ``status``, a human ``detail`` and the request ``field`` at fault (or None)."""

    def __init__(self, code: str, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.code, self.status, self.detail, self.field = code, status, detail, field


class EnvelopeError(ExchangeError):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__("invalid_envelope", 422, detail, field)


class UnknownAgencyError(ExchangeError):
    def __init__(self, field: str, code: str) -> None:
        super().__init__("unknown_agency", 422, f"agency {code} is not known here", field)


class ForbiddenError(ExchangeError):
    def __init__(self, detail: str = "this token may not do this") -> None:
        super().__init__("forbidden", 403, detail)


class NotFoundError(ExchangeError):
    def __init__(self, detail: str = "no such exchange") -> None:
        super().__init__("not_found", 404, detail)


class SignatureInvalidError(ExchangeError):
    """``sign: false`` and the document does not verify; ``report`` is the verifier's."""

    def __init__(self, report: dict[str, Any]) -> None:
        summary = report.get("summary") if isinstance(report, dict) else None
        detail = summary.get("en") if isinstance(summary, dict) else None
        super().__init__(
            "signature_invalid", 422, detail or "the document's signatures do not verify", "file"
        )
        self.report = report


class IdempotencyConflict(ExchangeError):
    def __init__(self) -> None:
        super().__init__(
            "idempotency_key_reused",
            422,
            "this Idempotency-Key was used for a different request",
        )


class InvalidTransition(ExchangeError):
    def __init__(self, current: str | None, code: str) -> None:
        super().__init__(
            "invalid_transition",
            409,
            f"status {code} may not follow {current or 'no status'}",
            "code",
        )
        self.current, self.requested = current, code


class InvalidQueryError(ExchangeError):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__("invalid_query", 422, detail, field)


class StoredDocumentCorrupted(ExchangeError):
    """The archive no longer holds the exact bytes: never served, always reported."""

    def __init__(self, sha256: str) -> None:
        super().__init__(
            "document_corrupted", 500, f"archived document {sha256} is missing or damaged"
        )


# -- the envelope ---------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentInfo:
    subject: str
    number: str | None = None
    notation: str | None = None
    type: str | None = None
    promulgated_at: dt.date | None = None
    due_date: dt.date | None = None
    secret: bool = False


@dataclass(frozen=True)
class Envelope:
    sender: str  # "from"
    recipients: tuple[str, ...]  # "to", in the order given
    channel: Channel
    direction: Direction
    document: DocumentInfo
    sign: bool = False
    level: Level = Level.B_LT
    exchanged_at: dt.datetime | None = None  # paper only; aware

    @property
    def registrant(self) -> str:
        """The agency that registers this envelope (and must be the caller)."""
        if self.direction is Direction.INCOMING:
            return self.recipients[0]
        return self.sender

    def to_json(self) -> dict[str, Any]:
        doc = self.document
        return {
            "from": self.sender,
            "to": list(self.recipients),
            "channel": self.channel.value,
            "direction": self.direction.value,
            "document": {
                "number": doc.number,
                "notation": doc.notation,
                "type": doc.type,
                "subject": doc.subject,
                "promulgated_at": doc.promulgated_at.isoformat() if doc.promulgated_at else None,
                "due_date": doc.due_date.isoformat() if doc.due_date else None,
                "secret": doc.secret,
            },
            "sign": self.sign,
            "level": self.level.value,
            "exchanged_at": self.exchanged_at.isoformat() if self.exchanged_at else None,
        }


def parse_envelope(raw: object) -> Envelope:
    if not isinstance(raw, dict):
        raise EnvelopeError("envelope", "the envelope must be a JSON object")
    _refuse_unknown(raw, _TOP_KEYS, "")
    sender = _agency(raw.get("from"), "from")
    recipients = _recipients(raw.get("to"))
    channel = _enum(Channel, raw.get("channel"), "channel")
    direction = _enum(Direction, raw.get("direction"), "direction")
    document = _document(raw.get("document"))
    sign = _bool(raw.get("sign", False), "sign")
    level = _enum(Level, raw.get("level", Level.B_LT.value), "level")
    exchanged_at = _instant(raw.get("exchanged_at"), "exchanged_at")

    for i, code in enumerate(recipients):
        if code == sender:
            raise EnvelopeError(f"to[{i}]", "the sender cannot be one of its recipients")
    if channel is Channel.ELECTRONIC:
        if direction is Direction.INCOMING:
            raise EnvelopeError(
                "direction", "an electronic exchange is outgoing (its recipients receive it)"
            )
        if exchanged_at is not None:
            raise EnvelopeError("exchanged_at", "only paper registrations may give exchanged_at")
    elif sign:
        raise EnvelopeError("sign", "a paper registration is not signed by the gateway")
    if direction is Direction.INCOMING and len(recipients) != 1:
        raise EnvelopeError("to", "an incoming paper document names exactly one recipient")
    return Envelope(sender, recipients, channel, direction, document, sign, level, exchanged_at)


def _refuse_unknown(raw: dict, allowed: frozenset[str], prefix: str) -> None:
    for key in raw:
        if key not in allowed:
            name = key if isinstance(key, str) and key else repr(key)
            raise EnvelopeError(f"{prefix}{name[:60]}", "unknown field")


def _agency(value: object, field: str) -> str:
    if not isinstance(value, str) or not AGENCY_CODE.fullmatch(value):
        raise EnvelopeError(field, "an agency code looks like 000.00.00.H41")
    return value


def _recipients(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise EnvelopeError("to", "to is a non-empty list of agency codes")
    if len(value) > MAX_RECIPIENTS:
        raise EnvelopeError("to", f"at most {MAX_RECIPIENTS} recipients")
    seen: set[str] = set()
    for i, item in enumerate(value):
        code = _agency(item, f"to[{i}]")
        if code in seen:
            raise EnvelopeError(f"to[{i}]", f"{code} is named twice")
        seen.add(code)
    return tuple(value)


def _enum(kind: Any, value: object, field: str) -> Any:
    allowed = [member.value for member in kind]
    if not isinstance(value, str) or value not in allowed:
        raise EnvelopeError(field, f"{field} is one of {', '.join(allowed)}")
    return kind(value)


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise EnvelopeError(field, f"{field} is true or false")
    return value


def _text(value: object, field: str, limit: int, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise EnvelopeError(field, f"{field} is {'required' if required else 'a string'}")
    if len(value) > limit:
        raise EnvelopeError(field, f"{field} has at most {limit} characters")
    if _CONTROL.search(value):
        raise EnvelopeError(field, f"{field} contains control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EnvelopeError(field, f"{field} is not valid Unicode text") from None
    return value


def _date(value: object, field: str) -> dt.date | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise EnvelopeError(field, f"{field} is a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise EnvelopeError(field, f"{field} is not a calendar date") from None


def _instant(value: object, field: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64 or "T" not in value:
        raise EnvelopeError(field, f"{field} is an ISO 8601 time with offset")
    try:
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise ValueError("no offset")
        parsed.astimezone(dt.UTC)  # out of range once in UTC?
    except (ValueError, OverflowError):
        raise EnvelopeError(field, f"{field} is an ISO 8601 time with offset") from None
    return parsed


def _document(value: object) -> DocumentInfo:
    if not isinstance(value, dict):
        raise EnvelopeError("document", "document is an object with at least a subject")
    _refuse_unknown(value, _DOC_KEYS, "document.")
    texts = {
        key: _text(value.get(key), f"document.{key}", limit, required=key == "subject")
        for key, limit in _DOC_LIMITS.items()
    }
    return DocumentInfo(
        subject=texts["subject"] or "",
        number=texts["number"],
        notation=texts["notation"],
        type=texts["type"],
        promulgated_at=_date(value.get("promulgated_at"), "document.promulgated_at"),
        due_date=_date(value.get("due_date"), "document.due_date"),
        secret=_bool(value.get("secret", False), "document.secret"),
    )
