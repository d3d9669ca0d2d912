"""signing.timestamps against a real TSA (Certomancer's animator on loopback), a
misbehaving proxy in front of it, a dead port, and the in-process development TSA;
plus PAdES B-T / B-LT signing and validation against the test PKI."""

from __future__ import annotations

import datetime as dt
import hashlib
from io import BytesIO

import aiohttp
import pytest
from asn1crypto import crl, ocsp, pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from signing.errors import ConfigurationError, TsaUnavailableError
from signing.keys.pkcs12 import Pkcs12KeyProvider
from signing.timestamps import HttpTimeStamper, dev_timestamper, load_dev_timestamper

DIGEST = hashlib.sha256(b"DocGate timestamp test").digest()


class _Attempts:
    """Counts HTTP requests the client session starts (an aiohttp trace hook)."""

    def __init__(self) -> None:
        self.count = 0
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._started)

    async def _started(self, *_args: object) -> None:
        self.count += 1


@pytest.fixture
def attempts() -> _Attempts:
    return _Attempts()


@pytest.fixture
async def session(attempts: _Attempts):
    async with aiohttp.ClientSession(trace_configs=[attempts.trace]) as client:
        yield client


def _tst_info(token):
    return token["content"]["encap_content_info"]["content"].parsed


def _context(root: asn1_x509.Certificate, session: aiohttp.ClientSession) -> ValidationContext:
    return ValidationContext(
        trust_roots=[root],
        allow_fetching=True,
        revocation_mode="hard-fail",
        fetcher_backend=AIOHttpFetcherBackend(session, per_request_timeout=10),
    )


async def _token_status(token, context: ValidationContext, digest: bytes):
    kwargs = await validate_tst_signed_data(token["content"], context, lambda _algo: digest)
    return TimestampSignatureStatus(**kwargs)


# ------------------------------------------------------------- the real TSA


async def test_certomancer_tsa_token_matches_request(test_pki, session):
    stamper = HttpTimeStamper(test_pki.tsa_url, session)
    token = await stamper.async_timestamp(DIGEST, "sha256")

    imprint = _tst_info(token)["message_imprint"]
    assert imprint["hashed_message"].native == DIGEST
    assert imprint["hash_algorithm"]["algorithm"].native == "sha256"
    sid = token["content"]["signer_infos"][0]["sid"].chosen
    assert sid["serial_number"].native == test_pki.tsa_cert.serial_number
    assert sid["issuer"] == test_pki.tsa_cert.issuer
    eku = [
        e
        for e in test_pki.tsa_cert["tbs_certificate"]["extensions"]
        if e["extn_id"].native == "extended_key_usage"
    ]
    assert eku and eku[0]["critical"].native and eku[0]["extn_value"].native == ["time_stamping"]

    status = await _token_status(token, _context(test_pki.root_cert, session), DIGEST)
    assert status.intact and status.valid and status.trusted, status.summary()
    assert status.signing_cert.dump() == test_pki.tsa_cert.dump()
    # a token over another digest must not pass as this one
    other = await _token_status(token, _context(test_pki.root_cert, session), b"\x00" * 32)
    assert not other.intact


# ------------------------------------------------------------- retries


async def test_http_500_then_success_retries_once(flaky_tsa, session):
    flaky_tsa.configure("status", failures=1, status=500)
    stamper = HttpTimeStamper(flaky_tsa.url, session, backoff=0.01)
    token = await stamper.async_timestamp(DIGEST, "sha256")
    assert _tst_info(token)["message_imprint"]["hashed_message"].native == DIGEST
    assert flaky_tsa.requests == 2


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("close", "server closed the connection"),
        ("content-type", "unexpected content type 'text/plain'"),
        ("garbage", "unparseable TimeStampResp"),
        ("oversize", "response larger than 1048576 bytes"),
    ],
)
async def test_bad_answers_are_retried(flaky_tsa, session, mode, reason):
    flaky_tsa.configure(mode, failures=1)
    stamper = HttpTimeStamper(flaky_tsa.url, session, backoff=0.01)
    token = await stamper.async_timestamp(DIGEST, "sha256")
    assert _tst_info(token)["message_imprint"]["hashed_message"].native == DIGEST
    assert flaky_tsa.requests == 2

    flaky_tsa.configure(mode, failures=10**6)
    with pytest.raises(TsaUnavailableError) as info:
        await stamper.async_timestamp(DIGEST, "sha256")
    assert reason in info.value.detail
    assert "after 3 attempts" in info.value.detail
    assert flaky_tsa.requests == 2 + 3


