"""The stamp font: a static, subsetted TrueType program built once per process.

The default face is Noto Serif (PyPI ``fontpkg-noto-serif``), shipped as a variable
font; it is subsetted to the characters Vietnamese administrative text needs and
pinned to the Regular instance (wght=400, wdth=100). Any other TrueType file can be
given instead (e.g. Liberation Serif); a static font is only subsetted.

Everything expensive (subsetting, instancing, compressing the font program, the
/W widths and the /ToUnicode CMap) happens once per font path and is cached for
the life of the process; per signature only cheap lookups remain.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import threading
import unicodedata
import zlib
from dataclasses import dataclass, field

from ..errors import ConfigurationError

__all__ = [
    "StampFont",
    "default_font_path",
    "load_font",
    "covered_codepoints",
    "REPLACEMENT_CHAR",
]

REPLACEMENT_CHAR = "?"
_BUILD_LOCK = threading.Lock()  # concurrent first calls build the font only once

_VIETNAMESE_EXT_B = (0x01A0, 0x01A1, 0x01AF, 0x01B0)  # Ơ ơ Ư ư
_PUNCTUATION = (
    list(range(0x2010, 0x2028))  # dashes, quotes, bullets, ellipsis
    + [0x2030, 0x2032, 0x2033, 0x2039, 0x203A, 0x20AB, 0x20AC, 0x2116, 0x2122, 0x2212]
)


def covered_codepoints() -> frozenset[int]:
    """The Unicode code points the subset keeps (when the font has them)."""
    cps: set[int] = set(range(0x20, 0x7F))  # ASCII
    cps.update(range(0xA0, 0x100))  # Latin-1
    cps.update(range(0x100, 0x180))  # Latin Extended-A (Ă ă Đ đ Ĩ ĩ Ũ ũ ...)
    cps.update(_VIETNAMESE_EXT_B)
    cps.update(range(0x300, 0x370))  # combining diacritical marks
    cps.update(range(0x1EA0, 0x1EFA))  # Latin Extended Additional (Vietnamese)
    cps.update(_PUNCTUATION)
    return frozenset(cps)


def default_font_path() -> str:
    """Path of Noto Serif's variable TrueType file from ``fontpkg-noto-serif``."""
    try:
        import fontpkg_noto_serif
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise ConfigurationError("fontpkg-noto-serif is not installed") from exc
    return str(fontpkg_noto_serif.ROOT / "files" / "NotoSerif[wdth,wght].ttf")


@dataclass(frozen=True, eq=False)
class StampFont:
    """An embeddable, static subset of a TrueType font and its metrics.

    Glyph ids are those of the subset; they double as CIDs (Identity-H encoding,
    CIDToGIDMap /Identity). Metrics are in 1000-unit text space.
    """

    source_path: str
    base_font: str  # PostScript name with subset tag, e.g. "ABCDEF+NotoSerif-Regular"
    program: bytes = field(repr=False)  # uncompressed TrueType subset (also used by Pillow)
    program_flate: bytes = field(repr=False)  # zlib-compressed program for /FontFile2
    to_unicode_flate: bytes = field(repr=False)  # zlib-compressed /ToUnicode CMap
    cmap: dict[int, int] = field(repr=False)  # code point -> glyph id
    widths: tuple[int, ...] = field(repr=False)  # glyph id -> advance (1000 units)
    ascent: int
    descent: int  # negative
    cap_height: int
    bbox: tuple[int, int, int, int]
    italic_angle: float
    ink_top: int  # highest glyph extent among mapped glyphs (stacked diacritics)
    ink_bottom: int  # lowest glyph extent (negative)
    replacement_gid: int

    # -- text handling -------------------------------------------------------

    def glyph_ids(self, text: str) -> list[int]:
        """Glyph ids for ``text`` (NFC); characters the font lacks fall back to their
        canonical decomposition if fully covered, else to a visible ``?``."""
        cmap = self.cmap
        gids: list[int] = []
        for ch in unicodedata.normalize("NFC", text):
            gid = cmap.get(ord(ch))
            if gid is not None:
                gids.append(gid)
                continue
            parts = unicodedata.normalize("NFD", ch)
            if len(parts) > 1 and all(ord(p) in cmap for p in parts):
                gids.extend(cmap[ord(p)] for p in parts)
            else:
                gids.append(self.replacement_gid)
        return gids

    def missing_chars(self, text: str) -> set[str]:
        """Characters of ``text`` that will be drawn as ``?``."""
        out = set()
        for ch in unicodedata.normalize("NFC", text):
            if ord(ch) in self.cmap:
                continue
            parts = unicodedata.normalize("NFD", ch)
            if not (len(parts) > 1 and all(ord(p) in self.cmap for p in parts)):
                out.add(ch)
        return out

    def width_of_gids(self, gids: list[int], size: float) -> float:
        widths = self.widths
        return sum(widths[g] for g in gids) * size / 1000.0

    def text_width(self, text: str, size: float) -> float:
        """Advance width of ``text`` in points at font ``size`` (no kerning)."""
        return self.width_of_gids(self.glyph_ids(text), size)


def _pdf_name_safe(name: str) -> str:
    safe = "".join(ch for ch in name if ch.isascii() and (ch.isalnum() or ch in "-_."))
    return safe or "StampFont"


def _subset_tag(gids_to_cps: dict[int, int], path_digest: bytes) -> str:
    h = hashlib.sha256(path_digest + repr(sorted(gids_to_cps.items())).encode()).digest()
    return "".join(chr(ord("A") + b % 26) for b in h[:6])


