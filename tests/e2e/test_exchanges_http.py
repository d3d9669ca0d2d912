"""Exchanges over HTTP against `docgate serve`: agency A signs and sends to B and C,
both find it in their inbox and download identical bytes, B moves it through the edXML
statuses, invalid transitions get 409, an outsider gets 403 everywhere, a recall works,
and the audit chain verifies afterwards."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import subprocess
import sys
import uuid

import pytest

from tests.fixtures.pdfs import simple_pdf
from tests.fixtures.service import exchange_envelope

A, B, C = "000.00.00.H41", "000.00.01.H41", "000.00.02.H41"


def _envelope(to, **extra) -> dict:
    return exchange_envelope(
        to,
        subject="Về việc triển khai văn bản điện tử",
        level="B-LT",
        due_date="2026-12-20",
        **extra,
    )


def _get(service, token, path):
    return service.get_as(token, path)


def _status(service, token, exchange_id, code):
    return service.request(
        "POST",
        f"/v1/exchanges/{exchange_id}/status",
        json.dumps({"code": code, "note": "ghi chú"}).encode(),
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request):
    """Every test here runs against the service on SQLite and on PostgreSQL."""
    return request.getfixturevalue("service" if request.param == "sqlite" else "service_pg")


@pytest.fixture(scope="module")
def outsider(service):
    """Agency D with its own token (added through the API and the CLI, like an operator)."""
    code = f"{random.randint(100, 999)}.00.00.H41"
    added = service.request(
        "POST",
        "/v1/agencies",
        json.dumps({"code": code, "name": "Sở Ngoại vụ", "parent": None}).encode(),
        {"Authorization": f"Bearer {service.token()}", "Content-Type": "application/json"},
    )
    assert added.status == 201, added.body
    env = service.cli_env()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "token",
            "issue",
            "--role",
            "agency",
            "--agency",
            code,
            "--label",
            "outsider",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)["token"]


def test_send_receive_download_and_statuses(service, outsider):
    a, b, c = (service.token(x) for x in (A, B, C))
    sent = service.post_exchange(a, _envelope([B, C]), simple_pdf())
    assert sent.status == 201, sent.body
    answer = sent.json()
    xid, sha = answer["id"], answer["document_sha256"]
    assert {r["agency"] for r in answer["recipients"]} == {B, C}

    for token in (b, c):
        inbox = _get(service, token, "/v1/inbox?limit=50").json()
        assert xid in [item["id"] for item in inbox["items"]]
        doc = _get(service, token, f"/v1/exchanges/{xid}/document")
        assert doc.status == 200 and hashlib.sha256(doc.body).hexdigest() == sha
        digest = base64.b64encode(hashlib.sha256(doc.body).digest()).decode()
        assert doc.headers["repr-digest"] == f"sha-256=:{digest}:"
    assert xid in [i["id"] for i in _get(service, a, "/v1/outbox").json()["items"]]

    # the archived document is signed by A and verifies valid
    report = service.request(
        "POST",
        "/v1/verify",
        _get(service, b, f"/v1/exchanges/{xid}/document").body,
        {"Content-Type": "application/pdf"},
    ).json()
    assert report["valid"] and report["signatures"][0]["level"] == "B-LT"

    for code in ("01", "03", "04", "05", "06"):
        moved = _status(service, b, xid, code)
        assert moved.status == 200, (code, moved.body)
    late = _status(service, b, xid, "03")
    assert late.status == 409 and late.json()["code"] == "invalid_transition"
    skip = _status(service, c, xid, "06")  # C has not even acknowledged it
    assert skip.status == 409

    detail = _get(service, a, f"/v1/exchanges/{xid}").json()
    assert detail  # the sender sees the envelope and every recipient's history

    # an outsider gets 403 everywhere
    for path in (f"/v1/exchanges/{xid}", f"/v1/exchanges/{xid}/document"):
        denied = _get(service, outsider, path)
        assert denied.status == 403 and denied.json()["code"] == "forbidden", path
    assert _status(service, outsider, xid, "01").status == 403
    assert xid not in [i["id"] for i in _get(service, outsider, "/v1/inbox").json()["items"]]
    assert service.post_exchange(outsider, _envelope([B]), simple_pdf()).status == 403


def test_recall(service):
    a, c = service.token(A), service.token(C)
    xid = service.post_exchange(a, _envelope([C]), simple_pdf()).json()["id"]
    assert _status(service, c, xid, "01").status == 200
    assert _status(service, a, xid, "13").status == 200  # the sender asks to recall
    assert _status(service, c, xid, "15").status == 200  # the recipient agrees
    assert _status(service, c, xid, "03").status == 409  # recalled: final


def test_bad_envelopes_name_the_field(service):
    a = service.token(A)
    cases = [
        (_envelope([B, B]), "to"),
        (_envelope(["B41"]), "to"),
        (_envelope([B], document={"subject": "x" * 501}), "document"),
        (_envelope([B], exchanged_at="2026-11-02T09:30:00+07:00"), "exchanged_at"),
    ]
    for envelope, field in cases:
        answer = service.post_exchange(a, envelope, simple_pdf())
        assert answer.status == 422, answer.body
        assert field in (answer.json().get("field") or ""), answer.json()
    unknown = service.post_exchange(a, _envelope(["999.99.99.Z99"]), simple_pdf())
    assert unknown.status == 422 and unknown.json()["code"] == "unknown_agency"
    unsigned = service.post_exchange(a, _envelope([B], sign=False), simple_pdf())
    assert unsigned.status == 422 and unsigned.json()["code"] == "signature_invalid"


def test_idempotent_retry_creates_nothing_new(service):
    a = service.token(A)
    key = uuid.uuid4().hex
    envelope, pdf = _envelope([B]), simple_pdf()
    first = service.post_exchange(a, envelope, pdf, {"Idempotency-Key": key})
    again = service.post_exchange(a, envelope, pdf, {"Idempotency-Key": key})
    assert first.status == 201 and again.status == 200
    assert first.json()["id"] == again.json()["id"]


def test_audit_chain_verifies_after_the_exchanges(service):
    answer = _get(service, service.tokens["auditor"], "/v1/audit/verify")
    assert answer.status == 200, answer.body
    verdict = answer.json()
    assert verdict["ok"] is True and verdict["entries"] > 5
    denied = _get(service, service.token(A), "/v1/audit/verify")
    assert denied.status == 403


def test_resending_the_same_document_is_reported_as_a_duplicate(service):
    a = service.token(A)
    pdf, envelope = simple_pdf(2), _envelope([B, C])
    first = service.post_exchange(a, envelope, pdf).json()
    second = service.post_exchange(a, envelope, pdf)
    # allowed (201) but reported, although the gateway signed it anew (other bytes)
    assert second.status == 201
    assert second.json()["duplicate_of"] == first["id"]
    assert second.json()["document_sha256"] != first["document_sha256"]
    other = service.post_exchange(a, _envelope([B]), pdf)  # another recipient set: not a duplicate
    assert other.json()["duplicate_of"] is None
