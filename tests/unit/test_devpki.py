"""The development PKI: what it creates, that re-runs reuse it, and the markers that
let production refuse it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.devpki import DEV_MARKER, DevPki, ensure_dev_pki, is_development_certificate
from tests.fixtures.pki import DEMO_AGENCIES


def test_agency_certificates(dev_pki):
    password = dev_pki.password_file.read_text().splitlines()[0].encode()
    for agency in DEMO_AGENCIES:
        key, cert, chain = pkcs12.load_key_and_certificates(
            dev_pki.agency_p12(agency.code).read_bytes(), password
        )
        assert key is not None and cert is not None and len(chain) == 2
        subject = cert.subject
        assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == agency.name
        assert (
            subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == DEV_MARKER
        )
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert ku.digital_signature and ku.content_commitment and not ku.key_cert_sign
        assert is_development_certificate(subject.rfc4514_string())
        assert oct(dev_pki.agency_p12(agency.code).stat().st_mode)[-3:] == "600"


def test_tsa_ocsp_and_revocation_data(dev_pki):
    tsa = x509.load_pem_x509_certificate(dev_pki.tsa_cert.read_bytes())
    eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    responder = x509.load_pem_x509_certificate(dev_pki.ocsp_cert.read_bytes())
    assert (
        ExtendedKeyUsageOID.OCSP_SIGNING
        in responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    for crl_path in dev_pki.crls:
        crl = x509.load_der_x509_crl(crl_path.read_bytes())
        assert crl.next_update_utc > dt.datetime.now(dt.UTC)
    assert len(list(dev_pki.ocsp_dir.glob("*.ocsp"))) == len(DEMO_AGENCIES) + 1


def test_reruns_reuse_keys_and_refresh_stale_revocation_data(dev_pki, tmp_path):
    # on a copy: re-issuing the CRLs dated days ahead must not touch the PKI that the
    # session's other tests verify against ("CRL is too recent" for them otherwise)
    dev_pki = DevPki(Path(shutil.copytree(dev_pki.root, tmp_path / "pki")))
    before = {
        p: p.read_bytes() for p in (dev_pki.root_cert, dev_pki.agency_p12(DEMO_AGENCIES[0].code))
    }
    crl_before = dev_pki.crls[1].read_bytes()
    again = ensure_dev_pki(dev_pki.root, DEMO_AGENCIES, now=dt.datetime.now(dt.UTC))
    assert {p: p.read_bytes() for p in before} == before
    assert again.crls[1].read_bytes() == crl_before  # still fresh: not re-issued
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=6)
    ensure_dev_pki(dev_pki.root, DEMO_AGENCIES, now=later)
    assert dev_pki.crls[1].read_bytes() != crl_before  # about to expire: re-issued
    assert dev_pki.root_cert.read_bytes() == before[dev_pki.root_cert]
