"""Opening a PDF to sign: the checks that turn bad input into clear errors.

Parsing policy (NOTES 10): the strict parser first; a file it refuses is parsed again
leniently, because many real-world producers write slightly broken files that sign
and verify fine. Hybrid-reference tricks are a concern of the verifier, which applies
its own policy to what it is given; here we only add a new revision on top.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError, PdfReadError, PdfStrictReadError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields

from .errors import DamagedPdfError, EncryptedPdfError, InvalidOptionsError, NotAPdfError
from .mapped import MappedPdf, pdf_stream

__all__ = ["PARSE_ERRORS", "OpenedPdf", "open_pdf", "page_box"]

_HEADER_WINDOW = 1024  # PDF 32000-1 7.5.2 lets readers accept the header within the first KiB
PARSE_ERRORS = (
    PdfError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    AssertionError,
    RecursionError,
    ArithmeticError,  # OverflowError, decimal.InvalidOperation on malformed numbers
    NotImplementedError,  # unsupported filters and features met while reading
    UnicodeError,
    EOFError,
    zlib.error,
)


@dataclass
class OpenedPdf:
    writer: IncrementalPdfFileWriter
    strict: bool
    page_count: int
    existing_signature_fields: tuple[str, ...]

    def resolve_page(self, page: int) -> int:
        """1-based page number (negative from the end) to a 0-based index."""
        index = page - 1 if page > 0 else self.page_count + page
        if not 0 <= index < self.page_count:
            raise InvalidOptionsError(
                f"page {page} does not exist: the document has {self.page_count} page(s)"
            )
        return index

    def next_field_name(self) -> str:
        taken = set(self.existing_signature_fields)
        n = len(taken) + 1
        while f"Sig{n}" in taken:
            n += 1
        return f"Sig{n}"


def _reader(data: bytes | MappedPdf, strict: bool) -> PdfFileReader:
    return PdfFileReader(pdf_stream(data), strict=strict)


def open_pdf(data: bytes | MappedPdf) -> OpenedPdf:
    """Parse ``data`` for an incremental signature, or raise a SigningError subclass."""
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise NotAPdfError("the body is not a PDF document (no %PDF- header)")
    strict = True
    try:
        try:
            reader = _reader(data, strict=True)
            _touch(reader)
        except PdfStrictReadError:
            strict = False
            reader = _reader(data, strict=False)
            _touch(reader)
    except PdfReadError as exc:
        raise DamagedPdfError(f"the PDF cannot be read: {_short(exc)}") from None
    except PARSE_ERRORS as exc:
        raise DamagedPdfError(f"the PDF is damaged beyond repair: {_short(exc)}") from None
    if reader.encrypted:
        raise EncryptedPdfError("the PDF is encrypted; send the unencrypted document to sign it")
    try:
        page_count = int(reader.root["/Pages"]["/Count"])
        names = tuple(name for name, _value, _ref in fields.enumerate_sig_fields(reader))
        writer = IncrementalPdfFileWriter.from_reader(reader)
    except PARSE_ERRORS as exc:
        raise DamagedPdfError(f"the PDF structure is damaged: {_short(exc)}") from None
    if page_count < 1:
        raise DamagedPdfError("the PDF has no pages")
    _unshare_info(reader, writer)
    return OpenedPdf(writer, strict, page_count, names)


def _unshare_info(reader: PdfFileReader, writer: IncrementalPdfFileWriter) -> None:
    """Some producers point the trailer's /Info at a structural object (the catalog or
    the page tree). Every revision pyHanko writes updates /Info (ModDate, Producer), so
    a later revision (a B-LTA document timestamp, the next signature) would rewrite the
    page tree itself, which the verifier must call an unexplained change. Give the
    document an /Info dictionary of its own in the signed revision."""
    try:
        info = reader.trailer_view.raw_get("/Info")
    except KeyError:
        return
    if not isinstance(info, generic.IndirectObject):
        return
    structural = {reader.root_ref}
    pages = reader.root.raw_get("/Pages")
    if isinstance(pages, generic.IndirectObject):
        structural.add(pages.reference)
    if info.reference in structural:
        fresh = generic.DictionaryObject(
            {k: v for k, v in info.get_object().items() if k in _INFO_KEYS}
        )
        writer.set_info(fresh)


_INFO_KEYS = {
    "/Title",
    "/Author",
    "/Subject",
    "/Keywords",
    "/Creator",
    "/Producer",
    "/CreationDate",
    "/ModDate",
    "/Trapped",
}


def _touch(reader: PdfFileReader) -> None:
    """Force the parts of the file signing will need, so damage shows up now."""
    if reader.encrypted:
        return
    root = reader.root
    pages = root["/Pages"]
    if not isinstance(pages, generic.DictionaryObject):
        raise PdfReadError("the page tree is missing")
    # Every page object we might place a stamp on must be reachable.
    count = int(pages["/Count"])
    if count < 1:
        return
    reader.find_page_for_modification(0)
    if count > 1:
        reader.find_page_for_modification(count - 1)


def page_box(opened: OpenedPdf, index: int) -> tuple[float, float, float, float]:
    """The visible box of a page (CropBox, else MediaBox, with inheritance)."""
    try:
        page_ref, _ = opened.writer.find_page_for_modification(index)
        node = page_ref.get_object()
        for key in ("/CropBox", "/MediaBox"):
            current = node
            while current is not None:
                if key in current:
                    x1, y1, x2, y2 = (float(v) for v in current[key])
                    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
                parent = current.get("/Parent")
                current = parent.get_object() if parent is not None else None
    except PARSE_ERRORS as exc:
        raise DamagedPdfError(f"page {index + 1} is damaged: {_short(exc)}") from None
    return (0.0, 0.0, 595.0, 842.0)  # A4, when the file names no box at all


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
