"""Development PKI: a root CA, an issuing CA, one signing certificate per agency, a
timestamp authority, an OCSP responder, CRLs and OCSP responses, under ``var/pki/``.

Created on the first development start and reused afterwards; only the revocation
data (CRLs, OCSP responses) is re-issued when it is about to go stale. Every subject
carries a DEVELOPMENT marker so production mode can refuse these keys.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "DEV_MARKER",
    "DevAgency",
    "DevPki",
    "ensure_dev_pki",
    "is_development_certificate",
]

DEV_MARKER = "DEVELOPMENT - NOT FOR PRODUCTION USE"
_REVINFO_VALIDITY = dt.timedelta(days=7)
_REFRESH_BEFORE = dt.timedelta(days=2)


@dataclass(frozen=True)
class DevAgency:
    code: str
    name: str


@dataclass(frozen=True)
class DevPki:
    """Paths of the development PKI's files."""

    root: Path

    @property
    def root_cert(self) -> Path:
        return self.root / "root.pem"

    @property
    def intermediate_cert(self) -> Path:
        return self.root / "intermediate.pem"

    @property
    def tsa_cert(self) -> Path:
        return self.root / "tsa.pem"

    @property
    def tsa_key(self) -> Path:
        return self.root / "tsa.key.pem"

    @property
    def ocsp_cert(self) -> Path:
        return self.root / "ocsp.pem"

    @property
    def password_file(self) -> Path:
        return self.root / "p12-password"

    def agency_p12(self, code: str) -> Path:
        return self.root / "agencies" / f"{code}.p12"

    def agency_cert(self, code: str) -> Path:
        return self.root / "agencies" / f"{code}.pem"

    @property
    def crls(self) -> list[Path]:
        return [self.root / "root.crl", self.root / "intermediate.crl"]

    @property
    def ocsp_dir(self) -> Path:
        return self.root / "ocsp"


def is_development_certificate(subject_text: str) -> bool:
    return DEV_MARKER in subject_text


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DEV_MARKER),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _new_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key,
    now: dt.datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _ca_extensions(builder: x509.CertificateBuilder, path_length: int | None):
    return builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=path_length), critical=True
    ).add_extension(
        x509.KeyUsage(
            digital_signature=False,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )


def _leaf_usage(
    builder: x509.CertificateBuilder, *, non_repudiation: bool
) -> x509.CertificateBuilder:
    return builder.add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True
    ).add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=non_repudiation,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )


def _issued_by(
    builder: x509.CertificateBuilder, issuer_cert: x509.Certificate, crl_url: str | None
) -> x509.CertificateBuilder:
    ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
    )
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(crl_url)],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
    return builder


class _Ca:
    def __init__(self, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
        self.cert = cert
        self.key = key


def _make_ca(pki: DevPki, now: dt.datetime, crl_base: str) -> tuple[_Ca, _Ca]:
    root_key_path = pki.root / "root.key.pem"
    inter_key_path = pki.root / "intermediate.key.pem"
    if pki.root_cert.exists() and pki.intermediate_cert.exists():
        return (
            _Ca(_load_cert(pki.root_cert), _load_key(root_key_path)),
            _Ca(_load_cert(pki.intermediate_cert), _load_key(inter_key_path)),
        )
    root_key = _new_key(3072)
    root_name = _name("DocGate Development Root CA", "DocGate")
    root_cert = _ca_extensions(
        _builder(root_name, root_name, root_key.public_key(), now, 3650), None
    ).sign(root_key, hashes.SHA256())
    inter_key = _new_key()
    inter_name = _name("DocGate Development Issuing CA", "DocGate")
    inter_cert = _issued_by(
        _ca_extensions(_builder(inter_name, root_name, inter_key.public_key(), now, 1825), 0),
        root_cert,
        f"{crl_base}/root.crl",
    ).sign(root_key, hashes.SHA256())
    _write_private(root_key_path, _pem_key(root_key))
    _write_private(inter_key_path, _pem_key(inter_key))
    pki.root_cert.write_bytes(_pem(root_cert))
    pki.intermediate_cert.write_bytes(_pem(inter_cert))
    return _Ca(root_cert, root_key), _Ca(inter_cert, inter_key)


def _make_leaf(
    ca: _Ca,
    now: dt.datetime,
    cn: str,
    org: str,
    crl_url: str,
    *,
    eku: x509.ObjectIdentifier | None = None,
    non_repudiation: bool = False,
    ocsp_nocheck: bool = False,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _new_key()
    builder = _issued_by(
        _leaf_usage(
            _builder(_name(cn, org), ca.cert.subject, key.public_key(), now, 825),
            non_repudiation=non_repudiation,
        ),
        ca.cert,
        None if ocsp_nocheck else crl_url,
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=True)
    if ocsp_nocheck:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    return builder.sign(ca.key, hashes.SHA256()), key


def _crl(ca: _Ca, now: dt.datetime) -> bytes:
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + _REVINFO_VALIDITY)
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )


