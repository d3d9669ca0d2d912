"""DocGate's signer produces the same CMS as pyHanko's SimpleSigner: the speed-up
(keys parsed once, constant parts encoded once) must not change what is signed."""

from __future__ import annotations

import asyncio
import datetime as dt
import io

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives.asymmetric import padding
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner

from signing.keys.pkcs12 import Pkcs12KeyProvider
from tests.fixtures.pdfs import simple_pdf

NOW = dt.datetime(2026, 11, 29, 3, 59, 4, tzinfo=dt.UTC)


class _Clocked(PdfSigner):
    def init_signing_session(self, pdf_out, existing_fields_only=False):
        session = super().init_signing_session(pdf_out, existing_fields_only)
        session.system_time = NOW
        return session


def _sign(signer, data: bytes) -> cms.ContentInfo:
    meta = PdfSignatureMetadata(
        field_name="Sig1", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    out = io.BytesIO()
    asyncio.run(
        _Clocked(meta, signer=signer).async_sign_pdf(
            IncrementalPdfFileWriter(io.BytesIO(data)), output=out
        )
    )
    reader = PdfFileReader(io.BytesIO(out.getvalue()))
    (emb,) = reader.embedded_signatures
    return emb.signed_data


@pytest.fixture(scope="module")
def pair(dev_pki):
    path = dev_pki.agency_p12("000.00.00.H41")
    password = dev_pki.password_file.read_text().splitlines()[0].encode()
    ours = Pkcs12KeyProvider.from_bytes(path.read_bytes(), password).signer()
    theirs = signers.SimpleSigner.load_pkcs12(str(path), passphrase=password)
    return ours, theirs


def _attrs(signer_info) -> dict[str, bytes]:
    return {a["type"].native: a.dump() for a in signer_info["signed_attrs"]}


def test_same_cms_structure_as_simple_signer(pair):
    ours, theirs = pair
    data = simple_pdf()
    a, b = _sign(ours, data), _sign(theirs, data)
    assert {c.dump() for c in a["certificates"]} == {c.dump() for c in b["certificates"]}
    assert a["digest_algorithms"].dump() == b["digest_algorithms"].dump()
    assert a["encap_content_info"].dump() == b["encap_content_info"].dump()
    assert a["version"].native == b["version"].native
    (sa,), (sb,) = a["signer_infos"], b["signer_infos"]
    for key in ("version", "sid", "digest_algorithm", "signature_algorithm"):
        assert sa[key].dump() == sb[key].dump(), key
    attrs_a, attrs_b = _attrs(sa), _attrs(sb)
    assert set(attrs_a) == set(attrs_b)
    assert attrs_a["signing_certificate_v2"] == attrs_b["signing_certificate_v2"]
    assert attrs_a["content_type"] == attrs_b["content_type"]


def test_signature_verifies_over_the_signed_attributes(pair):
    ours, _ = pair
    signed = _sign(ours, simple_pdf())
    (info,) = signed["signer_infos"]
    cert = next(
        c.chosen for c in signed["certificates"] if c.chosen.subject == ours.signing_cert.subject
    )
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    public = x509.load_der_x509_certificate(cert.dump()).public_key()
    public.verify(  # raises InvalidSignature if the cached parts broke the signature
        info["signature"].native,
        info["signed_attrs"].untag().dump(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_constant_parts_are_encoded_once(pair, monkeypatch):
    ours, _ = pair
    _sign(ours, simple_pdf())
    import signing.keys.fast_signer as fast

    def boom(*args, **kwargs):  # pragma: no cover - must not be called again
        raise AssertionError("signing-certificate-v2 was rebuilt")

    monkeypatch.setattr(fast, "as_signing_certificate_v2", boom)
    _sign(ours, simple_pdf(2))
