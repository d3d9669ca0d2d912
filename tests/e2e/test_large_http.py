"""Large documents over HTTP against `docgate serve`: a body above the spool threshold
(4 MiB by default) goes to a file under var/tmp, is signed and verified from that file
by a worker, answered from the archive by sendfile, and leaves nothing behind in the
spool folder. The same document must come out identical to what pdfsig and DocGate's
own verifier accept."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from tests.fixtures.pdfs import scanned_pdf
from tests.fixtures.poppler import run_pdfsig
from tests.fixtures.service import exchange_envelope, multipart_body

pytestmark = pytest.mark.poppler

AGENCY = "000.00.00.H41"
RECIPIENT = "000.00.01.H41"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def large_pdf(tmp_path_factory) -> bytes:
    path = scanned_pdf(tmp_path_factory.mktemp("large") / "scan.pdf", 9 * MIB, pages=3)
    return path.read_bytes()


def _spool_files(service) -> list:
    folder = service.var_dir / "tmp"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_large_document_signs_from_a_spooled_file(service, large_pdf, tmp_path, dev_nss_db):
    answer = service.sign(large_pdf, service.token(AGENCY), "level=B-LT")
    assert answer.status == 200, answer.body[:300]
    signed = answer.body
    assert signed.startswith(large_pdf)  # an incremental update: the original bytes first
    assert len(signed) > len(large_pdf)
    digest = base64.b64encode(hashlib.sha256(signed).digest()).decode()
    assert answer.headers["repr-digest"] == f"sha-256=:{digest}:"
    archived = service.var_dir / "archive" / "blobs" / hashlib.sha256(signed).hexdigest()[:2]
    assert (archived / hashlib.sha256(signed).hexdigest()).read_bytes() == signed
    assert _spool_files(service) == []

    out = tmp_path / "signed.pdf"
    out.write_bytes(signed)
    (sig,) = run_pdfsig(out, dev_nss_db).signatures
    assert sig["Signature Validation"] == "Signature is Valid."
    assert "Total document signed" in sig

    report = service.request(
        "POST", "/v1/verify", signed, {"Content-Type": "application/pdf"}
    ).json()
    assert report["valid"] is True, report
    assert report["document"]["size"] == len(signed)
    assert report["document"]["sha256"] == hashlib.sha256(signed).hexdigest()
    assert _spool_files(service) == []


def test_large_multipart_upload_and_tampering_is_caught(service, large_pdf):
    body, ctype = multipart_body(
        [
            ("options", None, "application/json", json.dumps({"level": "B-B"}).encode()),
            ("file", "scan.pdf", "application/pdf", large_pdf),
        ]
    )
    answer = service.request(
        "POST",
        "/v1/sign",
        body,
        {"Content-Type": ctype, "Authorization": f"Bearer {service.token(AGENCY)}"},
    )
    assert answer.status == 200, answer.body[:300]
    assert answer.headers["docgate-level"] == "B-B"
    signed = bytearray(answer.body)
    # flip one pixel byte deep inside the signed range (an image in the middle)
    signed[len(large_pdf) // 2] ^= 0xFF
    report = service.request(
        "POST", "/v1/verify", bytes(signed), {"Content-Type": "application/pdf"}
    ).json()
    assert report["valid"] is False
    assert report["signatures"][0]["intact"] is False
    assert _spool_files(service) == []


def test_large_body_that_is_not_a_pdf_gets_a_problem_and_no_leftover(service):
    junk = b"\x00" * (5 * MIB)
    answer = service.sign(junk, service.token(AGENCY))
    assert answer.status == 422, answer.body[:300]
    assert answer.json()["code"] == "not_a_pdf"
    verify = service.request("POST", "/v1/verify", junk, {"Content-Type": "application/pdf"})
    assert verify.status == 422 and verify.json()["code"] == "not_a_pdf"
    assert _spool_files(service) == []


def test_large_exchange_is_signed_archived_and_downloaded_from_files(service, large_pdf):
    envelope = exchange_envelope([RECIPIENT], subject="Về việc gửi hồ sơ quét", level="B-B")
    answer = service.post_exchange(service.token(AGENCY), envelope, large_pdf)
    assert answer.status == 201, answer.body[:300]
    created = answer.json()
    assert _spool_files(service) == []  # the upload and the signed file went to the archive
    doc = service.get_as(service.token(RECIPIENT), f"/v1/exchanges/{created['id']}/document")
    assert doc.status == 200 and doc.headers["content-type"] == "application/pdf"
    assert doc.body.startswith(large_pdf) and len(doc.body) > len(large_pdf)
    sha = hashlib.sha256(doc.body)
    assert created["document_sha256"] == sha.hexdigest()
    assert doc.headers["repr-digest"] == f"sha-256=:{base64.b64encode(sha.digest()).decode()}:"
    report = service.request(
        "POST", "/v1/verify", doc.body, {"Content-Type": "application/pdf"}
    ).json()
    assert report["valid"] is True, report["summary"]
    # already signed elsewhere: verified from the spooled file and archived as it is
    again = exchange_envelope([RECIPIENT], subject="Chuyển tiếp hồ sơ", sign=False)
    forwarded = service.post_exchange(service.token(AGENCY), again, doc.body)
    assert forwarded.status == 201, forwarded.body[:300]
    assert forwarded.json()["document_sha256"] == sha.hexdigest()
    assert _spool_files(service) == []