async def test_slow_tsa_times_out_after_all_attempts(flaky_tsa, session):
    flaky_tsa.configure("slow", failures=10**6, delay=5.0)
    stamper = HttpTimeStamper(flaky_tsa.url, session, timeout=0.3, retries=1, backoff=0.05)
    with pytest.raises(TsaUnavailableError) as info:
        await stamper.async_timestamp(DIGEST, "sha256")
    assert flaky_tsa.requests == 2
    assert info.value.fields["attempts"] == 2
    # gave up on its own per-attempt timeout, not on the server's 5 s answers
    assert "no complete answer within 0.3 s" in info.value.detail


async def test_connection_refused_fails_after_all_attempts(dead_tsa_url, session, attempts):
    stamper = HttpTimeStamper(dead_tsa_url, session, retries=2, backoff=0.01)
    with pytest.raises(TsaUnavailableError) as info:
        await stamper.async_timestamp(DIGEST, "sha256")
    error = info.value
    assert attempts.count == 3
    assert error.fields == {"tsa": dead_tsa_url.split("/")[2], "attempts": 3}
    assert error.detail == (
        f"timestamp authority {dead_tsa_url.split('/')[2]} unavailable after 3 attempts: "
        "connection failed (Connection refused)"
    )
    assert "Traceback" not in str(error) and "\n" not in str(error)
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert error.code == "tsa_unavailable" and error.status == 503


async def test_client_errors_are_not_retried(flaky_tsa, session):
    flaky_tsa.configure("status", failures=10**6, status=404)
    stamper = HttpTimeStamper(flaky_tsa.url, session, backoff=0.01)
    with pytest.raises(TsaUnavailableError) as info:
        await stamper.async_timestamp(DIGEST, "sha256")
    assert flaky_tsa.requests == 1
    assert "HTTP 404" in info.value.detail and "not retried" in info.value.detail


@pytest.mark.parametrize(
    ("userinfo", "query", "headers"),
    [
        ("user:s3cret@", "?token=t0ps3cret", None),
        ("", "", {"Authorization": "Bearer h3ad3rs3cret"}),
    ],
    ids=["url", "header"],
)
async def test_detail_never_shows_credentials_or_path(flaky_tsa, session, userinfo, query, headers):
    flaky_tsa.configure("status", failures=10**6, status=503)
    url = flaky_tsa.url.replace("http://", f"http://{userinfo}") + query
    stamper = HttpTimeStamper(url, session, retries=1, backoff=0.01, headers=headers)
    with pytest.raises(TsaUnavailableError) as info:
        await stamper.async_timestamp(DIGEST, "sha256")
    shown = f"{info.value} {info.value.fields} {stamper!r}"
    for secret in ("s3cret", "t0ps3cret", "h3ad3rs3cret", "/tsa"):
        assert secret not in shown
    assert "HTTP 503" in info.value.detail and flaky_tsa.requests == 2


def test_url_credentials_and_authorization_header_are_refused_up_front():
    with pytest.raises(ConfigurationError):
        HttpTimeStamper(
            "http://u:p@127.0.0.1/tsa",
            session=None,  # type: ignore[arg-type]
            headers={"authorization": "Basic x"},
        )


# ------------------------------------------------------------- response matching


