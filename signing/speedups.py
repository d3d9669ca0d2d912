"""Two hot spots of pyHanko and asn1crypto, replaced by equivalent code that does the
same work once instead of many times (found by profiling verification; BENCHMARKS.md).

- ``pyhanko.pdf_utils.generic.read_hex_string_from_stream`` reads a hex string one byte
  at a time through a generator (a 30 KB signature ``/Contents`` is 60 000 Python-level
  reads, and validation reads it several times). Here: one ``find`` for the closing
  ``>``, one regular-expression check, one ``bytes.fromhex``. Same result, same errors
  when the string holds a comment or a bad byte (those go to the original reader).
- ``asn1crypto.x509.Name`` equality applies RFC 5280 string preparation to every
  attribute on every comparison; certificate path building and CMS signer lookup compare
  the same few names thousands of times per document. Here the prepared form
  (``Name.hashable``, which asn1crypto itself defines as the key of that equality) is
  computed once per distinct DER encoding and cached, and equal DER short-circuits.

``install()`` is idempotent and is called by the signing and verification entry points.
``tests/unit/test_speedups.py`` checks both against the originals on generated input.
"""

from __future__ import annotations

import functools
import re

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfStreamError

__all__ = ["install", "ORIGINAL_HEX_READER", "ORIGINAL_NAME_HASHABLE"]

ORIGINAL_HEX_READER = generic.read_hex_string_from_stream
ORIGINAL_NAME_HASHABLE = asn1_x509.Name.hashable.fget
_ORIGINAL_NAME_EQ = asn1_x509.Name.__eq__

_CHUNK = 64 * 1024
# PDF white space (ISO 32000-1, 7.2.2) and hex digits; anything else inside <...> is an error
_HEX_BODY = re.compile(rb"[0-9A-Fa-f\x00\x09\x0a\x0c\x0d\x20]*")
_WHITESPACE = re.compile(rb"[\x00\x09\x0a\x0c\x0d\x20]+")
_installed = False


def read_hex_string_from_stream(stream):
    """Read ``<hex digits>`` from ``stream`` (positioned at ``<``) into a PDF string."""
    stream.read(1)  # the opening '<'
    start = stream.tell()
    parts: list[bytes] = []
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            raise PdfStreamError("Stream ended prematurely inside a hex string")
        end = chunk.find(b">")
        body = chunk if end < 0 else chunk[:end]
        if _HEX_BODY.match(body).end() != len(body):
            # a comment or a bad byte inside <...>: the original handles (or rejects) it
            stream.seek(start - 1)
            return ORIGINAL_HEX_READER(stream)
        parts.append(body)
        if end >= 0:
            consumed = sum(len(p) for p in parts) + 1
            stream.seek(start + consumed)
            break
    digits = _WHITESPACE.sub(b"", b"".join(parts))
    if len(digits) % 2:
        digits += b"0"
    return generic.pdf_string(bytes.fromhex(digits.decode("ascii")))


@functools.lru_cache(maxsize=4096)
def _prepared(der: bytes) -> str:
    return asn1_x509.RDNSequence.load(der).hashable


def _name_hashable(self: asn1_x509.Name) -> str:
    # keyed by the RDNSequence's own encoding: a Name's dump() carries the tag of its
    # context ([4] EXPLICIT inside a GeneralName), so equal names can dump differently
    return _prepared(self.chosen.dump())


def _name_eq(self: asn1_x509.Name, other: object) -> bool:
    if not isinstance(other, asn1_x509.Name):
        return False
    mine, theirs = self.chosen.dump(), other.chosen.dump()
    if mine == theirs:
        return True
    return _prepared(mine) == _prepared(theirs)


def install() -> None:
    """Replace the two functions (once per process)."""
    global _installed
    if _installed:
        return
    generic.read_hex_string_from_stream = read_hex_string_from_stream
    asn1_x509.Name.hashable = property(_name_hashable)
    asn1_x509.Name.__eq__ = _name_eq
    asn1_x509.Name.__ne__ = lambda self, other: not _name_eq(self, other)
    _installed = True
