"""Visible signature stamps (signing.stamp) in signed PDFs, checked with poppler: text
extraction, golden renderings, font embedding, page boxes and signature validity.

Regenerate the golden PNGs (tests/golden/) with ``DOCGATE_UPDATE_GOLDEN=1`` (then look
at them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from signing.stamp import StampContent, default_box, load_font
from signing.stamp.font import default_font_path
from tests.fixtures.pdfs import CORPUS
from tests.fixtures.stamps import (
    A4,
    DEPARTMENT,
    LETTER,
    PROVINCE,
    SIGNING_TIME,
    TIME_TEXT,
    agency_content,
    appendix_content,
    assert_matches_golden,
    blank_pdf,
    copy_content,
    dark_bbox,
    page_box,
    render_box,
    run_tool,
    sign_pdf,
    widget_font,
)
from tests.fixtures.tools import missing_component

CORPUS_PDF = CORPUS / "001-minimal-document.pdf"


# -- signed PDFs with poppler ------------------------------------------------


@pytest.mark.poppler
@pytest.mark.parametrize(
    ("make_content", "expected"),
    [
        (agency_content, [PROVINCE, TIME_TEXT]),
        (lambda: copy_content("SAO LỤC"), ["SAO LỤC", DEPARTMENT, TIME_TEXT]),
        (lambda: copy_content("TRÍCH SAO", PROVINCE), ["TRÍCH SAO", PROVINCE, TIME_TEXT]),
        (appendix_content, ["Số: 07/UBND-VP", TIME_TEXT]),
    ],
    ids=["agency", "sao-luc", "trich-sao", "appendix"],
)
def test_pdftotext_extracts_exact_text(tmp_path, make_content, expected) -> None:
    content = make_content()
    signed = sign_pdf(blank_pdf(), content, default_box(content.kind, A4))
    (tmp_path / "s.pdf").write_bytes(signed)
    lines = [line.strip() for line in run_tool("pdftotext", tmp_path / "s.pdf", "-").splitlines()]
    for line in expected:
        assert line in lines


@pytest.mark.poppler
def test_missing_glyph_is_drawn_as_question_mark(tmp_path) -> None:
    content = StampContent("copy", "Ủy ban 中文", SIGNING_TIME, copy_form="SAO Y")
    (tmp_path / "s.pdf").write_bytes(sign_pdf(blank_pdf(), content, default_box("copy", A4)))
    assert "Ủy ban ??" in run_tool("pdftotext", tmp_path / "s.pdf", "-")


@pytest.mark.poppler
@pytest.mark.parametrize(
    ("name", "make_content"),
    [
        ("stamp_agency.png", agency_content),
        ("stamp_copy.png", lambda: copy_content("SAO LỤC")),
        ("stamp_appendix.png", appendix_content),
    ],
    ids=["agency", "copy", "appendix"],
)
def test_golden_rendering(tmp_path, name, make_content) -> None:
    content = make_content()
    box = default_box(content.kind, A4)
    img = render_box(tmp_path, sign_pdf(blank_pdf(), content, box), box, A4[3])
    # nothing touches the edge of the box (4 px margin + 1 px inside): no clipping
    inner = dark_bbox(img, threshold=200)
    assert inner is not None
    assert inner[0] >= 5 and inner[1] >= 5 and inner[2] <= img.width - 5
    assert inner[3] <= img.height - 5
    if content.kind == "agency":  # red seal on the left
        r, g, b = img.getpixel((4 + 50, 4 + 50))  # centre of the ~92 pt seal: the star
        assert r > 150 and g < 100 and b < 100
    assert_matches_golden(img, name)


@pytest.mark.poppler
def test_letter_spacing_is_normal(tmp_path) -> None:
    """The rendered ink of the time line is as wide as its advance widths say
    (pyHanko's own OpenType stamps render it about twice as wide)."""
    content = StampContent("appendix", "", SIGNING_TIME, number="A")
    box = default_box("appendix", A4)
    signed = sign_pdf(blank_pdf(), content, box)
    img = render_box(tmp_path, signed, box, A4[3], margin=0)
    ink = dark_bbox(img)
    assert ink is not None
    expected = load_font().text_width(TIME_TEXT, 10)  # 10 pt fits: no shrinking
    assert abs((ink[2] - ink[0]) - expected) < 4, (ink, expected)


@pytest.mark.poppler
def test_font_is_embedded_once_built(tmp_path) -> None:
    signed = sign_pdf(blank_pdf(), copy_content(), default_box("copy", A4))
    font = widget_font(signed)
    assert font["/Subtype"] == "/Type0" and font["/Encoding"] == "/Identity-H"
    assert "/ToUnicode" in font
    cid_font = font["/DescendantFonts"][0].get_object()
    assert cid_font["/Subtype"] == "/CIDFontType2" and cid_font["/CIDToGIDMap"] == "/Identity"
    font_file = cid_font["/FontDescriptor"]["/FontFile2"]
    assert font_file.encoded_data == load_font().program_flate  # the cached program
    (tmp_path / "s.pdf").write_bytes(signed)
    rows = [r.split() for r in run_tool("pdffonts", tmp_path / "s.pdf").splitlines()[2:]]
    assert rows and all("NotoSerif" in r[0] and r[-5] == "yes" for r in rows), rows


@pytest.mark.poppler
def test_font_path_can_be_overridden(tmp_path) -> None:
    # another face from the same package (always installed): Noto Serif Italic
    italic = Path(default_font_path()).with_name("NotoSerif-Italic[wdth,wght].ttf")
    signed = sign_pdf(
        blank_pdf(), copy_content("TRÍCH SAO"), default_box("copy", A4),
        font_path=str(italic),
    )  # fmt: skip
    (tmp_path / "s.pdf").write_bytes(signed)
    fonts = run_tool("pdffonts", tmp_path / "s.pdf")
    assert "NotoSerif-Italic" in fonts, fonts
    text = run_tool("pdftotext", tmp_path / "s.pdf", "-")
    assert "TRÍCH SAO" in text and DEPARTMENT in text and TIME_TEXT in text


def _valid_signatures(path: Path) -> int:
    out = run_tool("pdfsig", "-nocert", path)
    assert "Signature is Invalid" not in out, out
    return out.count("Signature Validation: Signature is Valid.")


@pytest.mark.poppler
def test_signature_stays_valid_and_two_signatures(tmp_path) -> None:
    once = sign_pdf(blank_pdf(), agency_content(), default_box("agency", A4))
    (tmp_path / "once.pdf").write_bytes(once)
    assert _valid_signatures(tmp_path / "once.pdf") == 1
    twice = sign_pdf(once, copy_content("SAO Y"), default_box("copy", A4), field="Sig2")
    (tmp_path / "twice.pdf").write_bytes(twice)
    assert _valid_signatures(tmp_path / "twice.pdf") == 2
    text = run_tool("pdftotext", tmp_path / "twice.pdf", "-")
    assert PROVINCE in text and "SAO Y" in text and DEPARTMENT in text


@pytest.mark.poppler
@pytest.mark.parametrize(
    "media_box", [LETTER, (100, 200, 695.28, 1041.89)], ids=["letter", "offset"]
)
def test_stamp_on_other_page_boxes(tmp_path, media_box) -> None:
    pdf = blank_pdf(media_box)
    signed = sign_pdf(pdf, agency_content(), default_box("agency", page_box(pdf)))
    (tmp_path / "s.pdf").write_bytes(signed)
    assert _valid_signatures(tmp_path / "s.pdf") == 1
    assert PROVINCE in run_tool("pdftotext", tmp_path / "s.pdf", "-")


@pytest.mark.poppler
def test_real_document_from_corpus(tmp_path) -> None:
    if not CORPUS_PDF.exists():
        missing_component(f"{CORPUS_PDF} is not present (the shared corpus)")
    pdf = CORPUS_PDF.read_bytes()
    signed = sign_pdf(pdf, agency_content(), default_box("agency", page_box(pdf)))
    signed = sign_pdf(signed, appendix_content(), default_box("appendix", page_box(pdf)), "Sig2")
    (tmp_path / "s.pdf").write_bytes(signed)
    assert _valid_signatures(tmp_path / "s.pdf") == 2
    text = run_tool("pdftotext", tmp_path / "s.pdf", "-")
    assert PROVINCE in text and "Số: 07/UBND-VP" in text and TIME_TEXT in text
