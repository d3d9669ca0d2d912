"""Facts about the whole document that per-signature verdicts need: the validation
data of the document security store (DSS, with a sanity check of the deprecated VRI),
the certification level (DocMDP /P) and which fields hold signatures."""

from __future__ import annotations

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.misc import PdfReadError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.dss import DocumentSecurityStore

from ..document import PARSE_ERRORS

__all__ = ["DocFacts", "DssData"]


class DssData:
    def __init__(self, reader: PdfFileReader) -> None:
        self.certs: list = []
        self.crls: list = []
        self.ocsps: list = []
        self.problem: str | None = None
        try:
            dss = DocumentSecurityStore.read_dss(reader)
        except Exception as exc:  # noqa: BLE001 - absent or unreadable DSS, reported below
            if "/DSS" in reader.root:
                self.problem = f"the document security store cannot be read ({type(exc).__name__})"
            return
        try:
            self.certs = list(dss.load_certs())
            self.ocsps = [
                asn1_ocsp.OCSPResponse.load(ref.get_object().read_data(DecodePurpose.OCSP_RESPONSE))
                for ref in dss.ocsps
            ]
            self.crls = [
                asn1_crl.CertificateList.load(ref.get_object().read_data(DecodePurpose.CRL))
                for ref in dss.crls
            ]
            for item in (*self.ocsps, *self.crls):
                item.native  # noqa: B018 - parse fully now: damage shows here, not deep inside
            _check_vri(reader.root["/DSS"])
        except PARSE_ERRORS + (PdfReadError,) as exc:
            self.certs, self.crls, self.ocsps = [], [], []
            self.problem = f"the document security store is damaged ({type(exc).__name__})"

    @property
    def has_revocation_data(self) -> bool:
        return bool(self.crls or self.ocsps)


_VRI_KEY = frozenset("0123456789ABCDEF")
_VRI_LOADERS = {
    "/Cert": lambda b: asn1_x509.Certificate.load(b).native,
    "/OCSP": lambda b: asn1_ocsp.OCSPResponse.load(b).native,
    "/CRL": lambda b: asn1_crl.CertificateList.load(b).native,
}


def _check_vri(dss_dict) -> None:
    """The VRI is deprecated in PAdES and not used for validation, but what it holds
    must still be what it claims to be: a tampered VRI is reported, not ignored."""
    vri = dss_dict.get("/VRI")
    if vri is None:
        return
    for key, entry in vri.items():
        name = key[1:].upper()
        if len(name) != 40 or not set(name) <= _VRI_KEY:
            raise ValueError(f"VRI key {key} is not a signature hash")
        entry = entry.get_object()
        for kind, load in _VRI_LOADERS.items():
            for ref in entry.get(kind, ()):
                load(ref.get_object().data)


class DocFacts:
    """Facts about the whole document the per-signature verdicts need."""

    def __init__(self, reader: PdfFileReader, signed_fields: set[str], dss: DssData) -> None:
        self.signed_fields = signed_fields
        self.dss = dss
        self.docmdp_p = _certification_level(reader)
        self.doc_ts_revisions: list[int] = []


def _certification_level(reader: PdfFileReader) -> int | None:
    """The /P of the certification signature's DocMDP transform, if certified."""
    try:
        sig = reader.root["/Perms"]["/DocMDP"]
        for ref in sig.get("/Reference", ()):
            ref = ref.get_object()
            if ref.get("/TransformMethod") == "/DocMDP":
                return int(ref.get("/TransformParams", {}).get("/P", 2))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return None
