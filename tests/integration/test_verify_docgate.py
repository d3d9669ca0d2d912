"""Documents signed by DocGate verify valid at every level, with the right level found,
and so does every file of the shared corpus after signing."""

from __future__ import annotations

import pytest

from signing.errors import DamagedPdfError
from tests.fixtures.pdfs import ENCRYPTED, corpus_files, simple_pdf
from tests.fixtures.tools import missing_component

LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")
DAMAGED_OBJECT = "017-unreadablemetadata.pdf"


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("appearance", ["agency", "none"])
def test_docgate_signatures_verify(sign_doc, verify_doc, level, appearance):
    report = verify_doc(sign_doc(simple_pdf(), level=level, appearance=appearance))
    assert report["valid"], report
    sig = report["signatures"][0]
    assert sig["indication"] == "TOTAL_PASSED" and sig["subindication"] is None
    assert sig["level"] == level
    assert sig["signer"]["common_name"] == "Ủy ban nhân dân tỉnh Thử nghiệm"
    assert sig["signing_time"].endswith("+07:00")
    assert (sig["timestamp_time"] is not None) == (level != "B-B")
    if level == "B-LTA":
        assert report["signatures"][1]["kind"] == "document_timestamp"
        assert sig["modifications"] == "LTA_UPDATES"
    else:
        assert sig["coverage"] == "ENTIRE_FILE" and sig["modifications"] == "NONE"
    assert "hợp lệ" in report["summary"]["vi"] and "validly signed" in report["summary"]["en"]


def test_person_then_agency_signatures_verify(sign_doc, verify_doc):
    first = sign_doc(simple_pdf(), level="B-T", agency="000.00.01.H41", appearance="none")
    both = sign_doc(first, level="B-LT", agency="000.00.00.H41", appearance="agency")
    report = verify_doc(both)
    assert report["valid"], report
    assert [s["indication"] for s in report["signatures"]] == ["TOTAL_PASSED", "TOTAL_PASSED"]
    assert report["document"]["revisions"] >= 3


def test_altered_content_is_said_so_in_the_summary(sign_doc, verify_doc):
    signed = bytearray(sign_doc(simple_pdf(), level="B-B", appearance="none"))
    at = signed.index(b"Page 1")  # the page text, inside the signed range
    signed[at : at + 6] = b"Page 9"
    report = verify_doc(bytes(signed))
    assert report["valid"] is False and report["signatures"][0]["intact"] is False
    assert "nội dung đã ký bị sửa" in report["summary"]["vi"]
    assert "the signed content was altered" in report["summary"]["en"]
    assert "không có thay đổi trái phép" not in report["summary"]["vi"]
    assert "no disallowed change" not in report["summary"]["en"]


def test_unsigned_document_is_not_valid(verify_doc):
    report = verify_doc(simple_pdf())
    assert report["valid"] is False and report["signatures"] == []
    assert "không có chữ ký" in report["summary"]["vi"]


@pytest.mark.slow
def test_corpus_after_signing_verifies(sign_doc, verify_doc):
    files = corpus_files()
    if not files:
        missing_component("the shared corpus is not present")
    failures = []
    for i, path in enumerate(files):
        if path.name == ENCRYPTED:
            continue
        level = LEVELS[i % len(LEVELS)]
        try:
            signed = sign_doc(path.read_bytes(), level=level, appearance=None if i % 2 else "none")
        except DamagedPdfError:
            if path.name == DAMAGED_OBJECT:
                continue  # its xref is broken; the corpus NOTICE allows a clear 422
            raise
        report = verify_doc(signed)
        if not report["valid"]:
            failures.append(f"{path.name} at {level}: {report['signatures']} {report['messages']}")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("subfilter", ["adbe.pkcs7.detached", "ETSI.CAdES.detached"])
def test_corpus_signed_by_another_tool_verifies(dev_pki, verify_doc, subfilter):
    """pyHanko's own signer (SimpleSigner, its default flow) on the corpus."""
    import io

    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata

    files = corpus_files()
    if not files:
        missing_component("the shared corpus is not present")
    password = dev_pki.password_file.read_text().splitlines()[0].encode()
    signer = signers.SimpleSigner.load_pkcs12(
        str(dev_pki.agency_p12("000.00.01.H41")), passphrase=password
    )
    meta = PdfSignatureMetadata(
        field_name="Signature1",
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter(f"/{subfilter}"),
    )
    failures = []
    for path in files:
        if path.name in (ENCRYPTED, DAMAGED_OBJECT):
            continue
        try:
            writer = IncrementalPdfFileWriter(io.BytesIO(path.read_bytes()), strict=False)
            signed = signers.sign_pdf(writer, meta, signer=signer).getvalue()
        except Exception as exc:  # noqa: BLE001 - the other tool refuses some files
            failures.append(f"{path.name}: the other tool could not sign it: {exc!r}")
            continue
        report = verify_doc(signed)
        if not report["valid"]:
            failures.append(f"{path.name}: {report['signatures']} {report['messages']}")
    assert not failures, "\n".join(failures)
