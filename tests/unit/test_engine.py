"""The signing engine in-process with the development PKI: generated damage never
escapes as anything but a SigningError, and a too-small reservation is recovered."""

from __future__ import annotations

import asyncio
import datetime as dt
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils.reader import PdfFileReader

import signing.engine as engine
from signing.devpki import DevAgency
from signing.engine import sign_pdf
from signing.errors import SigningError, UnknownAgencyError
from signing.options import Appearance, Level, SignOptions
from signing.runtime import development_spec, open_context
from tests.fixtures.pdfs import simple_pdf

AGENCY = "000.00.00.H41"
NOW = dt.datetime(2026, 11, 29, 3, 59, 4, tzinfo=dt.UTC)
BASE = simple_pdf(2)


@pytest.fixture(scope="module")
def ctx(dev_pki):
    spec = development_spec(dev_pki, [DevAgency(AGENCY, "Ủy ban nhân dân tỉnh Thử nghiệm")])
    loop = asyncio.new_event_loop()
    context = loop.run_until_complete(open_context(spec, None))
    yield loop, context
    loop.close()


def _sign(ctx, data, **kw):
    loop, context = ctx
    options = SignOptions(agency=kw.pop("agency", AGENCY), **kw)
    return loop.run_until_complete(sign_pdf(data, options, context, now=NOW))


@st.composite
def damaged(draw):
    data = bytearray(BASE)
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data) - 1))
        if draw(st.booleans()):
            data[pos] ^= draw(st.integers(1, 255))
        else:
            del data[pos : pos + draw(st.integers(1, 40))]
    return bytes(data)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=damaged(),
    appearance=st.sampled_from([Appearance.AGENCY, Appearance.COPY, Appearance.NONE]),
)
def test_damage_is_a_signing_error_or_a_signature(ctx, data, appearance):
    try:
        result = _sign(ctx, data, level=Level.B_B, appearance=appearance)
    except SigningError as exc:
        assert exc.code in {"not_a_pdf", "damaged_pdf", "document_not_signable", "invalid_options"}
        assert exc.detail
    else:
        assert result.pdf.startswith(data[:5]) and b"/ETSI.CAdES.detached" in result.pdf


def test_reservation_too_small_is_retried(ctx, monkeypatch):
    monkeypatch.setattr(engine, "_CMS_OVERHEAD", -4_000)  # far too small on purpose
    result = _sign(ctx, BASE, level=Level.B_T, appearance=Appearance.NONE)
    assert result.level is Level.B_T


def test_unknown_agency(ctx):
    with pytest.raises(UnknownAgencyError):
        _sign(ctx, BASE, agency="000.00.09.H41")


def test_stamp_time_is_the_signing_time(ctx):
    result = _sign(ctx, BASE, level=Level.B_B, appearance=Appearance.AGENCY)
    assert result.signing_time == NOW
    (sig,) = PdfFileReader(io.BytesIO(result.pdf)).embedded_signatures
    assert sig.self_reported_timestamp == NOW  # /M of the signature dictionary
    attrs = {a["type"].native for a in sig.signer_info["signed_attrs"]}
    assert "signing_time" not in attrs  # PAdES baseline: the time is /M, not a CMS attribute
