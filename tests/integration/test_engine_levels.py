"""DocGate's signing engine as production runs it: keys from PKCS#12 files and from a
SoftHSM2 token, the RFC 3161 client over HTTP and revocation data fetched over HTTP
from the Certomancer test PKI on loopback. Each result is validated with pyHanko."""

from __future__ import annotations

import datetime as dt
import io

import aiohttp
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from signing.engine import TsaFailurePolicy, sign_pdf
from signing.errors import CertificateProblemError, ConfigurationError, TsaUnavailableError
from signing.keys.base import KeySpec, ProviderKind
from signing.options import Appearance, Level, SignOptions
from signing.runtime import AgencySpec, SigningSpec, TrustSpec, TsaSpec, close_context, open_context
from tests.fixtures.pdfs import simple_pdf

AGENCY = "000.00.00.H41"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _p12_spec(p12, tmp_path, code=AGENCY, name="Ủy ban nhân dân tỉnh Thử nghiệm") -> AgencySpec:
    pw = tmp_path / f"{code}.pw"
    pw.write_bytes(p12.password + b"\n")
    return AgencySpec(
        code, name, KeySpec(ProviderKind.PKCS12, path=str(p12.path), password_file=str(pw))
    )


def _spec(test_pki, tmp_path, agencies, *, tsa_url=None, failure=TsaFailurePolicy.FAIL):
    root = tmp_path / "root.pem"
    root.write_bytes(test_pki.root_pem)
    return SigningSpec(
        agencies=tuple(agencies),
        tsa=TsaSpec(url=tsa_url or test_pki.tsa_url, timeout=5, retries=1),
        trust=TrustSpec(roots=(str(root),), allow_fetching=True, fetch_timeout=5),
        tsa_failure=failure,
        refuse_development_keys=True,
    )


async def _validate(pdf: bytes, root, session) -> tuple:
    vc = ValidationContext(
        trust_roots=[root],
        allow_fetching=True,
        fetcher_backend=AIOHttpFetcherBackend(session),
        revocation_mode="hard-fail",
    )
    reader = PdfFileReader(io.BytesIO(pdf))
    sig = reader.embedded_signatures[0]
    status = await async_validate_pdf_signature(sig, signer_validation_context=vc)
    return reader, status


@pytest.mark.parametrize("level", list(Level))
async def test_every_level_validates(test_pki, tmp_path, level):
    async with aiohttp.ClientSession() as session:
        ctx = await open_context(
            _spec(test_pki, tmp_path, [_p12_spec(test_pki.agencies[AGENCY], tmp_path)]), session
        )
        try:
            options = SignOptions(agency=AGENCY, level=level, appearance=Appearance.AGENCY)
            result = await sign_pdf(simple_pdf(), options, ctx, now=NOW)
        finally:
            close_context(ctx)
        assert result.level is level
        reader, status = await _validate(result.pdf, test_pki.root_cert, session)
        assert status.intact and status.valid and status.trusted, status.pretty_print_details()
        assert status.md_algorithm == "sha256"
        sig = reader.embedded_signatures[0]
        assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
        if level.needs_timestamp:
            assert status.timestamp_validity is not None
            assert status.timestamp_validity.intact and status.timestamp_validity.valid
            assert status.timestamp_validity.trusted
        else:
            assert status.timestamp_validity is None
        if level.needs_revocation:
            dss = DocumentSecurityStore.read_dss(reader)
            assert dss.ocsps or dss.crls, "B-LT needs revocation data in the DSS"
            dss_certs = {c.dump() for c in dss.load_certs()}
            assert test_pki.tsa_cert.dump() in dss_certs, "the TSA chain belongs in the DSS too"
            # the DSS is in the signature's own revision: nothing after it but the LTA
            assert sig.coverage.name == (
                "ENTIRE_REVISION" if level is Level.B_LTA else "ENTIRE_FILE"
            )
        if level is Level.B_LTA:
            assert len(reader.embedded_signatures) == 2
            ts = reader.embedded_signatures[1]
            assert ts.sig_object["/Type"] == "/DocTimeStamp"
            vc = ValidationContext(
                trust_roots=[test_pki.root_cert],
                allow_fetching=True,
                fetcher_backend=AIOHttpFetcherBackend(session),
            )
            ts_status = await async_validate_pdf_timestamp(ts, validation_context=vc)
            assert ts_status.intact and ts_status.valid and ts_status.trusted