def _to_unicode_cmap(gid_to_cp: dict[int, int]) -> bytes:
    lines = [
        "/CIDInit /ProcSet findresource begin",
        "12 dict begin",
        "begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def",
        "/CMapType 2 def",
        "1 begincodespacerange",
        "<0000> <FFFF>",
        "endcodespacerange",
    ]
    items = sorted(gid_to_cp.items())
    for start in range(0, len(items), 100):
        chunk = items[start : start + 100]
        lines.append(f"{len(chunk)} beginbfchar")
        for gid, cp in chunk:
            utf16 = chr(cp).encode("utf-16-be").hex().upper()
            lines.append(f"<{gid:04X}> <{utf16}>")
        lines.append("endbfchar")
    lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    return ("\n".join(lines) + "\n").encode("ascii")


def _build_program(path: str) -> bytes:
    """Subset (then, for a variable font, instantiate) and return TrueType bytes."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    try:
        font = TTFont(path, lazy=False)
    except Exception as exc:  # noqa: BLE001 - fontTools raises many types
        raise ConfigurationError(f"cannot read stamp font {path!r}: {exc}") from exc
    if "glyf" not in font:
        raise ConfigurationError(f"stamp font {path!r} is not a TrueType (glyf) font")
    if font["OS/2"].fsType & 0x0002:
        raise ConfigurationError(f"stamp font {path!r} does not permit embedding")

    options = subset.Options()
    options.layout_features = []  # we lay out text ourselves (no shaping)
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "JSTF", "MATH", "STAT", "DSIG", "FFTM"]
    options.hinting = False
    options.notdef_outline = True
    options.recalc_bounds = True
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6]
    options.name_languages = [0x409]
    subsetter = subset.Subsetter(options=options)
    subsetter.populate(unicodes=covered_codepoints())
    subsetter.subset(font)

    if "fvar" in font:  # variable: pin every axis -> static Regular instance
        from fontTools.varLib import instancer

        wanted = {"wght": 400.0, "wdth": 100.0}
        location = {
            a.axisTag: min(max(wanted.get(a.axisTag, a.defaultValue), a.minValue), a.maxValue)
            for a in font["fvar"].axes
        }
        font = instancer.instantiateVariableFont(font, location, inplace=False)
    font.recalcTimestamp = False  # deterministic bytes (head.modified kept)
    buf = io.BytesIO()
    font.save(buf)
    return buf.getvalue()


@functools.lru_cache(maxsize=8)
def _load_font_cached(path: str) -> StampFont:
    from fontTools.ttLib import TTFont

    program = _build_program(path)
    font = TTFont(io.BytesIO(program))
    upem = font["head"].unitsPerEm
    scale = 1000.0 / upem
    order = font.getGlyphOrder()
    hmtx = font["hmtx"]
    widths = tuple(round(hmtx[name][0] * scale) for name in order)
    gid_of = {name: i for i, name in enumerate(order)}
    cmap = {cp: gid_of[name] for cp, name in font.getBestCmap().items()}
    if ord(REPLACEMENT_CHAR) not in cmap:
        raise ConfigurationError(f"stamp font {path!r} has no '?' glyph")

    gid_to_cp: dict[int, int] = {}
    for cp, gid in sorted(cmap.items()):
        gid_to_cp.setdefault(gid, cp)  # shared glyphs: lowest code point wins

    glyf = font["glyf"]
    tops, bottoms = [], []
    for gid in gid_to_cp:
        g = glyf[order[gid]]
        if getattr(g, "numberOfContours", 0):
            tops.append(g.yMax)
            bottoms.append(g.yMin)
    os2, head, hhea = font["OS/2"], font["head"], font["hhea"]
    ascent = getattr(os2, "sTypoAscender", 0) or hhea.ascent
    descent = getattr(os2, "sTypoDescender", 0) or hhea.descent
    cap_height = getattr(os2, "sCapHeight", 0) or round(ascent * 0.7)
    ps_name = _pdf_name_safe(font["name"].getDebugName(6) or os.path.basename(path))
    digest = hashlib.sha256(program).digest()
    return StampFont(
        source_path=path,
        base_font=f"{_subset_tag(gid_to_cp, digest)}+{ps_name}",
        program=program,
        program_flate=zlib.compress(program, 9),
        to_unicode_flate=zlib.compress(_to_unicode_cmap(gid_to_cp), 9),
        cmap=cmap,
        widths=widths,
        ascent=round(ascent * scale),
        descent=round(descent * scale),
        cap_height=round(cap_height * scale),
        bbox=tuple(round(v * scale) for v in (head.xMin, head.yMin, head.xMax, head.yMax)),
        italic_angle=float(font["post"].italicAngle),
        ink_top=round(max(tops, default=ascent) * scale),
        ink_bottom=round(min(bottoms, default=descent) * scale),
        replacement_gid=cmap[ord(REPLACEMENT_CHAR)],
    )


def load_font(font_path: str | os.PathLike[str] | None = None) -> StampFont:
    """The (cached) stamp font for ``font_path`` (default: Noto Serif Regular).

    The same path always returns the same :class:`StampFont` object within a
    process, so the font program is subsetted and compressed only once (about a
    second for Noto Serif; call this at start-up to keep it off the first request).
    """
    path = os.path.realpath(os.fspath(font_path) if font_path else default_font_path())
    with _BUILD_LOCK:
        return _load_font_cached(path)
