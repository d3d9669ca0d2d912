"""signing.speedups gives the same answers as the pyHanko and asn1crypto code it
replaces, on generated input."""

from __future__ import annotations

import io

import pytest
from asn1crypto import x509 as asn1_x509
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils.misc import PdfStreamError

from signing import speedups

speedups.install()

_HEX = "0123456789abcdefABCDEF"
_WS = " \n\r\t\f\x00"


def _original(data: bytes):
    stream = io.BytesIO(data)
    try:
        return speedups.ORIGINAL_HEX_READER(stream), stream.tell()
    except PdfStreamError as exc:
        return type(exc), None


def _fast(data: bytes):
    stream = io.BytesIO(data)
    try:
        return speedups.read_hex_string_from_stream(stream), stream.tell()
    except PdfStreamError as exc:
        return type(exc), None


@settings(max_examples=300, deadline=None)
@given(
    body=st.text(alphabet=_HEX + _WS, max_size=200),
    tail=st.binary(max_size=20),
)
def test_hex_strings_read_the_same(body: str, tail: bytes) -> None:
    data = b"<" + body.encode("latin-1") + b">" + tail
    assert _fast(data) == _original(data)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=60), tail=st.binary(max_size=10))
def test_arbitrary_bytes_inside_a_hex_string_read_the_same(body: bytes, tail: bytes) -> None:
    data = b"<" + body.replace(b">", b"") + b">" + tail
    assert _fast(data) == _original(data)


def test_a_long_hex_string_across_chunks() -> None:
    payload = bytes(range(256)) * 500  # 128 000 hex digits: several 64 KiB reads
    data = b"<" + payload.hex().encode() + b"\n>rest"
    value, position = _fast(data)
    assert bytes(value) == payload and position == len(data) - 4


def test_unterminated_hex_string_is_an_error() -> None:
    with pytest.raises(PdfStreamError):
        speedups.read_hex_string_from_stream(io.BytesIO(b"<48656c"))


_VALUES = st.text(alphabet="aAbB Ểể  -", min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(a=st.tuples(_VALUES, _VALUES), b=st.tuples(_VALUES, _VALUES))
def test_name_equality_matches_rfc5280_comparison(a, b) -> None:
    first = asn1_x509.Name.build({"common_name": a[0], "organization_name": a[1]})
    second = asn1_x509.Name.build({"common_name": b[0], "organization_name": b[1]})
    expected = first.chosen == second.chosen  # asn1crypto's own RFC 5280 comparison
    assert (first == second) is expected
    assert (first != second) is not expected
    assert (first.hashable == second.hashable) is expected


def test_name_equality_ignores_the_tag_of_its_context() -> None:
    name = asn1_x509.Name.build({"common_name": "Sở Nội vụ", "country_name": "VN"})
    general = asn1_x509.GeneralName(name="directory_name", value=name)
    reparsed = asn1_x509.GeneralName.load(general.dump()).chosen  # [4] EXPLICIT Name
    assert reparsed.dump() != name.dump()
    assert reparsed == name and reparsed.hashable == name.hashable
    other = asn1_x509.Name.build({"common_name": "Sở Tư pháp", "country_name": "VN"})
    assert reparsed != other
