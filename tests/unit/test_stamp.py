"""Visible signature stamps (signing.stamp): text extraction, golden renderings,
font embedding, layout, default boxes, and signature validity with poppler.

Regenerate the golden PNGs with ``DOCGATE_UPDATE_GOLDEN=1`` (then look at them).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import math
import os
import subprocess
import unicodedata
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageStat
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.signers.pdf_signer import PdfSigner

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
from tests.fixtures.tools import require_tool

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
UPDATE_GOLDEN = os.environ.get("DOCGATE_UPDATE_GOLDEN", "") == "1"
CORPUS_PDF = Path("/work/shared/corpus/001-minimal-document.pdf")
LIBERATION_SERIF = Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf")

SIGNING_TIME = dt.datetime(2026, 11, 29, 3, 59, 4, tzinfo=dt.UTC)
TIME_TEXT = "2026-11-29T10:59:04+07:00"
PROVINCE = "Ủy ban nhân dân tỉnh Bắc Ninh"
DEPARTMENT = "Sở Thông tin và Truyền thông"
A4 = (0.0, 0.0, 595.28, 841.89)
LETTER = (0.0, 0.0, 612.0, 792.0)
GOLDEN_TOLERANCE = 2.5  # mean absolute difference per channel, 0..255


# -- helpers ------------------------------------------------------------------


def blank_pdf(media_box: tuple[float, ...] = A4, rotate: int | None = None) -> bytes:
    """A one-page PDF with an empty page, written by hand (deterministic bytes)."""
    box = " ".join(f"{v:g}" for v in media_box)
    rot = f" /Rotate {rotate}" if rotate is not None else ""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [{box}]{rot} /Resources << >> /Contents 4 0 R >>",
        "<< /Length 0 >>\nstream\n\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("ascii")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("ascii")
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode("ascii")
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode("ascii")
    return bytes(out)


@functools.lru_cache(maxsize=1)
def throwaway_signer() -> signers.SimpleSigner:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DocGate stamp test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    der_key = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
        cert_registry=None,
    )


def sign_pdf(
    pdf: bytes,
    content: StampContent,
    box: tuple[float, float, float, float],
    field: str = "Sig1",
    font_path: str | None = None,
) -> bytes:
    meta = signers.PdfSignatureMetadata(
        field_name=field, subfilter=SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    pdf_signer = PdfSigner(
        meta,
        signer=throwaway_signer(),
        stamp_style=build_stamp_style(content, font_path=font_path),
        new_field_spec=SigFieldSpec(field, on_page=0, box=box),
    )
    out = io.BytesIO()
    pdf_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), output=out)
    return out.getvalue()


def page_box(pdf: bytes) -> tuple[float, float, float, float]:
    page = PdfFileReader(io.BytesIO(pdf)).root["/Pages"]["/Kids"][0].get_object()
    box = page.get("/CropBox", page["/MediaBox"])
    return tuple(float(v) for v in box)  # type: ignore[return-value]


def run_tool(name: str, *args: str | Path) -> str:
    exe = require_tool(name)
    done = subprocess.run([exe, *map(str, args)], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode("utf-8")


def render_box(tmp_path: Path, pdf: bytes, box, page_height: float, margin: int = 4) -> Image.Image:
    """Render the page at 72 dpi, cropped to ``box`` (PDF points) plus ``margin``."""
    path = tmp_path / "render.pdf"
    path.write_bytes(pdf)
    x = math.floor(box[0]) - margin
    y = math.floor(page_height - box[3]) - margin
    w = math.ceil(box[2] - box[0]) + 2 * margin
    h = math.ceil(box[3] - box[1]) + 2 * margin
    run_tool(
        "pdftoppm", "-r", "72", "-png", "-singlefile", "-f", "1", "-l", "1",
        "-x", str(x), "-y", str(y), "-W", str(w), "-H", str(h), path, tmp_path / "render",
    )  # fmt: skip
    with Image.open(tmp_path / "render.png") as img:
        return img.convert("RGB")


def dark_bbox(img: Image.Image, threshold: int = 128) -> tuple[int, int, int, int] | None:
    """Bounding box of the pixels darker than ``threshold`` in every channel."""
    mask = img.convert("L").point(lambda v: 255 if v < threshold else 0)
    return mask.getbbox()


def assert_matches_golden(img: Image.Image, name: str) -> None:
    golden = GOLDEN_DIR / name
    if UPDATE_GOLDEN:
        GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
        img.save(golden, optimize=True)
    assert golden.exists(), f"missing {golden}; run with DOCGATE_UPDATE_GOLDEN=1"
    with Image.open(golden) as ref:
        ref = ref.convert("RGB")
    assert ref.size == img.size, f"{name}: size {img.size} != golden {ref.size}"
    diff = ImageStat.Stat(ImageChops.difference(ref, img)).mean
    assert max(diff) < GOLDEN_TOLERANCE, f"{name}: mean abs diff {diff} vs golden"


def agency_content(seal: bool = True) -> StampContent:
    return StampContent(
        kind="agency",
        agency_name=PROVINCE,
        signing_time=SIGNING_TIME,
        seal_png=make_dev_seal(PROVINCE) if seal else None,
    )


def copy_content(form: str = "SAO LỤC", agency: str = DEPARTMENT) -> StampContent:
    return StampContent("copy", agency, SIGNING_TIME, copy_form=form)


def appendix_content() -> StampContent:
    return StampContent("appendix", PROVINCE, SIGNING_TIME, number="Số: 07/UBND-VP")


def widget_font(pdf: bytes):
    """The /F1 font of the (last) signature widget's normal appearance."""
    reader = PdfFileReader(io.BytesIO(pdf))
    fields = reader.root["/AcroForm"]["/Fields"]
    widget = fields[len(fields) - 1].get_object()
    return widget["/AP"]["/N"]["/Resources"]["/Font"]["/F1"]


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


def test_rendering_is_cheap_after_first_call() -> None:
    import time

    content = agency_content()
    build_stamp_style(content)  # warm caches (font, seal)
    pdf = blank_pdf()
    writers = [IncrementalPdfFileWriter(io.BytesIO(pdf)) for _ in range(20)]
    start = time.perf_counter()
    for writer in writers:
        build_stamp_style(content).create_stamp(writer, BoxConstraints(260, 100), {}).register()
    per_call = (time.perf_counter() - start) / len(writers)
    assert per_call < 0.025, f"{per_call * 1000:.1f} ms per stamp"


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
    if not LIBERATION_SERIF.exists():
        pytest.skip(f"{LIBERATION_SERIF} is not installed")
    signed = sign_pdf(
        blank_pdf(), copy_content("TRÍCH SAO"), default_box("copy", A4),
        font_path=str(LIBERATION_SERIF),
    )  # fmt: skip
    (tmp_path / "s.pdf").write_bytes(signed)
    assert "LiberationSerif" in run_tool("pdffonts", tmp_path / "s.pdf")
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
        pytest.skip(f"{CORPUS_PDF} is not present")
    pdf = CORPUS_PDF.read_bytes()
    signed = sign_pdf(pdf, agency_content(), default_box("agency", page_box(pdf)))
    signed = sign_pdf(signed, appendix_content(), default_box("appendix", page_box(pdf)), "Sig2")
    (tmp_path / "s.pdf").write_bytes(signed)
    assert _valid_signatures(tmp_path / "s.pdf") == 2
    text = run_tool("pdftotext", tmp_path / "s.pdf", "-")
    assert PROVINCE in text and "Số: 07/UBND-VP" in text and TIME_TEXT in text
