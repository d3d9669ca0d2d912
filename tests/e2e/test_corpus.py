"""Every file of the shared real-world corpus, signed over HTTP at every PAdES level and
checked by an independent verifier (poppler's pdfsig trusting only the development root).

The encrypted file must get 422 encrypted_pdf; the one with a damaged object must sign
validly or get a 422 with a clear detail, never a 500.
"""

from __future__ import annotations

import concurrent.futures

import pytest

from tests.fixtures.pdfs import CORPUS, ENCRYPTED, corpus_files
from tests.fixtures.poppler import run_pdfsig
from tests.fixtures.tools import missing_component

AGENCY = "000.00.00.H41"
LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")
DAMAGED_OBJECT = "017-unreadablemetadata.pdf"


@pytest.fixture(scope="module")
def corpus():
    files = corpus_files()
    if not files:
        missing_component(f"the shared corpus is not at {CORPUS}")
    return files


def _check_signed(report, level: str, name: str) -> None:
    sigs = report.signatures
    assert sigs, f"{name} {level}: pdfsig found no signature\n{report.raw}"
    ours = sigs[-1] if level != "B-LTA" else sigs[-2]
    where = f"{name} at {level}: {ours}"
    assert ours["Signature Type"] == "ETSI.CAdES.detached", where
    assert ours["Signature Validation"] == "Signature is Valid.", where
    assert ours["Certificate Validation"] == "Certificate is Trusted.", where
    if level == "B-LTA":
        # The document timestamp comes after the signature and covers the whole file;
        # the signature itself covers its own revision (which holds the DSS).
        assert "Total document signed" in sigs[-1], f"{name}: {sigs[-1]}"
    else:
        assert "Total document signed" in ours, where


@pytest.mark.poppler
@pytest.mark.slow
def test_corpus_signs_and_verifies_at_every_level(service, corpus, dev_nss_db, tmp_path):
    jobs = [(path, level) for path in corpus for level in LEVELS]

    def sign(job):
        path, level = job
        return job, service.sign(path.read_bytes(), service.token(AGENCY), f"level={level}")

    failures: list[str] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        for (path, level), answer in pool.map(sign, jobs):
            name = path.name
            if name == ENCRYPTED:
                assert answer.status == 422 and answer.json()["code"] == "encrypted_pdf"
                continue
            if name == DAMAGED_OBJECT and answer.status == 422:
                assert answer.json()["detail"], "a 422 must say what is wrong"
                continue
            if answer.status != 200:
                failures.append(f"{name} {level}: HTTP {answer.status} {answer.body[:200]!r}")
                continue
            assert answer.headers["docgate-level"] == level
            assert answer.headers["docgate-appearance"] in ("agency", "none")
            out = tmp_path / f"{path.stem}-{level}.pdf"
            out.write_bytes(answer.body)
            try:
                _check_signed(run_pdfsig(out, dev_nss_db), level, name)
            except AssertionError as exc:
                failures.append(str(exc))
    assert not failures, "\n".join(failures)
