"""POST /v1/verify over real HTTP: open endpoint, report shape, bad input, and hostile
documents (Flate bombs, reference cycles, deep nesting) sent concurrently with valid
requests: the valid ones still answer correctly and the service stays up."""

from __future__ import annotations

import concurrent.futures
import io
import uuid
import zlib

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from tests.fixtures.hostile import flate_bomb_pdf, nested_arrays_pdf, reference_cycle_pdf
from tests.fixtures.pdfs import CORPUS, ENCRYPTED, simple_pdf

AGENCY = "000.00.00.H41"


def _verify(service, body: bytes, headers=None):
    return service.request(
        "POST", "/v1/verify", body, {"Content-Type": "application/pdf", **(headers or {})}
    )


def test_verify_is_open_and_reports(service):
    signed = service.sign(simple_pdf(), service.token(AGENCY), "level=B-LT").body
    answer = _verify(service, signed)
    assert answer.status == 200
    report = answer.json()
    assert report["valid"] is True
    assert report["document"]["size"] == len(signed) and report["document"]["revisions"] == 2
    (sig,) = report["signatures"]
    assert sig["indication"] == "TOTAL_PASSED" and sig["level"] == "B-LT"
    assert set(sig) >= {
        "field",
        "indication",
        "subindication",
        "intact",
        "trusted",
        "coverage",
        "modifications",
        "level",
        "signer",
        "signing_time",
        "timestamp_time",
        "messages",
    }
    assert set(report["summary"]) == {"vi", "en"}


def test_verify_multipart(service):
    signed = service.sign(simple_pdf(), service.token(AGENCY), "level=B-B").body
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n".encode()
        + signed
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = service.request(
        "POST", "/v1/verify", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert answer.status == 200 and answer.json()["valid"] is True


def test_tampered_document_is_not_valid(service):
    signed = bytearray(service.sign(simple_pdf(), service.token(AGENCY), "level=B-B").body)
    pos = signed.find(b"Page 1")
    signed[pos : pos + 6] = b"Page 9"
    report = _verify(service, bytes(signed)).json()
    assert report["valid"] is False
    assert report["signatures"][0]["indication"] == "TOTAL_FAILED"
    assert report["signatures"][0]["subindication"] == "HASH_FAILURE"


def test_bad_input(service):
    answer = _verify(service, b"definitely not a pdf")
    assert answer.status == 422 and answer.json()["code"] == "not_a_pdf"
    if (CORPUS / ENCRYPTED).exists():
        answer = _verify(service, (CORPUS / ENCRYPTED).read_bytes())
        assert answer.status == 422 and answer.json()["code"] == "encrypted_pdf"
    unsigned = _verify(service, simple_pdf()).json()
    assert unsigned["valid"] is False and unsigned["signatures"] == []


def _dss_bomb(signed: bytes) -> bytes:
    """A signed document to which a later revision adds a DSS whose CRL stream inflates
    to 1 GiB: verification must decode it, so limits are hit for real."""
    comp = zlib.compressobj(9)
    zeros = bytes(8 * 1024 * 1024)
    data = b"".join(comp.compress(zeros) for _ in range(128)) + comp.flush()
    w = IncrementalPdfFileWriter(io.BytesIO(signed))
    stream = generic.StreamObject(
        {generic.pdf_name("/Filter"): generic.pdf_name("/FlateDecode")}, encoded_data=data
    )
    dss = generic.DictionaryObject(
        {generic.pdf_name("/CRLs"): generic.ArrayObject([w.add_object(stream)])}
    )
    w.root[generic.pdf_name("/DSS")] = w.add_object(dss)
    w.update_root()
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def test_hostile_documents_concurrently_with_valid_ones(service):
    valid = service.sign(simple_pdf(), service.token(AGENCY), "level=B-T").body
    hostile = {
        "flate bomb": flate_bomb_pdf(),
        "DSS CRL bomb": _dss_bomb(valid),
        "reference cycle": reference_cycle_pdf(),
        "100k nested arrays": nested_arrays_pdf(),
    }
    jobs = [(name, body) for name, body in hostile.items()] + [("valid", valid)] * 8
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        answers = list(pool.map(lambda job: (job[0], _verify(service, job[1])), jobs))
    for name, answer in answers:
        assert answer.status in (200, 422), (name, answer.status, answer.body[:300])
        if name == "valid":
            assert answer.status == 200 and answer.json()["valid"] is True
        elif answer.status == 200:
            assert answer.json()["valid"] is False, name
        else:
            assert answer.json()["code"] in {"damaged_pdf", "resource_limit", "not_a_pdf"}, name
    assert service.request("GET", "/healthz").json() == {"status": "ok"}
    assert service.process.poll() is None  # the service is still running
    again = _verify(service, valid)
    assert again.status == 200 and again.json()["valid"] is True
    assert "unhandled error" not in service.log()