async def test_revoked_signer_cannot_sign_at_b_lt(test_pki, tmp_path):
    spec = _spec(test_pki, tmp_path, [_p12_spec(test_pki.revoked, tmp_path)])
    async with aiohttp.ClientSession() as session:
        ctx = await open_context(spec, session)
        try:
            with pytest.raises(CertificateProblemError) as exc:
                await sign_pdf(
                    simple_pdf(), SignOptions(agency=AGENCY, level=Level.B_LT), ctx, now=NOW
                )
        finally:
            close_context(ctx)
    assert "revoked" in exc.value.detail.lower()


async def test_tsa_down_fails_or_downgrades(test_pki, tmp_path, dead_tsa_url):
    agencies = [_p12_spec(test_pki.agencies[AGENCY], tmp_path)]
    async with aiohttp.ClientSession() as session:
        for failure in TsaFailurePolicy:
            spec = _spec(test_pki, tmp_path, agencies, tsa_url=dead_tsa_url, failure=failure)
            ctx = await open_context(spec, session)
            options = SignOptions(agency=AGENCY, level=Level.B_T, appearance=Appearance.NONE)
            try:
                if failure is TsaFailurePolicy.FAIL:
                    with pytest.raises(TsaUnavailableError):
                        await sign_pdf(simple_pdf(), options, ctx, now=NOW)
                else:
                    result = await sign_pdf(simple_pdf(), options, ctx, now=NOW)
                    assert result.level is Level.B_B
                    assert b"/ETSI.RFC3161" not in result.pdf
            finally:
                close_context(ctx)


async def test_production_refuses_development_keys(dev_pki, test_pki, tmp_path):
    dev_agency = AgencySpec(
        AGENCY,
        "dev",
        KeySpec(
            ProviderKind.PKCS12,
            path=str(dev_pki.agency_p12(AGENCY)),
            password_file=str(dev_pki.password_file),
        ),
    )
    with pytest.raises(ConfigurationError, match="development certificate"):
        await open_context(_spec(test_pki, tmp_path, [dev_agency]), None)


@pytest.mark.pkcs11
@pytest.mark.parametrize("level", [Level.B_B, Level.B_T])
async def test_pkcs11_key_in_softhsm_signs_through_the_engine(
    softhsm_token, test_pki, tmp_path, level
):
    root = tmp_path / "hsm-root.pem"
    root.write_bytes(softhsm_token.root_pem)
    spec = SigningSpec(
        agencies=(AgencySpec(AGENCY, "Ủy ban nhân dân tỉnh HSM", softhsm_token.spec),),
        tsa=TsaSpec(url=test_pki.tsa_url, timeout=5, retries=1),
        trust=TrustSpec(roots=(str(root),), allow_fetching=False),
    )
    async with aiohttp.ClientSession() as session:
        ctx = await open_context(spec, session)
        try:
            result = await sign_pdf(
                simple_pdf(), SignOptions(agency=AGENCY, level=level), ctx, now=NOW
            )
        finally:
            close_context(ctx)
        vc = ValidationContext(
            trust_roots=[softhsm_token.root_asn1, test_pki.root_cert],
            allow_fetching=False,
            revocation_mode="soft-fail",
        )
        reader = PdfFileReader(io.BytesIO(result.pdf))
        status = await async_validate_pdf_signature(
            reader.embedded_signatures[0], signer_validation_context=vc
        )
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert (status.timestamp_validity is not None) == (level is Level.B_T)