async def test_replayed_response_is_rejected_for_its_nonce(flaky_tsa, session):
    flaky_tsa.configure("replay")
    stamper = HttpTimeStamper(flaky_tsa.url, session, backoff=0.01)
    first = await stamper.async_timestamp(DIGEST, "sha256")  # recorded by the proxy
    assert _tst_info(first)["message_imprint"]["hashed_message"].native == DIGEST
    with pytest.raises(TsaUnavailableError) as info:
        await stamper.async_timestamp(DIGEST, "sha256")  # same digest, old nonce
    assert "nonce mismatch" in info.value.detail
    assert flaky_tsa.requests == 1 + 3


async def test_replayed_response_is_rejected_for_its_imprint(flaky_tsa, session):
    flaky_tsa.configure("replay")
    stamper = HttpTimeStamper(flaky_tsa.url, session, backoff=0.01)
    stamper.include_nonce = False  # leaves the message imprint as the only binding
    await stamper.async_timestamp(DIGEST, "sha256")
    other = hashlib.sha256(b"another document").digest()
    with pytest.raises(TsaUnavailableError) as info:
        await stamper.async_timestamp(other, "sha256")
    assert "message imprint mismatch" in info.value.detail
    assert flaky_tsa.requests == 1 + 3


# ------------------------------------------------------------- development TSA


def _throwaway_tsa():
    now = dt.datetime.now(dt.UTC)

    def cert(subject, issuer, key, signing_key, *, ca: bool):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
        return builder.sign(signing_key, hashes.SHA256())

    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = cert("Throwaway Root", "Throwaway Root", root_key, root_key, ca=True)
    tsa = cert("Throwaway TSA", "Throwaway Root", tsa_key, root_key, ca=False)
    return root, tsa, tsa_key


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _pkcs8(key: rsa.RSAPrivateKey, encoding=serialization.Encoding.DER) -> bytes:
    return key.private_bytes(
        encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


async def test_dev_timestamper_token_verifies_against_its_tsa_certificate():
    from asn1crypto import keys

    root, tsa, tsa_key = _throwaway_tsa()
    stamper = dev_timestamper(_asn1(tsa), keys.PrivateKeyInfo.load(_pkcs8(tsa_key)), [_asn1(root)])
    token = await stamper.async_timestamp(DIGEST, "sha256")

    embedded = {c.chosen.dump() for c in token["content"]["certificates"]}
    assert _asn1(root).dump() in embedded and _asn1(tsa).dump() in embedded
    context = ValidationContext(trust_roots=[_asn1(root)], revocation_mode="soft-fail")
    status = await _token_status(token, context, DIGEST)
    assert status.intact and status.valid and status.trusted, status.summary()
    assert status.signing_cert.dump() == _asn1(tsa).dump()
    # not trusted when anchored elsewhere
    _, other_root_tsa, _ = _throwaway_tsa()
    elsewhere = ValidationContext(trust_roots=[_asn1(other_root_tsa)], revocation_mode="soft-fail")
    assert not (await _token_status(token, elsewhere, DIGEST)).trusted


async def test_load_dev_timestamper_reads_pem_files(tmp_path):
    root, tsa, tsa_key = _throwaway_tsa()
    (tmp_path / "tsa.pem").write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tsa.key.pem").write_bytes(_pkcs8(tsa_key, serialization.Encoding.PEM))
    (tmp_path / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    stamper = load_dev_timestamper(
        tmp_path / "tsa.pem", tmp_path / "tsa.key.pem", [tmp_path / "root.pem"]
    )
    token = await stamper.async_timestamp(DIGEST, "sha256")
    context = ValidationContext(trust_roots=[_asn1(root)], revocation_mode="soft-fail")
    status = await _token_status(token, context, DIGEST)
    assert status.intact and status.valid and status.trusted, status.summary()


# ------------------------------------------------------------- PAdES end to end


def _one_page_pdf() -> bytes:
    writer = PdfFileWriter()
    font = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/Helvetica"),
        }
    )
    resources = generic.DictionaryObject(
        {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): writer.add_object(font)})}
    )
    content = generic.StreamObject(stream_data=b"BT /F1 18 Tf 72 760 Td (DocGate test) Tj ET")
    writer.insert_page(PageObject(writer.add_object(content), (0, 0, 595, 842), resources))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


