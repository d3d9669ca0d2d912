"""Changes to widget annotations after a signature that pyHanko's diff policy lets
pass as form filling (NOTES 8): an existing widget whose appearance (/AP) changed while
its value did not, and a new visible widget that is not a signature field later signed.
Both can redraw signed page content (Evil Annotation, Sneaky Signature)."""

from __future__ import annotations

import hashlib

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

__all__ = ["widget_changes_after"]


def _fingerprint(obj: generic.PdfObject | None, depth: int = 0) -> str:
    """A digest of an appearance dictionary/stream, following references a few levels."""
    h = hashlib.sha256()

    def walk(o, d: int) -> None:
        if isinstance(o, generic.IndirectObject):
            o = o.get_object()
        if d > 6:
            h.update(b"...")
            return
        if isinstance(o, generic.StreamObject):
            h.update(b"S")
            h.update(o.encoded_data or b"")
            walk(generic.DictionaryObject({k: v for k, v in o.items() if k != "/Length"}), d + 1)
        elif isinstance(o, generic.DictionaryObject):
            for key in sorted(o.keys()):
                if key in ("/Parent", "/P"):
                    continue
                h.update(key.encode())
                walk(o.raw_get(key), d + 1)
        elif isinstance(o, generic.ArrayObject):
            for item in o:
                walk(item, d + 1)
        else:
            h.update(repr(o).encode())

    walk(obj, depth)
    return h.hexdigest()


def _nonzero_rect(annot: generic.DictionaryObject) -> bool:
    try:
        x1, y1, x2, y2 = (float(v) for v in annot["/Rect"])
    except (KeyError, TypeError, ValueError):
        return False
    return abs(x2 - x1) > 0.5 and abs(y2 - y1) > 0.5


def _field_of(annot: generic.DictionaryObject) -> generic.DictionaryObject:
    return annot["/Parent"].get_object() if "/FT" not in annot and "/Parent" in annot else annot


def _widget_refs(reader) -> list[generic.IndirectObject]:
    refs = []
    for page_ref in _page_refs(reader.root["/Pages"]):
        page = page_ref.get_object()
        annots = page.get("/Annots")
        if annots is None:
            continue
        for item in annots:
            if isinstance(item, generic.IndirectObject):
                annot = item.get_object()
                if (
                    isinstance(annot, generic.DictionaryObject)
                    and annot.get("/Subtype") == "/Widget"
                ):
                    refs.append(item)
    return refs


def _page_refs(node, depth: int = 0):
    if depth > 64:
        return
    node_obj = node.get_object()
    if node_obj.get("/Type") == "/Pages" or "/Kids" in node_obj:
        for kid in node_obj.get("/Kids", ()):
            yield from _page_refs(kid, depth + 1)
    else:
        yield node


def widget_changes_after(reader: PdfFileReader, signed_revision: int) -> list[str]:
    """Descriptions of suspicious widget changes after ``signed_revision``."""
    problems: list[str] = []
    old = reader.get_historical_resolver(signed_revision)
    for indirect in _widget_refs(reader):
        ref = indirect.reference
        annot = indirect.get_object()
        field = _field_of(annot)
        name = str(field.get("/T", "?"))
        introduced = reader.xrefs.get_introducing_revision(ref)
        signed_later = field.get("/FT") == "/Sig" and "/V" in field
        if introduced > signed_revision:
            if _nonzero_rect(annot) and not signed_later:
                problems.append(
                    f"a visible form field '{name}' was added after the signature and is not "
                    "itself signed: it can draw over signed content"
                )
            continue
        before = old(ref)
        if not isinstance(before, generic.DictionaryObject):
            continue
        if _fingerprint(before.raw_get("/AP") if "/AP" in before else None) == _fingerprint(
            annot.raw_get("/AP") if "/AP" in annot else None
        ):
            continue
        before_field = _field_of(before)
        value_changed = _fingerprint(
            before_field.raw_get("/V") if "/V" in before_field else None
        ) != (_fingerprint(field.raw_get("/V") if "/V" in field else None))
        if value_changed:
            continue  # form filling: a new value comes with a new appearance
        problems.append(
            f"the appearance of form field '{name}' changed after the signature while its "
            "value did not"
        )
    return problems