def _ocsp_response(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    responder: x509.Certificate,
    responder_key: rsa.RSAPrivateKey,
    now: dt.datetime,
) -> bytes:
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=issuer,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now - dt.timedelta(minutes=5),
            next_update=now + _REVINFO_VALIDITY,
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
        .certificates([responder])
    )
    return builder.sign(responder_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _stale(path: Path, now: dt.datetime) -> bool:
    meta = path.with_suffix(path.suffix + ".next-update")
    if not path.exists() or not meta.exists():
        return True
    next_update = dt.datetime.fromisoformat(meta.read_text().strip())
    return next_update - now < _REFRESH_BEFORE


def _write_revinfo(path: Path, data: bytes, now: dt.datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.with_suffix(path.suffix + ".next-update").write_text((now + _REVINFO_VALIDITY).isoformat())


def ensure_dev_pki(
    root: Path,
    agencies: list[DevAgency],
    *,
    now: dt.datetime,
    crl_base: str = "http://127.0.0.1:8080/dev/pki",
) -> DevPki:
    """Create what is missing of the development PKI under ``root`` and refresh
    revocation data that is about to expire. Returns the paths."""
    pki = DevPki(root)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    root_ca, inter = _make_ca(pki, now, crl_base)
    inter_crl = f"{crl_base}/intermediate.crl"

    if not pki.password_file.exists():
        _write_private(pki.password_file, secrets.token_urlsafe(24).encode() + b"\n")
    password = pki.password_file.read_text().splitlines()[0].encode()

    if not pki.tsa_cert.exists():
        cert, key = _make_leaf(
            inter,
            now,
            "DocGate Development Timestamp Authority",
            "DocGate",
            inter_crl,
            eku=ExtendedKeyUsageOID.TIME_STAMPING,
        )
        _write_private(pki.tsa_key, _pem_key(key))
        pki.tsa_cert.write_bytes(_pem(cert))
    ocsp_key_path = pki.root / "ocsp.key.pem"
    if not pki.ocsp_cert.exists():
        cert, key = _make_leaf(
            inter,
            now,
            "DocGate Development OCSP Responder",
            "DocGate",
            inter_crl,
            eku=ExtendedKeyUsageOID.OCSP_SIGNING,
            ocsp_nocheck=True,
        )
        _write_private(ocsp_key_path, _pem_key(key))
        pki.ocsp_cert.write_bytes(_pem(cert))

    index_path = pki.root / "agencies" / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    for agency in agencies:
        p12 = pki.agency_p12(agency.code)
        if p12.exists():
            continue
        cert, key = _make_leaf(
            inter, now, agency.name, agency.name, inter_crl, non_repudiation=True
        )
        blob = pkcs12.serialize_key_and_certificates(
            name=agency.code.encode(),
            key=key,
            cert=cert,
            cas=[inter.cert, root_ca.cert],
            encryption_algorithm=serialization.BestAvailableEncryption(password),
        )
        _write_private(p12, blob)
        pki.agency_cert(agency.code).write_bytes(_pem(cert))
        index[agency.code] = agency.name
    index_path.parent.mkdir(parents=True, exist_ok=True)
    index_path.write_text(json.dumps(index, ensure_ascii=False, indent=2))

    # Revocation data: CRLs of both CAs and OCSP answers for every leaf certificate.
    root_crl, inter_crl_path = pki.crls
    if _stale(root_crl, now):
        _write_revinfo(root_crl, _crl(root_ca, now), now)
    if _stale(inter_crl_path, now):
        _write_revinfo(inter_crl_path, _crl(inter, now), now)
    responder = _load_cert(pki.ocsp_cert)
    responder_key = _load_key(ocsp_key_path)
    leaves = [pki.tsa_cert, *(pki.agency_cert(code) for code in index)]
    for leaf_path in leaves:
        target = pki.ocsp_dir / (leaf_path.stem + ".ocsp")
        if _stale(target, now):
            leaf = _load_cert(leaf_path)
            _write_revinfo(
                target, _ocsp_response(leaf, inter.cert, responder, responder_key, now), now
            )
    return pki
