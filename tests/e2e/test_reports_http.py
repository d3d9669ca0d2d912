"""The monthly report over HTTP against `docgate serve`: agency A sends electronically and
registers paper, the admin runs the current month (before and after, so the figures are
compared as differences: the service is shared with the other end-to-end tests), reads it
as JSON and CSV; an agency sees only its own row and gets 403 for another's."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from tests.fixtures.pdfs import simple_pdf
from tests.fixtures.service import exchange_envelope

A, B, C = "000.00.00.H41", "000.00.01.H41", "000.00.02.H41"
PATH = "/v1/reports/e-exchange"


def _envelope(to, **extra) -> dict:
    return exchange_envelope(
        to, subject="Về việc báo cáo tỷ lệ văn bản điện tử", level="B-B", **extra
    )


def _get(service, token, query):
    return service.get_as(token, f"{PATH}?{query}")


def _run(service, token, month):
    return service.request("POST", f"{PATH}/{month}/run", b"", {"Authorization": f"Bearer {token}"})


def _rows(report) -> dict:
    return {r["agency"]: r for r in report["agencies"]}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request):
    return request.getfixturevalue("service" if request.param == "sqlite" else "service_pg")


def test_run_and_read_the_current_month(service):
    month = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m")
    admin, a, b = service.token(), service.token(A), service.token(B)
    assert _run(service, a, month).status == 403  # admin only
    before = _run(service, admin, month)
    assert before.status == 201, before.body
    sent = service.post_exchange(a, _envelope([B]), simple_pdf())
    assert sent.status == 201, sent.body
    paper = _envelope([B], channel="paper", sign=False)
    registered = service.post_exchange(a, paper, None)
    assert registered.status == 201, registered.body
    after = _run(service, admin, month)
    assert after.status == 201, after.body
    first, report = before.json(), after.json()
    assert report["revision"] == first["revision"] + 1
    assert report["provisional"] is True and report["target"] == 0.95
    old, new = _rows(first), _rows(report)
    assert new[A]["sent_electronic"] - old[A]["sent_electronic"] == 1
    assert new[A]["sent_paper"] - old[A]["sent_paper"] == 1
    assert new[B]["received_electronic"] - old[B]["received_electronic"] == 1
    assert new[B]["received_paper"] == old[B]["received_paper"]  # A's paper is A's alone
    assert new[A]["signed_valid"] - old[A]["signed_valid"] == 1
    assert 0 <= new[A]["e_rate"] < 1

    read = _get(service, service.tokens["auditor"], f"month={month}")
    assert read.status == 200 and read.json() == report
    older = _get(service, admin, f"month={month}&revision={first['revision']}")
    assert older.json() == first

    csv = _get(service, admin, f"month={month}&format=csv")
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.body.startswith(b"\xef\xbb\xbf")
    text = csv.body.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("agency,name,sent_electronic")
    assert "Ủy ban nhân dân tỉnh Thử nghiệm" in text

    own = _get(service, a, f"month={month}")
    assert own.status == 200 and [r["agency"] for r in own.json()["agencies"]] == [A]
    assert _get(service, a, f"month={month}&agency={A}").status == 200
    other = _get(service, a, f"month={month}&agency={B}")
    assert other.status == 403 and other.json()["code"] == "forbidden"
    one = _get(service, admin, f"month={month}&agency={B}&format=csv")
    assert len(one.body.decode("utf-8-sig").splitlines()) == 2
    assert _get(service, b, f"month={month}&format=csv").body.decode("utf-8-sig").count("\n") == 2

    metrics = service.request("GET", "/metrics").body.decode()
    assert f'docgate_e_rate{{agency="{A}"}}' in metrics


def test_missing_and_malformed(service):
    admin = service.token()
    missing = _get(service, admin, "month=2019-01")
    assert missing.status == 404 and missing.json()["code"] == "not_found"
    assert "run" in missing.json()["detail"]
    assert missing.headers["content-type"].startswith("application/problem+json")
    for query in ("month=2026-13", "", "month=2026-10&format=xml", "month=2026-10&revision=x"):
        bad = _get(service, admin, query)
        assert bad.status == 422, query
        assert bad.json()["code"] in ("invalid_month", "invalid_query")
    assert _run(service, admin, "2026-1").status == 422
    assert _get(service, admin, "month=2026-10&revision=99999").status == 404
    no_token = service.request("GET", f"{PATH}?month=2026-10")
    assert no_token.status == 401
    body = json.loads(_run(service, admin, "2019-02").body)
    assert body["provisional"] is False and body["revision"] >= 1


def test_openapi_lists_the_report_routes(service):
    paths = service.request("GET", "/openapi.json").json()["paths"]
    assert {PATH, PATH + "/{month}/run"} <= set(paths)


def test_cli_runs_and_shows_a_month(service):
    def docgate(*args):
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", "report", *args],
            env=service.cli_env(),
            capture_output=True,
            timeout=120,
        )

    assert docgate("show", "--month", "2019-03").returncode == 1
    ran = docgate("run", "--month", "2019-03")
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["month"] == "2019-03" and report["provisional"] is False
    assert A in _rows(report)
    shown = docgate("show", "--month", "2019-03", "--format", "csv", "--revision", "1")
    assert shown.returncode == 0 and shown.stdout.startswith(b"\xef\xbb\xbfagency,name,")
    over_http = _get(service, service.token(), "month=2019-03")
    assert over_http.json() == report


def test_signed_pdf_report(service, tmp_path):
    import subprocess

    from tests.fixtures.poppler import nss_db_for, run_pdfsig
    from tests.fixtures.tools import require_tool

    month = _month_now()
    assert _run(service, service.token(), month).status == 201
    auditor = service.tokens["auditor"]
    answer = service.request(
        "GET", f"/v1/reports/e-exchange/{month}.pdf", None, {"Authorization": f"Bearer {auditor}"}
    )
    assert answer.status == 200, answer.body[:300]
    assert answer.headers["content-type"] == "application/pdf"
    report = service.request(
        "POST", "/v1/verify", answer.body, {"Content-Type": "application/pdf"}
    ).json()
    assert report["valid"] is True and report["signatures"][0]["level"] == "B-LT"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(answer.body)
    (sig,) = run_pdfsig(pdf, nss_db_for(service.root_pem, tmp_path / "nss")).signatures
    assert sig["Signature Validation"] == "Signature is Valid."
    assert sig["Certificate Validation"] == "Certificate is Trusted."
    text = subprocess.run(
        [require_tool("pdftotext"), str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "BÁO CÁO TỶ LỆ TRAO ĐỔI VĂN BẢN ĐIỆN TỬ" in text
    assert "Ủy ban nhân dân tỉnh Thử nghiệm" in text
    subprocess.run(
        [
            require_tool("pdftoppm"),
            "-r",
            "40",
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            str(pdf),
            str(tmp_path / "page"),
        ],
        check=True,
    )
    assert (tmp_path / "page-1.png").stat().st_size > 1000
    denied = service.request(
        "GET",
        f"/v1/reports/e-exchange/{month}.pdf",
        None,
        {"Authorization": f"Bearer {service.token('000.00.01.H41')}"},
    )
    assert denied.status == 403


def _month_now() -> str:
    import datetime as dt
    import zoneinfo

    return dt.datetime.now(zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m")
