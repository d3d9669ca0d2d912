"""POST /v1/sign and the service endpoints, over real HTTP against `docgate serve`."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid

import pytest

from tests.fixtures.pdfs import CORPUS, ENCRYPTED, simple_pdf
from tests.fixtures.poppler import run_pdfsig
from tests.fixtures.tools import missing_component

AGENCY = "000.00.00.H41"
OTHER = "000.00.01.H41"


def _problem(answer, status: int, code: str) -> dict:
    assert answer.status == status, answer.body[:500]
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["code"] == code
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    assert "Traceback" not in body["detail"]
    return body


def test_health_ready_metrics_openapi(service):
    assert service.request("GET", "/healthz").json() == {"status": "ok"}
    ready = service.request("GET", "/readyz")
    assert ready.status == 200 and ready.json()["status"] == "ready"
    assert ready.json()["checks"]["database"] == "ok"
    doc = service.request("GET", "/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert "/v1/sign" in doc["paths"]
    metrics = service.request("GET", "/metrics")
    assert b"docgate_http_requests" in metrics.body


def test_trust_roots_serves_the_development_root(service):
    answer = service.request("GET", "/v1/trust/roots")
    assert answer.status == 200
    assert answer.body.strip() == service.root_pem.read_bytes().strip()


def test_sign_raw_body_default_level(service, tmp_path, dev_nss_db):
    answer = service.sign(simple_pdf(), service.token(AGENCY))
    assert answer.status == 200, answer.body[:300]
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["docgate-level"] == "B-LT"
    uuid.UUID(answer.headers["docgate-record"])
    digest = base64.b64encode(hashlib.sha256(answer.body).digest()).decode()
    assert answer.headers["repr-digest"] == f"sha-256=:{digest}:"
    out = tmp_path / "signed.pdf"
    out.write_bytes(answer.body)
    (sig,) = run_pdfsig(out, dev_nss_db).signatures
    assert sig["Signature Type"] == "ETSI.CAdES.detached"
    assert sig["Signature Validation"] == "Signature is Valid."
    assert sig["Certificate Validation"] == "Certificate is Trusted."
    assert "Total document signed" in sig


def test_sign_multipart_with_options(service):
    answer = service.sign_multipart(
        simple_pdf(3),
        service.token(AGENCY),
        {"level": "B-B", "appearance": "copy", "copy_form": "SAO LỤC", "page": 2},
    )
    assert answer.status == 200, answer.body[:300]
    assert answer.headers["docgate-level"] == "B-B"


def test_signature_record_is_archived_byte_for_byte(service):
    answer = service.sign(simple_pdf(), service.token(AGENCY), "level=B-B")
    assert answer.status == 200
    sha = hashlib.sha256(answer.body).hexdigest()
    blob = service.var_dir / "archive" / "blobs" / sha[:2] / sha
    assert blob.read_bytes() == answer.body
    journal = (service.var_dir / "archive" / "journal.jsonl").read_text()
    assert answer.headers["docgate-record"] in journal


@pytest.mark.parametrize(
    ("token_for", "query", "status", "code"),
    [
        (None, "", 401, "unauthorized"),
        ("bogus", "", 401, "unauthorized"),
        (AGENCY, f"agency={OTHER}", 403, "forbidden"),
        ("admin", "", 422, "invalid_options"),
        ("admin", "agency=999.99.99.Z99", 404, "unknown_agency"),
        ("auditor", f"agency={AGENCY}", 403, "forbidden"),
    ],
)
def test_authorisation(service, token_for, query, status, code):
    token = {
        None: None,
        "bogus": "dg_not-a-real-token",
        "admin": service.tokens["admin"],
        "auditor": service.tokens["auditor"],
    }.get(token_for) or service.tokens["agencies"].get(token_for)
    _problem(service.sign(simple_pdf(), token, query), status, code)


def test_admin_signs_for_a_named_agency(service):
    answer = service.sign(simple_pdf(), service.token(), f"agency={OTHER}&level=B-B")
    assert answer.status == 200


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("level=B-X", "level"),
        ("appearance=fancy", "appearance"),
        ("page=0", "page"),
        ("page=9", "page 9"),
        ("page=abc", "page"),
        ("box=1,2,3", "box"),
        ("box=0,0,1,1", "box"),
        ("copy_form=BAN+SAO", "copy_form"),
        ("colour=red", "unknown option"),
        ("reason=" + "x" * 300, "reason"),
    ],
)
def test_invalid_options(service, query, fragment):
    body = _problem(
        service.sign(simple_pdf(), service.token(AGENCY), query), 422, "invalid_options"
    )
    assert fragment in body["detail"]


def test_not_a_pdf(service):
    _problem(service.sign(b"hello, world", service.token(AGENCY)), 422, "not_a_pdf")
    _problem(service.sign(b"", service.token(AGENCY)), 422, "not_a_pdf")


def test_encrypted_pdf(service):
    path = CORPUS / ENCRYPTED
    if not path.exists():
        missing_component(f"the shared corpus is not at {CORPUS}")
    _problem(service.sign(path.read_bytes(), service.token(AGENCY)), 422, "encrypted_pdf")


def test_damaged_pdf(service):
    pdf = simple_pdf()
    damaged = pdf[: len(pdf) // 2]
    body = _problem(service.sign(damaged, service.token(AGENCY)), 422, "damaged_pdf")
    assert body["detail"]


def test_wrong_media_type(service):
    answer = service.request(
        "POST",
        "/v1/sign",
        simple_pdf(),
        {"Content-Type": "text/plain", "Authorization": f"Bearer {service.token(AGENCY)}"},
    )
    _problem(answer, 415, "unsupported_media_type")


def test_unknown_route_is_problem_json(service):
    _problem(service.request("GET", "/nowhere"), 404, "not_found")


def test_idempotency_key_replays_the_first_answer(service):
    key = uuid.uuid4().hex
    pdf = simple_pdf()
    first = service.sign(pdf, service.token(AGENCY), "level=B-B", {"Idempotency-Key": key})
    second = service.sign(pdf, service.token(AGENCY), "level=B-B", {"Idempotency-Key": key})
    assert first.status == second.status == 200
    assert first.headers["docgate-record"] == second.headers["docgate-record"]
    assert first.body == second.body
    journal = (service.var_dir / "archive" / "journal.jsonl").read_text()
    assert journal.count(first.headers["docgate-record"]) == 1
    other = service.sign(
        simple_pdf(2), service.token(AGENCY), "level=B-B", {"Idempotency-Key": key}
    )
    _problem(other, 422, "idempotency_key_reused")


def test_second_signature_keeps_the_first_valid(service, tmp_path, dev_nss_db):
    # Two different certificates, as with a person's then the agency's signature.
    # (poppler 22.12's pdfsig reports "Unknown issue with Certificate" for the second of
    # two signatures made with the *same* certificate, even when both come from plain
    # pyHanko; a quirk of its NSS certificate cache, not of the file.)
    person = service.sign(
        simple_pdf(),
        service.token(),
        f"agency={OTHER}&level=B-T&appearance=none&reason=Ng%C6%B0%E1%BB%9Di+k%C3%BD",
    )
    assert person.status == 200
    agency = service.sign(person.body, service.token(AGENCY), "level=B-T&appearance=agency")
    assert agency.status == 200, agency.body[:300]
    out = tmp_path / "twice.pdf"
    out.write_bytes(agency.body)
    sigs = run_pdfsig(out, dev_nss_db).signatures
    assert len(sigs) == 2
    for sig in sigs:
        assert sig["Signature Validation"] == "Signature is Valid."
        assert sig["Certificate Validation"] == "Certificate is Trusted."
    assert "Total document signed" in sigs[1]
    # the names pyHanko reads back: Sig1 then Sig2
    assert re.findall(rb"/T \(Sig(\d)\)", agency.body)[:2] in ([b"1", b"2"], [b"2", b"1"])


def test_tiny_page_default_is_invisible_but_explicit_stamp_is_refused(service):
    tiny = simple_pdf(width=4, height=4)
    answer = service.sign(tiny, service.token(AGENCY), "level=B-B")
    assert answer.status == 200
    assert answer.headers["docgate-appearance"] == "none"
    refused = service.sign(tiny, service.token(AGENCY), "level=B-B&appearance=agency")
    body = _problem(refused, 422, "stamp_does_not_fit")
    assert "box" in body["detail"]


def test_default_appearance_is_the_agency_stamp(service):
    answer = service.sign(simple_pdf(), service.token(AGENCY), "level=B-B")
    assert answer.headers["docgate-appearance"] == "agency"
    assert b"/FontFile2" in answer.body  # the embedded stamp font


def test_openapi_lists_every_route_the_service_answers(service):
    doc = service.request("GET", "/openapi.json").json()
    expected = {
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/v1/trust/roots",
        "/v1/sign",
        "/v1/verify",
        "/v1/exchanges",
        "/v1/inbox",
        "/v1/outbox",
        "/v1/exchanges/{id}",
        "/v1/exchanges/{id}/document",
        "/v1/exchanges/{id}/status",
        "/v1/exchanges/{id}/evidence",
        "/v1/agencies",
        "/v1/audit/verify",
    }
    assert expected <= set(doc["paths"])
    for path in doc["paths"].values():
        for operation in path.values():
            for ref in _refs(operation):
                name = ref.rsplit("/", 1)[-1]
                assert name in doc["components"]["schemas"], ref


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)
