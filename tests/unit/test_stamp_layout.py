"""Visible signature stamps (signing.stamp) without poppler: text lines, font,
layout, default boxes and the development seal."""

from __future__ import annotations

import datetime as dt
import io
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import BoxConstraints

from signing.errors import ConfigurationError, InvalidOptionsError
from signing.options import Appearance, CopyForm
from signing.stamp import (
    StampContent,
    StampLayoutError,
    build_stamp_style,
    default_box,
    load_font,
    make_dev_seal,
    stamp_text_lines,
)
from signing.stamp.layout import fit_text, wrap_line
from tests.fixtures.stamps import (
    A4,
    DEPARTMENT,
    LETTER,
    PROVINCE,
    SIGNING_TIME,
    TIME_TEXT,
    agency_content,
    appendix_content,
    blank_pdf,
    copy_content,
)

# -- content and text lines ---------------------------------------------------


def test_text_lines_per_kind() -> None:
    assert stamp_text_lines(agency_content()) == [PROVINCE, TIME_TEXT]
    assert stamp_text_lines(copy_content("TRÍCH SAO")) == ["TRÍCH SAO", DEPARTMENT, TIME_TEXT]
    assert stamp_text_lines(appendix_content()) == ["Số: 07/UBND-VP", TIME_TEXT]


def test_content_accepts_option_enums_and_normalises() -> None:
    nfd_name = unicodedata.normalize("NFD", "Sở  Thông tin\nvà Truyền thông")
    c = StampContent(Appearance.COPY, nfd_name, SIGNING_TIME, copy_form=CopyForm.SAO_Y)
    assert c.kind == "copy" and c.copy_form == "SAO Y"
    assert c.agency_name == DEPARTMENT  # NFC, whitespace collapsed
    assert StampContent("copy", DEPARTMENT, SIGNING_TIME).copy_form == "SAO Y"


def test_signing_time_shown_in_vietnam_time() -> None:
    hanoi = dt.timezone(dt.timedelta(hours=7))
    c = StampContent("agency", PROVINCE, SIGNING_TIME.astimezone(hanoi).replace(microsecond=5))
    assert stamp_text_lines(c)[-1] == TIME_TEXT
    with pytest.raises(InvalidOptionsError):
        StampContent("agency", PROVINCE, dt.datetime(2026, 11, 29, 10, 59, 4))
    with pytest.raises(InvalidOptionsError):
        StampContent("none", PROVINCE, SIGNING_TIME)


# -- font ---------------------------------------------------------------------


def test_font_built_once_per_process() -> None:
    first = load_font()
    assert load_font() is first
    assert load_font(None).program_flate is first.program_flate
    assert "NotoSerif" in first.base_font
    for ch in "ĂăĐđĨĩŨũƠơƯưẠỹ–—‘’“”…ÀÉỔ":
        assert ord(ch) in first.cmap, ch


def test_font_is_a_static_instance() -> None:
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(load_font().program))
    assert "fvar" not in font and "gvar" not in font
    assert font["OS/2"].usWeightClass == 400


def test_unusable_font_path_is_a_configuration_error(tmp_path) -> None:
    with pytest.raises(ConfigurationError):
        build_stamp_style(agency_content(seal=False), font_path=str(tmp_path / "missing.ttf"))
    (tmp_path / "junk.ttf").write_bytes(b"not a font")
    with pytest.raises(ConfigurationError):
        load_font(tmp_path / "junk.ttf")


def test_missing_glyphs_become_question_marks() -> None:
    font = load_font()
    gids = font.glyph_ids("A中∑")
    assert gids[1] == gids[2] == font.replacement_gid == font.cmap[ord("?")]
    assert font.missing_chars("Bắc Ninh 中") == {"中"}
    # decomposed input lays out exactly like precomposed input
    assert font.glyph_ids(unicodedata.normalize("NFD", PROVINCE)) == font.glyph_ids(PROVINCE)


# -- layout -------------------------------------------------------------------

_VI_WORDS = st.sampled_from(
    "Ủy ban nhân dân tỉnh Bắc Ninh Sở Thông tin và Truyền thông huyện Đông Hưng "
    "Quảng Nghĩa SAO LỤC TRÍCH Số: 07/UBND-VP Văn phòng Chính phủ 中文 "
    "Bộ Tài nguyên và Môi trường Thừa Thiên Huế".split()
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_VI_WORDS, min_size=1, max_size=25), st.floats(40, 260), st.floats(6, 12))
def test_wrapping_keeps_lines_inside_width(words: list[str], width: float, size: float) -> None:
    font = load_font()
    text = " ".join(words)
    lines = wrap_line(font, text, width, size)
    assert all(font.text_width(line, size) <= width + 1e-6 for line in lines)
    assert "".join("".join(lines).split()) == "".join(text.split())  # nothing lost


