"""Layout of stamp text (wrapping, shrinking) and the default stamp boxes."""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass

from ..errors import InvalidOptionsError
from .font import StampFont

__all__ = [
    "TextBlock",
    "StampLayoutError",
    "wrap_line",
    "fit_text",
    "default_box",
    "DEFAULT_FONT_SIZE",
    "MIN_FONT_SIZE",
    "LEADING",
]

DEFAULT_FONT_SIZE = 10.0
MIN_FONT_SIZE = 6.0
LEADING = 1.2  # baseline-to-baseline distance, in font sizes
_SIZE_STEP = 0.25

# (width, height, margin) in points
_BOXES = {
    "agency": (260.0, 100.0, 40.0),
    "copy": (200.0, 48.0, 28.0),
    "appendix": (200.0, 48.0, 28.0),
}


class StampLayoutError(InvalidOptionsError):
    """The stamp text does not fit in the box even at the minimum font size."""

    code = "stamp_does_not_fit"
    title = "Stamp text does not fit"


@dataclass(frozen=True)
class TextBlock:
    """Lines laid out at one font size. ``height`` spans the highest diacritic of
    the first line to the lowest descender of the last line."""

    lines: tuple[str, ...]
    size: float
    leading: float  # points between baselines
    top: float  # distance from the block's top to the first baseline
    height: float
    width: float  # widest line


def _clusters(word: str) -> list[str]:
    """Split into base characters with their combining marks attached."""
    out: list[str] = []
    for ch in word:
        if out and unicodedata.combining(ch):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _break_word(font: StampFont, word: str, width: float, size: float) -> list[str]:
    pieces, current = [], ""
    for cluster in _clusters(word):
        if current and font.text_width(current + cluster, size) > width:
            pieces.append(current)
            current = cluster
        else:
            current += cluster
    if current:
        pieces.append(current)
    return pieces


def wrap_line(font: StampFont, text: str, width: float, size: float) -> list[str]:
    """Greedy word wrap of ``text`` to ``width`` points; over-long words are broken."""
    words = unicodedata.normalize("NFC", text).split()
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if font.text_width(candidate, size) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        if font.text_width(word, size) <= width:
            current = word
        else:
            *full, current = _break_word(font, word, width, size)
            lines.extend(full)
    if current:
        lines.append(current)
    return lines


def _block(font: StampFont, lines: list[str], size: float) -> TextBlock:
    top = font.ink_top * size / 1000.0
    bottom = -font.ink_bottom * size / 1000.0
    leading = LEADING * size
    return TextBlock(
        lines=tuple(lines),
        size=size,
        leading=leading,
        top=top,
        height=top + leading * (len(lines) - 1) + bottom,
        width=max((font.text_width(line, size) for line in lines), default=0.0),
    )


def fit_text(
    font: StampFont,
    paragraphs: list[str],
    width: float,
    height: float,
    max_size: float = DEFAULT_FONT_SIZE,
    min_size: float = MIN_FONT_SIZE,
) -> TextBlock:
    """Wrap ``paragraphs`` to ``width`` at the largest size (``max_size`` down to
    ``min_size`` in 0.25 pt steps) whose block fits ``width`` x ``height``.

    :raises StampLayoutError: nothing fits, even at ``min_size`` (never clips).
    """
    size = max_size
    while size >= min_size - 1e-9:
        lines = [line for p in paragraphs for line in wrap_line(font, p, width, size)]
        block = _block(font, lines, size)
        if block.height <= height + 1e-6 and block.width <= width + 1e-6:
            return block
        size = round(size - _SIZE_STEP, 4)
    raise StampLayoutError(
        f"stamp text does not fit in a {width:.0f} x {height:.0f} pt area "
        f"even at {min_size:g} pt; use a larger box or shorter text",
        width=round(width, 1),
        height=round(height, 1),
    )


def _kind(kind: object) -> str:
    value = kind.value if isinstance(kind, enum.Enum) else kind
    if not isinstance(value, str) or value.strip().lower() not in _BOXES:
        raise InvalidOptionsError(f"no default box for appearance {value!r}")
    return value.strip().lower()


def default_box(
    kind: str, page_box: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """Default stamp rectangle ``(x1, y1, x2, y2)`` for a page's effective box.

    ``agency``: lower right, about 260 x 100 pt inside 40 pt margins;
    ``copy``/``appendix``: top right, about 200 x 48 pt inside 28 pt margins.
    On pages too small for that, the box and margins shrink so that the box
    always stays inside the page.
    """
    want_w, want_h, margin = _BOXES[_kind(kind)]
    x1, x2 = sorted((float(page_box[0]), float(page_box[2])))
    y1, y2 = sorted((float(page_box[1]), float(page_box[3])))
    page_w, page_h = x2 - x1, y2 - y1
    if page_w <= 0 or page_h <= 0:
        raise InvalidOptionsError("page box is empty")

    def fit(want: float, extent: float) -> tuple[float, float]:
        size = min(want, max(extent - 2 * margin, extent * 0.8))
        return size, min(margin, (extent - size) / 2)

    w, mx = fit(want_w, page_w)
    h, my = fit(want_h, page_h)
    right = x2 - mx
    if _kind(kind) == "agency":
        bottom = y1 + my
        return (right - w, bottom, right, bottom + h)
    top = y2 - my
    return (right - w, top - h, right, top)
