"""Opening PDFs to sign (bad input becomes a clear error) and signing options."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signing.document import open_pdf, page_box
from signing.errors import (
    DamagedPdfError,
    EncryptedPdfError,
    InvalidOptionsError,
    NotAPdfError,
    SigningError,
)
from signing.options import Appearance, CopyForm, Level, SignOptions, parse_box
from tests.fixtures.pdfs import CORPUS, ENCRYPTED, simple_pdf
from tests.fixtures.tools import missing_component


def test_open_a_valid_pdf():
    opened = open_pdf(simple_pdf(3))
    assert opened.page_count == 3
    assert opened.resolve_page(1) == 0 and opened.resolve_page(-1) == 2
    assert opened.next_field_name() == "Sig1"
    assert page_box(opened, 0) == (0.0, 0.0, 595.0, 842.0)


@pytest.mark.parametrize("page", [0 + 4, -4])
def test_page_out_of_range(page):
    with pytest.raises(InvalidOptionsError, match="does not exist"):
        open_pdf(simple_pdf(3)).resolve_page(page)


@pytest.mark.parametrize("data", [b"", b"hello", b"GIF89a" + b"\0" * 100, b"\xff" * 2000])
def test_not_a_pdf(data):
    with pytest.raises(NotAPdfError):
        open_pdf(data)


def test_truncated_pdf_is_damaged():
    pdf = simple_pdf()
    with pytest.raises(DamagedPdfError):
        open_pdf(pdf[: len(pdf) // 3])


def test_encrypted_pdf():
    path = CORPUS / ENCRYPTED
    if not path.exists():
        missing_component(f"the shared corpus is not at {CORPUS}")
    with pytest.raises(EncryptedPdfError):
        open_pdf(path.read_bytes())


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_open_or_raise_a_signing_error(data):
    try:
        open_pdf(b"%PDF-1.4\n" + data)
    except SigningError as exc:
        assert exc.code in {"not_a_pdf", "damaged_pdf", "encrypted_pdf"}
        assert exc.detail


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2000), st.integers(1, 255))
def test_flipped_byte_opens_or_raises_a_signing_error(pos, xor):
    data = bytearray(simple_pdf(2))
    data[pos % len(data)] ^= xor
    try:
        open_pdf(bytes(data))
    except SigningError as exc:
        assert exc.code in {"not_a_pdf", "damaged_pdf"}


def test_options_parse_and_validate():
    assert Level.parse("b-lta") is Level.B_LTA
    assert Appearance.parse("COPY") is Appearance.COPY
    assert CopyForm.parse("sao lục") is CopyForm.SAO_LUC
    assert parse_box("300, 50, 100, 150") == (100.0, 50.0, 300.0, 150.0)
    opts = SignOptions(agency="000.00.00.H41", appearance=Appearance.COPY)
    assert opts.copy_form is CopyForm.SAO_Y
    for bad in ("1,2,3", "a,b,c,d", "0,0,5,5", "nan,0,100,100", "0,0,1e9,10"):
        with pytest.raises(InvalidOptionsError):
            parse_box(bad)
    with pytest.raises(InvalidOptionsError):
        SignOptions(agency="000.00.00.H41", page=0)
    with pytest.raises(InvalidOptionsError):
        SignOptions(agency="000.00.00.H41", reason="line\nbreak")
    with pytest.raises(InvalidOptionsError):
        SignOptions(agency="000.00.00.H41", number="x" * 201)
