"""Certificate and algorithm problems each get the right ETSI indication: revoked,
expired, untrusted root, SHA-1 digest, RSA-1024 key; plus revocation fetching only from
allow-listed hosts; and signatures made by other tools (pyHanko's own signer with the
PAdES and the adbe.pkcs7.detached subfilters) verify."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing.verify import (
    RevocationPolicy,
    TrustStore,
    VerifyContext,
    restricted_session,
    verify_pdf,
)
from tests.fixtures.pdfs import simple_pdf

NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, issuer, key, issuer_key, *, ca, start, end):
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return b.sign(issuer_key, hashes.SHA256())


def _asn1(cert) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class MiniPki:
    def __init__(self, name="Test Root"):
        self.name = name
        self.key = rsa.generate_private_key(65537, 2048)
        self.cert = _cert(
            name,
            name,
            self.key,
            self.key,
            ca=True,
            start=NOW - dt.timedelta(days=3650),
            end=NOW + dt.timedelta(days=3650),
        )

    def signer(self, *, bits=2048, start=None, end=None, cn="Signer"):
        key = rsa.generate_private_key(65537, bits)
        cert = _cert(
            cn,
            self.name,
            key,
            self.key,
            ca=False,
            start=start or NOW - dt.timedelta(days=1),
            end=end or NOW + dt.timedelta(days=365),
        )
        return signers.SimpleSigner(
            signing_cert=_asn1(cert),
            signing_key=asn1_keys.PrivateKeyInfo.load(
                key.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            ),
            cert_registry=SimpleCertificateStore.from_certs([_asn1(self.cert)]),
        )

    def context(self, **kw) -> VerifyContext:
        return VerifyContext(trust=TrustStore(roots=(_asn1(self.cert),)), **kw)


async def _sign(signer, *, md="sha256", subfilter=fields.SigSeedSubFilter.PADES) -> bytes:
    out = io.BytesIO()
    meta = PdfSignatureMetadata(field_name="Sig1", md_algorithm=md, subfilter=subfilter)
    await PdfSigner(meta, signer=signer).async_sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(simple_pdf())), output=out
    )
    return out.getvalue()


@pytest.fixture(scope="module")
def pki():
    return MiniPki()


async def _verdict(data, ctx):
    report = (await verify_pdf(data, ctx, now=dt.datetime.now(dt.UTC))).to_dict()
    (sig,) = report["signatures"]
    return report, sig


async def test_sound_signature_passes(pki):
    report, sig = await _verdict(await _sign(pki.signer()), pki.context())
    assert report["valid"] and sig["indication"] == "TOTAL_PASSED" and sig["level"] == "B-B"


async def test_other_tool_adbe_pkcs7_detached_verifies(pki):
    data = await _sign(pki.signer(), subfilter=fields.SigSeedSubFilter.ADOBE_PKCS7_DETACHED)
    report, sig = await _verdict(data, pki.context())
    assert report["valid"] and sig["indication"] == "TOTAL_PASSED"
    assert sig["level"] is None  # not a PAdES baseline signature


async def test_expired_certificate(pki):
    signer = pki.signer(start=NOW - dt.timedelta(days=800), end=NOW - dt.timedelta(days=400))
    report, sig = await _verdict(await _sign(signer), pki.context())
    assert not report["valid"]
    assert sig["indication"] == "INDETERMINATE"
    assert sig["subindication"] in {"OUT_OF_BOUNDS_NO_POE", "OUT_OF_BOUNDS_NOT_REVOKED", "EXPIRED"}


async def test_untrusted_root(pki):
    other = MiniPki("Other Root")
    report, sig = await _verdict(await _sign(other.signer()), pki.context())
    assert not report["valid"]
    assert (sig["indication"], sig["subindication"]) == (
        "INDETERMINATE",
        "NO_CERTIFICATE_CHAIN_FOUND",
    )
    assert sig["intact"] and not sig["trusted"]


async def test_forged_chain_with_the_trusted_root_name(pki):
    # a leaf naming the trusted root as issuer but signed by another key
    forger = MiniPki("Other Root")
    forger.name = pki.name
    report, sig = await _verdict(await _sign(forger.signer()), pki.context())
    assert not report["valid"] and sig["indication"] == "INDETERMINATE"
    assert sig["subindication"] in {
        "CERTIFICATE_CHAIN_GENERAL_FAILURE",
        "NO_CERTIFICATE_CHAIN_FOUND",
    }


async def test_sha1_digest(pki):
    report, sig = await _verdict(await _sign(pki.signer(), md="sha1"), pki.context())
    assert not report["valid"]
    assert sig["indication"] == "INDETERMINATE"
    assert sig["subindication"] == "CRYPTO_CONSTRAINTS_FAILURE"
    assert any("sha1" in m for m in sig["messages"])


async def test_rsa_1024_key(pki):
    report, sig = await _verdict(await _sign(pki.signer(bits=1024)), pki.context())
    assert not report["valid"]
    assert (sig["indication"], sig["subindication"]) == (
        "INDETERMINATE",
        "CRYPTO_CONSTRAINTS_FAILURE",
    )
    assert any("1024" in m for m in sig["messages"])


async def test_revoked_certificate_fetched_from_allow_listed_host(test_pki):
    from signing.keys.pkcs12 import Pkcs12KeyProvider

    signer = Pkcs12KeyProvider.from_bytes(
        test_pki.revoked.read(), test_pki.revoked.password
    ).signer()
    data = await _sign(signer)
    policy = RevocationPolicy(
        allow_fetching=True, allowed_hosts=frozenset({"127.0.0.1"}), timeout_s=5
    )
    async with restricted_session(policy) as session:
        ctx = VerifyContext(
            trust=TrustStore(roots=(test_pki.root_cert,)), revocation=policy, session=session
        )
        report, sig = await _verdict(data, ctx)
    assert not report["valid"]
    # no timestamp proves the signature predates the revocation: EN 319 102-1 5.3
    assert (sig["indication"], sig["subindication"]) == ("INDETERMINATE", "REVOKED_NO_POE")


async def test_no_fetching_from_hosts_off_the_allow_list(test_pki):
    from signing.keys.pkcs12 import Pkcs12KeyProvider

    p12 = test_pki.agencies["000.00.00.H41"]
    data = await _sign(Pkcs12KeyProvider.from_bytes(p12.read(), p12.password).signer())
    policy = RevocationPolicy(
        allow_fetching=True, allowed_hosts=frozenset({"ocsp.example.gov.vn"}), timeout_s=5
    )
    async with restricted_session(policy) as session:
        ctx = VerifyContext(
            trust=TrustStore(roots=(test_pki.root_cert,)), revocation=policy, session=session
        )
        report, sig = await _verdict(data, ctx)
        allowed = RevocationPolicy(
            allow_fetching=True, allowed_hosts=frozenset({"127.0.0.1"}), timeout_s=5
        )
    assert not report["valid"]
    assert (sig["indication"], sig["subindication"]) == ("INDETERMINATE", "TRY_LATER")
    async with restricted_session(allowed) as session:
        ctx = VerifyContext(
            trust=TrustStore(roots=(test_pki.root_cert,)), revocation=allowed, session=session
        )
        report, sig = await _verdict(data, ctx)
    assert report["valid"], sig


async def test_revoked_before_the_proven_signing_time_is_total_failed(test_pki):
    import aiohttp

    from signing.keys.pkcs12 import Pkcs12KeyProvider
    from signing.timestamps import HttpTimeStamper

    signer = Pkcs12KeyProvider.from_bytes(
        test_pki.revoked.read(), test_pki.revoked.password
    ).signer()
    policy = RevocationPolicy(
        allow_fetching=True, allowed_hosts=frozenset({"127.0.0.1"}), timeout_s=5
    )
    async with aiohttp.ClientSession() as plain, restricted_session(policy) as session:
        out = io.BytesIO()
        meta = PdfSignatureMetadata(
            field_name="Sig1", md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES
        )
        await PdfSigner(
            meta, signer=signer, timestamper=HttpTimeStamper(test_pki.tsa_url, plain)
        ).async_sign_pdf(IncrementalPdfFileWriter(io.BytesIO(simple_pdf())), output=out)
        ctx = VerifyContext(
            trust=TrustStore(roots=(test_pki.root_cert,)), revocation=policy, session=session
        )
        report, sig = await _verdict(out.getvalue(), ctx)
    # the timestamp proves the signature was made after the revocation: EN 319 102-1
    assert not report["valid"]
    assert (sig["indication"], sig["subindication"]) == ("TOTAL_FAILED", "REVOKED")
    assert sig["timestamp_time"] is not None
