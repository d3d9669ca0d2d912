"""PKCS#12 file key provider: the key is parsed once when the provider opens."""

from __future__ import annotations

from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from ..errors import KeyUnavailableError
from .base import KeyProvider, KeySpec, resolve_secret
from .certs import load_certificates, order_chain, to_asn1
from .fast_signer import CachedKeySigner

__all__ = ["Pkcs12KeyProvider"]


class Pkcs12KeyProvider(KeyProvider):
    def __init__(self, signer: CachedKeySigner, chain: tuple[asn1_x509.Certificate, ...]) -> None:
        self._signer = signer
        self._chain = chain

    @classmethod
    def from_bytes(
        cls, data: bytes, password: bytes | None, extra: tuple[asn1_x509.Certificate, ...] = ()
    ) -> Pkcs12KeyProvider:
        try:
            key, cert, additional = pkcs12.load_key_and_certificates(data, password)
        except ValueError:
            raise KeyUnavailableError(
                "cannot open the PKCS#12 file: wrong password or damaged file"
            ) from None
        if key is None or cert is None:
            raise KeyUnavailableError("the PKCS#12 file holds no private key with a certificate")
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise KeyUnavailableError("only RSA and ECDSA keys are supported")
        signing_cert = to_asn1(cert.public_bytes(Encoding.DER))
        chain = tuple(to_asn1(c.public_bytes(Encoding.DER)) for c in additional or ()) + extra
        chain = order_chain(signing_cert, chain)
        return cls(CachedKeySigner(signing_cert=signing_cert, private_key=key, chain=chain), chain)

    @classmethod
    def open(cls, spec: KeySpec) -> Pkcs12KeyProvider:
        try:
            data = Path(spec.path).read_bytes()
        except OSError as exc:
            raise KeyUnavailableError(
                f"cannot read PKCS#12 file {spec.path}: {exc.strerror}"
            ) from None
        extra = tuple(c for f in spec.extra_certs for c in load_certificates(Path(f)))
        return cls.from_bytes(data, resolve_secret(spec), extra)

    @property
    def certificate(self) -> asn1_x509.Certificate:
        return self._signer.signing_cert

    @property
    def chain(self) -> tuple[asn1_x509.Certificate, ...]:
        return self._chain

    def signer(self) -> CachedKeySigner:
        return self._signer
