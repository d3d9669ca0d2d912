"""Generated input against POST /v1/sign: random bodies, mutated PDFs and random
options never get a 500 or a stack trace, and every refusal is problem+json with a
stable code."""

from __future__ import annotations

import urllib.parse

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.pdfs import simple_pdf

AGENCY = "000.00.00.H41"
BASE = simple_pdf(2)
KNOWN_CODES = {
    "not_a_pdf",
    "encrypted_pdf",
    "damaged_pdf",
    "invalid_options",
    "stamp_does_not_fit",
    "unknown_agency",
    "forbidden",
    "too_large",
    "document_not_signable",
}
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _check(answer) -> None:
    assert answer.status in (200, 403, 404, 413, 422), (answer.status, answer.body[:300])
    if answer.status == 200:
        assert answer.headers["content-type"] == "application/pdf"
        assert b"/ETSI.CAdES.detached" in answer.body
        return
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["code"] in KNOWN_CODES, body
    assert "Traceback" not in body["detail"] and 'File "' not in body["detail"]


@FUZZ
@given(body=st.binary(max_size=4096), header=st.sampled_from([b"", b"%PDF-1.7\n", b"%PDF-"]))
def test_random_bodies(service, body, header):
    _check(service.sign(header + body, service.token(AGENCY), "level=B-B"))


@st.composite
def mutated_pdfs(draw):
    data = bytearray(BASE)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 32))]
        else:
            del data[max(pos, 16) :]
        if not data:
            data = bytearray(b"%")
    return bytes(data)


@FUZZ
@given(pdf=mutated_pdfs())
def test_mutated_pdfs(service, pdf):
    _check(service.sign(pdf, service.token(AGENCY), "level=B-B&appearance=agency"))


option_values = st.one_of(
    st.text(max_size=40),
    st.integers(-20, 20).map(str),
    st.sampled_from(["B-B", "B-T", "agency", "copy", "appendix", "none", "SAO Y", "0,0,100,50"]),
)


@FUZZ
@given(
    options=st.dictionaries(
        st.sampled_from(
            ["level", "appearance", "page", "box", "reason", "location", "number", "copy_form"]
        ),
        option_values,
        max_size=5,
    )
)
def test_random_options(service, options):
    query = urllib.parse.urlencode({"level": "B-B", **options})
    _check(service.sign(BASE, service.token(AGENCY), query))


def test_nothing_unhandled_was_logged(service):
    # runs after the fuzzers in this module: the service logged no unhandled error
    assert "unhandled error" not in service.log()


@FUZZ
@given(pdf=mutated_pdfs())
def test_mutated_documents_to_verify(service, pdf):
    answer = service.request("POST", "/v1/verify", pdf, {"Content-Type": "application/pdf"})
    assert answer.status in (200, 422), (answer.status, answer.body[:300])
    if answer.status == 200:
        report = answer.json()
        assert isinstance(report["valid"], bool) and "summary" in report
    else:
        assert answer.json()["code"] in {
            "not_a_pdf",
            "damaged_pdf",
            "encrypted_pdf",
            "resource_limit",
        }
