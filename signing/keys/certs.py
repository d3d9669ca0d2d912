"""Loading certificates from PEM/DER files and bundles."""

from __future__ import annotations

from pathlib import Path

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509

from ..errors import ConfigurationError

__all__ = ["load_certificates", "order_chain", "to_asn1", "to_pem"]


def to_asn1(der: bytes) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(der)


def to_pem(cert: asn1_x509.Certificate) -> bytes:
    return pem.armor("CERTIFICATE", cert.dump())


def load_certificates(path: Path) -> list[asn1_x509.Certificate]:
    """All certificates of a PEM bundle or a DER file; a folder: every file in it."""
    if path.is_dir():
        return [c for f in sorted(path.iterdir()) if f.is_file() for c in load_certificates(f)]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read certificate file {path}: {exc.strerror}") from None
    try:
        if pem.detect(data):
            return [
                to_asn1(der)
                for kind, _headers, der in pem.unarmor(data, multiple=True)
                if kind == "CERTIFICATE"
            ]
        return [to_asn1(data)]
    except ValueError:
        raise ConfigurationError(f"{path} holds no readable certificate") from None


def order_chain(
    leaf: asn1_x509.Certificate, certs: tuple[asn1_x509.Certificate, ...]
) -> tuple[asn1_x509.Certificate, ...]:
    """Issuer of the leaf first, then its issuer, ...; unrelated certificates last."""
    by_subject = {c.subject.dump(): c for c in certs}
    ordered: list[asn1_x509.Certificate] = []
    current = leaf
    while current.self_signed == "no" and current.issuer.dump() in by_subject:
        current = by_subject.pop(current.issuer.dump())
        ordered.append(current)
    return tuple(ordered) + tuple(by_subject.values())
