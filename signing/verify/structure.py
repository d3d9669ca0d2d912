"""Byte-level checks pyHanko leaves to the caller: the /ByteRange shape, that the gap
between the two signed ranges is exactly the /Contents hex string (Signature Wrapping),
and bytes appended after the last %%EOF (Incremental Saving without an xref)."""

from __future__ import annotations

import re

from pyhanko.pdf_utils import generic

__all__ = ["byte_range_problems", "trailing_garbage"]

_HEX_STRING = re.compile(rb"<([0-9A-Fa-f\s]*)>")
_EOF = re.compile(rb"%%EOF")


def byte_range_problems(data: bytes, sig_object: generic.DictionaryObject) -> list[str]:
    """Problems with the signature's /ByteRange and /Contents placement (empty: none)."""
    raw = sig_object.raw_get("/ByteRange") if "/ByteRange" in sig_object else None
    if raw is None:
        return ["the signature has no /ByteRange"]
    br = raw.get_object() if isinstance(raw, generic.IndirectObject) else raw
    if not isinstance(br, generic.ArrayObject) or len(br) != 4:
        return ["/ByteRange must have exactly four numbers"]
    try:
        a, b, c, d = (int(x) for x in br)
    except (TypeError, ValueError):
        return ["/ByteRange holds something other than integers"]
    if any(isinstance(x, generic.FloatObject) for x in br):
        return ["/ByteRange holds non-integer numbers"]
    problems = []
    if a != 0:
        problems.append("/ByteRange does not start at the beginning of the file")
    if b <= 0 or d < 0 or c <= b:
        problems.append("/ByteRange ranges are empty, overlapping or out of order")
    if c + d > len(data):
        problems.append("/ByteRange reaches past the end of the file")
    if problems:
        return problems
    gap = data[b:c]
    match = _HEX_STRING.fullmatch(gap)
    if match is None:
        return ["the bytes between the signed ranges are not just the /Contents string"]
    contents = sig_object.get("/Contents")
    if not isinstance(contents, generic.ByteStringObject | generic.TextStringObject | bytes):
        return ["the signature has no /Contents string"]
    try:
        gap_value = bytes.fromhex(re.sub(rb"\s", b"", match.group(1)).decode())
    except ValueError:
        return ["the /Contents string between the signed ranges is not valid hex"]
    value = bytes(contents.original_bytes if hasattr(contents, "original_bytes") else contents)
    if gap_value.rstrip(b"\0") != value.rstrip(b"\0"):
        return ["the unsigned gap does not hold this signature's /Contents"]
    return []


def trailing_garbage(data: bytes, reader) -> bool:
    """True when anything but whitespace follows the end of the last revision that the
    cross-reference chain knows (its xref section, trailer and %%EOF): bytes appended
    after it, even ending in a copy of the old ``startxref N %%EOF``, are covered by no
    signature and no revision."""
    try:
        last = reader.xrefs.total_revisions - 1
        start = reader.xrefs.get_startxref_for_revision(last)
    except (KeyError, IndexError, ValueError):
        start = 0
    end = _EOF.search(data, start)
    if end is None:
        return False
    return bool(data[end.end() :].strip(b" \t\r\n\f\0"))
