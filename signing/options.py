"""Typed signing options: PAdES level, appearance kind, copy forms, and the
request-independent spec of one signature."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import InvalidOptionsError

__all__ = ["Level", "Appearance", "CopyForm", "SignOptions", "parse_box"]


class Level(enum.Enum):
    """PAdES baseline levels (ETSI EN 319 142-1)."""

    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"

    @property
    def needs_timestamp(self) -> bool:
        return self is not Level.B_B

    @property
    def needs_revocation(self) -> bool:
        return self in (Level.B_LT, Level.B_LTA)

    @classmethod
    def parse(cls, value: str) -> Level:
        try:
            return cls(value.strip().upper())
        except ValueError:
            allowed = ", ".join(level.value for level in cls)
            raise InvalidOptionsError(f"level must be one of {allowed}, not {value!r}") from None


class Appearance(enum.Enum):
    """What the signature shows on the page (Decree 30/2020, Appendix I)."""

    AGENCY = "agency"  # seal image + agency name + signing time
    COPY = "copy"  # electronic copy: copy form, copying agency, time; top right, no image
    APPENDIX = "appendix"  # appendix in a separate file: number/code, time; top right
    NONE = "none"  # invisible

    @classmethod
    def parse(cls, value: str) -> Appearance:
        try:
            return cls(value.strip().lower())
        except ValueError:
            allowed = ", ".join(a.value for a in cls)
            raise InvalidOptionsError(
                f"appearance must be one of {allowed}, not {value!r}"
            ) from None


class CopyForm(enum.Enum):
    SAO_Y = "SAO Y"
    SAO_LUC = "SAO LỤC"
    TRICH_SAO = "TRÍCH SAO"

    @classmethod
    def parse(cls, value: str) -> CopyForm:
        try:
            return cls(value.strip().upper())
        except ValueError:
            allowed = ", ".join(c.value for c in cls)
            raise InvalidOptionsError(f"copy_form must be one of {allowed}") from None


Box = tuple[float, float, float, float]

_MAX_TEXT = 200


def parse_box(value: str) -> Box:
    """Parse ``x1,y1,x2,y2`` in PDF points into a normalised box."""
    parts = value.split(",")
    if len(parts) != 4:
        raise InvalidOptionsError("box must be four numbers: x1,y1,x2,y2 (points)")
    try:
        x1, y1, x2, y2 = (float(p) for p in parts)
    except ValueError:
        raise InvalidOptionsError("box must be four numbers: x1,y1,x2,y2 (points)") from None
    coords = (x1, y1, x2, y2)
    if any(c != c or abs(c) > 14_400 for c in coords):  # NaN or beyond PDF's page limit
        raise InvalidOptionsError("box coordinates must be finite and within 14400 points")
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    if x2 - x1 < 10 or y2 - y1 < 10:
        raise InvalidOptionsError("box must be at least 10 points wide and high")
    return (x1, y1, x2, y2)


def _text(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > _MAX_TEXT:
        raise InvalidOptionsError(f"{name} is longer than {_MAX_TEXT} characters")
    if any(ord(ch) < 32 for ch in value):
        raise InvalidOptionsError(f"{name} must not contain control characters")
    return value or None


@dataclass(frozen=True)
class SignOptions:
    """What one signature request asks for, validated."""

    agency: str
    level: Level = Level.B_LT
    appearance: Appearance | None = None  # None: the agency stamp where the page has room
    page: int | None = None  # 1-based; negative counts from the end; None: default per kind
    box: Box | None = None
    reason: str | None = None
    location: str | None = None
    number: str | None = None
    copy_form: CopyForm | None = None

    def __post_init__(self) -> None:
        for name in ("reason", "location", "number"):
            object.__setattr__(self, name, _text(name, getattr(self, name)))
        if self.page == 0:
            raise InvalidOptionsError("page is 1-based: use 1 for the first page, -1 for the last")
        if self.page is not None and abs(self.page) > 100_000:
            raise InvalidOptionsError("page is out of range")
        if self.appearance is Appearance.COPY and self.copy_form is None:
            object.__setattr__(self, "copy_form", CopyForm.SAO_Y)
