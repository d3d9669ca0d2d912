"""A pyHanko signer over an already-parsed ``cryptography`` private key.

pyHanko's ``SimpleSigner`` re-parses its DER key on every signature (cryptography
checks RSA keys on load, ~40 ms for RSA-2048). Beyond that, most of the remaining time
goes into asn1crypto re-encoding values built from Python objects: the certificate
set, the signer identifier and the signing-certificate-v2 attribute, which are the
same for every signature of a signer. ``ConstantPartsMixin`` encodes them once and
re-loads them from DER per signature (a loaded, unmodified asn1crypto value dumps its
cached bytes). The CMS produced is the same structure, byte for byte in those parts,
that pyHanko builds (tests/unit/test_fast_signer.py compares them).
"""

from __future__ import annotations

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.sign.attributes import CMSAttributeProvider, SigningCertificateV2Provider
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.general import as_signing_certificate_v2, simple_cms_attribute
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

__all__ = ["CachedKeySigner", "ConstantPartsMixin"]


class _ConstantAttribute(CMSAttributeProvider):
    """A signed attribute whose DER encoding is computed once."""

    def __init__(self, attribute_type: str, der: bytes) -> None:
        self.attribute_type = attribute_type
        self._der = der

    async def get_attribute(self, dry_run: bool = False) -> cms.CMSAttribute:
        return cms.CMSAttribute.load(self._der)


class ConstantPartsMixin:
    """Per-signer constant CMS parts, encoded once. Mix into a pyHanko ``Signer``."""

    signing_cert: asn1_x509.Certificate

    def _constant(self, key: str, build) -> bytes:
        cache = self.__dict__.setdefault("_docgate_der", {})
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def _signed_attr_providers(self, *args, **kwargs):
        for provider in super()._signed_attr_providers(*args, **kwargs):  # type: ignore[misc]
            if isinstance(provider, SigningCertificateV2Provider):
                der = self._constant(
                    "signing_certificate_v2",
                    lambda p=provider: simple_cms_attribute(
                        p.attribute_type, as_signing_certificate_v2(self.signing_cert)
                    ).dump(),
                )
                yield _ConstantAttribute(provider.attribute_type, der)
            else:
                yield provider

    def signer_info(self, digest_algorithm: str, signed_attrs, signature):
        if digest_algorithm == "shake256":  # pyHanko's special case; not cached
            return super().signer_info(digest_algorithm, signed_attrs, signature)  # type: ignore[misc]
        cert = self.signing_cert
        sid = self._constant(
            "sid",
            lambda: cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": cert.issuer, "serial_number": cert.serial_number}
                    )
                }
            ).dump(),
        )
        digest = self._constant(
            f"digest:{digest_algorithm}",
            lambda: algos.DigestAlgorithm({"algorithm": digest_algorithm}).dump(),
        )
        mechanism = self._constant(
            f"mechanism:{digest_algorithm}",
            lambda: self.get_signature_mechanism_for_digest(digest_algorithm).dump(),  # type: ignore[attr-defined]
        )
        return cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier.load(sid),
                "digest_algorithm": algos.DigestAlgorithm.load(digest),
                "signature_algorithm": algos.SignedDigestAlgorithm.load(mechanism),
                "signed_attrs": signed_attrs,
                "signature": signature,
            }
        )


class CachedKeySigner(ConstantPartsMixin, Signer):
    """Signs with a key object parsed once; PKCS#1 v1.5, RSASSA-PSS or ECDSA."""

    def __init__(
        self,
        *,
        signing_cert: asn1_x509.Certificate,
        private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        chain: tuple[asn1_x509.Certificate, ...] = (),
        prefer_pss: bool = False,
        embed_roots: bool = True,
    ) -> None:
        if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise PyHankoSigningError("only RSA and ECDSA keys are supported")
        self._private_key = private_key
        registry = SimpleCertificateStore.from_certs(chain)
        super().__init__(
            signing_cert=signing_cert,
            cert_registry=registry,
            prefer_pss=prefer_pss,
            embed_roots=embed_roots,
        )
        # Parse the certificate choices once from DER: building them from Certificate
        # objects makes asn1crypto copy and re-encode every certificate per signature.
        certs = [signing_cert, *chain]
        if not embed_roots:
            certs = [signing_cert, *(c for c in chain if c.self_signed == "no")]
        self._cert_choices = [
            cms.CertificateChoices.load(cms.CertificateChoices(name="certificate", value=c).dump())
            for c in certs
        ]

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        return self.sign_raw(data, digest_algorithm)

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        algo = mechanism.signature_algo
        key = self._private_key
        if algo == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
        if algo == "rsassa_pss" and isinstance(key, rsa.RSAPrivateKey):
            pss, hash_algo = process_pss_params(mechanism["parameters"])
            return key.sign(data, pss, hash_algo)
        if algo == "ecdsa" and isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(get_pyca_cryptography_hash(digest_algorithm)))
        raise PyHankoSigningError(f"signature mechanism {algo} does not fit the key")

    def _package_signature(  # type: ignore[override]
        self,
        *,
        digest_algorithm: str,
        cms_version,
        signed_attrs: cms.CMSAttributes,
        signature: bytes,
        unsigned_attrs: cms.CMSAttributes | None,
        encap_content_info,
    ) -> cms.ContentInfo:
        # Mirrors pyHanko's Signer._package_signature (0.38), with the certificate set
        # taken from the pre-parsed choices (see the class docstring). A unit test
        # checks the result against SimpleSigner's, field by field.
        sig_info = self.signer_info(digest_algorithm, signed_attrs, signature)
        if unsigned_attrs is not None:
            sig_info["unsigned_attrs"] = unsigned_attrs
        signed_data = {
            "version": cms_version,
            "digest_algorithms": cms.DigestAlgorithms((sig_info["digest_algorithm"],)),
            "encap_content_info": encap_content_info or {"content_type": "data"},
            "certificates": cms.CertificateSet(self._cert_choices),
            "signer_infos": [sig_info],
        }
        return cms.ContentInfo(
            {"content_type": cms.ContentType("signed_data"), "content": cms.SignedData(signed_data)}
        )