async def _sign(test_pki, session, p12, *, lt: bool) -> bytes:
    provider = Pkcs12KeyProvider.from_bytes(p12.read(), p12.password)
    meta = PdfSignatureMetadata(
        field_name="Sig1",
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        embed_validation_info=lt,
        validation_context=_context(test_pki.root_cert, session) if lt else None,
    )
    signer = PdfSigner(
        meta, signer=provider.signer(), timestamper=HttpTimeStamper(test_pki.tsa_url, session)
    )
    out = await signer.async_sign_pdf(
        IncrementalPdfFileWriter(BytesIO(_one_page_pdf())), output=BytesIO()
    )
    return out.getvalue()


async def _validate(test_pki, session, data: bytes):
    reader = PdfFileReader(BytesIO(data))
    (embedded,) = reader.embedded_signatures
    status = await async_validate_pdf_signature(
        embedded, signer_validation_context=_context(test_pki.root_cert, session)
    )
    return reader, status


@pytest.mark.parametrize("lt", [False, True], ids=["B-T", "B-LT"])
async def test_pades_signature_with_http_timestamp_validates(test_pki, session, lt):
    p12 = test_pki.agencies["000.00.00.H41"]
    reader, status = await _validate(test_pki, session, await _sign(test_pki, session, p12, lt=lt))

    assert status.intact and status.valid and status.trusted, status.summary()
    assert status.signing_cert.dump() == p12.certificate.dump()
    assert status.signing_cert.subject.native["organization_name"] == (
        "Ủy ban nhân dân tỉnh Thử nghiệm"
    )
    ts = status.timestamp_validity
    assert ts is not None and ts.intact and ts.valid and ts.trusted, ts and ts.summary()
    assert ts.signing_cert.dump() == test_pki.tsa_cert.dump()
    assert status.bottom_line

    if lt:
        dss = DocumentSecurityStore.read_dss(reader)
        assert dss.ocsps or dss.crls
        responses = [ocsp.OCSPResponse.load(ref.get_object().data) for ref in dss.ocsps]
        assert all(r["response_status"].native == "successful" for r in responses)
        crls = [crl.CertificateList.load(ref.get_object().data) for ref in dss.crls]
        assert all(
            c.issuer in (test_pki.root_cert.subject, test_pki.intermediate_cert.subject)
            for c in crls
        )
        embedded_certs = {c.dump() for c in dss.load_certs()}
        assert test_pki.intermediate_cert.dump() in embedded_certs
    else:
        assert "/DSS" not in reader.root


async def test_revoked_signer_is_reported_revoked(test_pki, session):
    _reader, status = await _validate(
        test_pki, session, await _sign(test_pki, session, test_pki.revoked, lt=False)
    )
    assert status.intact and status.valid
    assert status.revoked and not status.bottom_line, status.summary()


def test_pki_material(test_pki):
    assert test_pki.root_pem == pem.armor("CERTIFICATE", test_pki.root_cert.dump())
    assert set(test_pki.agencies) == {"000.00.00.H41", "000.00.01.H41", "000.00.02.H41"}
    for p12 in (*test_pki.agencies.values(), test_pki.revoked):
        provider = Pkcs12KeyProvider.from_bytes(p12.read(), p12.password)
        assert provider.certificate.dump() == p12.certificate.dump()
        assert [c.dump() for c in provider.chain] == [
            test_pki.intermediate_cert.dump(),
            test_pki.root_cert.dump(),
        ]
        usage = p12.certificate.key_usage_value.native
        assert {"digital_signature", "non_repudiation"} <= set(usage)
        assert p12.certificate.crl_distribution_points_value is not None
        assert p12.certificate.ocsp_urls == [test_pki.ocsp_url]
        assert test_pki.base_url in p12.certificate.crl_distribution_points[0].url
