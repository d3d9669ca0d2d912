"""What a stamp says: the kind of appearance, its text lines, the signing time."""

from __future__ import annotations

import datetime
import enum
import unicodedata
from dataclasses import dataclass

from ..errors import InvalidOptionsError

__all__ = [
    "StampContent",
    "stamp_text_lines",
    "format_signing_time",
    "VIETNAM_TZ",
    "KINDS",
]

VIETNAM_TZ = datetime.timezone(datetime.timedelta(hours=7), "ICT")
KINDS = ("agency", "copy", "appendix")
_DEFAULT_COPY_FORM = "SAO Y"


def _enum_value(value: object) -> object:
    return value.value if isinstance(value, enum.Enum) else value


def _clean(value: str | None) -> str | None:
    """NFC, whitespace (including line breaks and controls) collapsed to single spaces."""
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value))
    text = "".join(" " if (ch.isspace() or unicodedata.category(ch) == "Cc") else ch for ch in text)
    return " ".join(text.split()) or None


@dataclass(frozen=True)
class StampContent:
    """The data shown by a visible signature (Decree 30/2020/NĐ-CP, Appendix I).

    ``kind`` and ``copy_form`` also accept the enums of :mod:`signing.options`
    (``Appearance``, ``CopyForm``); they are stored as their string values.
    """

    kind: str  # "agency" | "copy" | "appendix"
    agency_name: str
    signing_time: datetime.datetime  # aware
    seal_png: bytes | None = None  # "agency" only; None: text only
    copy_form: str | None = None  # "copy": "SAO Y" | "SAO LỤC" | "TRÍCH SAO"
    number: str | None = None  # "appendix": e.g. "Số: 07/UBND-VP"

    def __post_init__(self) -> None:
        kind = _enum_value(self.kind)
        if not isinstance(kind, str) or kind.strip().lower() not in KINDS:
            raise InvalidOptionsError(f"stamp kind must be one of {', '.join(KINDS)}, not {kind!r}")
        object.__setattr__(self, "kind", kind.strip().lower())
        object.__setattr__(self, "agency_name", _clean(self.agency_name) or "")
        object.__setattr__(self, "number", _clean(self.number))
        copy_form = _clean(_enum_value(self.copy_form))  # type: ignore[arg-type]
        if self.kind == "copy" and copy_form is None:
            copy_form = _DEFAULT_COPY_FORM
        object.__setattr__(self, "copy_form", copy_form)
        t = self.signing_time
        if not isinstance(t, datetime.datetime) or t.utcoffset() is None:
            raise InvalidOptionsError("signing_time must be a timezone-aware datetime")
        if self.seal_png is not None and not isinstance(self.seal_png, bytes | bytearray):
            raise InvalidOptionsError("seal_png must be PNG bytes")
        if isinstance(self.seal_png, bytearray):
            object.__setattr__(self, "seal_png", bytes(self.seal_png))

    @property
    def time_text(self) -> str:
        return format_signing_time(self.signing_time)


def format_signing_time(t: datetime.datetime) -> str:
    """ISO 8601 in Viet Nam time, seconds precision: ``2026-11-29T10:59:04+07:00``."""
    if t.utcoffset() is None:
        raise InvalidOptionsError("signing_time must be a timezone-aware datetime")
    return t.astimezone(VIETNAM_TZ).replace(microsecond=0).isoformat(timespec="seconds")


def stamp_text_lines(content: StampContent) -> list[str]:
    """The stamp's text lines, before wrapping to the box (empty parts omitted)."""
    if content.kind == "agency":
        parts = [content.agency_name]
    elif content.kind == "copy":
        parts = [content.copy_form, content.agency_name]
    else:  # appendix
        parts = [content.number]
    return [p for p in parts if p] + [content.time_text]