def test_long_text_shrinks_but_stays_inside() -> None:
    font = load_font()
    long_name = "Sở Thông tin và Truyền thông tỉnh Bà Rịa - Vũng Tàu, Văn phòng Ủy ban nhân dân"
    block = fit_text(font, ["TRÍCH SAO", long_name, TIME_TEXT], 192, 40)
    assert 6 <= block.size < 10
    assert block.width <= 192 and block.height <= 40
    assert all(font.text_width(line, block.size) <= 192 for line in block.lines)


def test_text_that_cannot_fit_is_an_error_not_clipped() -> None:
    with pytest.raises(StampLayoutError):
        fit_text(load_font(), ["Ủy ban nhân dân " * 20, TIME_TEXT], 192, 40)


def test_overlong_word_is_broken() -> None:
    font = load_font()
    lines = wrap_line(font, "Ủyban" * 20, 60, 10)
    assert len(lines) > 1 and all(font.text_width(line, 10) <= 60 for line in lines)


# -- default boxes ------------------------------------------------------------


def _inside(box, page) -> bool:
    x1, x2 = sorted((page[0], page[2]))
    y1, y2 = sorted((page[1], page[3]))
    return x1 <= box[0] < box[2] <= x2 and y1 <= box[1] < box[3] <= y2


@pytest.mark.parametrize(
    "page",
    [A4, LETTER, (0, 0, 841.89, 595.28), (100, 200, 695.28, 1041.89), (595.28, 841.89, 0, 0),
     (-300, -400, 295.28, 441.89), (0, 0, 150, 120)],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["agency", "copy", Appearance.APPENDIX])
def test_default_box_inside_page(kind, page) -> None:
    box = default_box(kind, page)
    assert _inside(box, page)
    right, top = max(page[0], page[2]), max(page[1], page[3])
    bottom = min(page[1], page[3])
    if page[2] - page[0] > 400:  # a real page: nominal size and margins
        if kind == "agency":
            assert box[2] - box[0] == pytest.approx(260) and box[3] - box[1] == pytest.approx(100)
            assert right - box[2] == pytest.approx(40) and box[1] - bottom == pytest.approx(40)
        else:
            assert box[2] - box[0] == pytest.approx(200) and box[3] - box[1] == pytest.approx(48)
            assert right - box[2] == pytest.approx(28) and top - box[3] == pytest.approx(28)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(-5000, 5000), st.floats(-5000, 5000), st.floats(20, 5000), st.floats(20, 5000),
    st.sampled_from(["agency", "copy", "appendix"]),
)  # fmt: skip
def test_default_box_inside_any_page(x: float, y: float, w: float, h: float, kind: str) -> None:
    page = (x, y, x + w, y + h)
    assert _inside(default_box(kind, page), page)


# -- seal ---------------------------------------------------------------------


def test_dev_seal_is_deterministic_red_and_round() -> None:
    png = make_dev_seal(PROVINCE)
    assert png == make_dev_seal.__wrapped__(PROVINCE)  # not only the cache
    assert png != make_dev_seal("Ủy ban nhân dân huyện Đông Hưng")
    with Image.open(io.BytesIO(png)) as img:
        assert img.mode == "RGBA" and img.size == (400, 400)
        assert img.getpixel((0, 0))[3] == 0 and img.getpixel((399, 399))[3] == 0  # transparent
        r, g, b, a = img.getpixel((200, 200))  # the star
        assert a == 255 and r > 150 and g < 80 and b < 80


def test_unreadable_seal_is_rejected_before_signing() -> None:
    bad = StampContent("agency", PROVINCE, SIGNING_TIME, seal_png=b"not a png")
    with pytest.raises(InvalidOptionsError):
        build_stamp_style(bad)


def test_rendering_reuses_the_parsed_font_and_decoded_seal() -> None:
    """The costly steps (font parsing and subsetting tables, seal decoding) run once per
    process; every later stamp reuses them. Speed itself is measured in bench/, not here."""
    from signing.stamp import font, pdfobjects

    content = agency_content()
    build_stamp_style(content)  # warm caches (font, seal)
    fonts_before = font._load_font_cached.cache_info()
    seals_before = pdfobjects.prepare_image.cache_info()
    pdf = blank_pdf()
    for _ in range(5):
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        build_stamp_style(content).create_stamp(writer, BoxConstraints(260, 100), {}).register()
    fonts_after = font._load_font_cached.cache_info()
    seals_after = pdfobjects.prepare_image.cache_info()
    assert fonts_after.misses == fonts_before.misses
    assert seals_after.misses == seals_before.misses
    assert seals_after.hits > seals_before.hits
