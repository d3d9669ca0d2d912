"""The service's answers when its dependencies fail or the input is too large:
a TSA that does not answer (fail, or downgrade when configured), and the size limit."""

from __future__ import annotations

import socket

import pytest

from tests.fixtures.pdfs import simple_pdf
from tests.fixtures.service import start_service, stop_service

AGENCY = "000.00.00.H41"


@pytest.fixture(scope="module")
def dead_port():
    # bound but never listening: connections are refused for the module's whole life
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def _start(tmp_path_factory, name, env):
    # the TSA is down on purpose, so /readyz stays 503: wait for /healthz instead
    return start_service(tmp_path_factory.mktemp(name) / "var", env, wait_for="/healthz")


@pytest.fixture(scope="module")
def strict_service(tmp_path_factory, dead_port):
    svc = _start(
        tmp_path_factory,
        "strict",
        {
            "DOCGATE_SIGNING__TSA_URL": f"http://127.0.0.1:{dead_port}/tsa",
            "DOCGATE_SIGNING__TSA_TIMEOUT_S": "1",
            "DOCGATE_SIGNING__TSA_RETRIES": "1",
            "DOCGATE_SERVICE__MAX_UPLOAD_MIB": "1",
            "DOCGATE_SERVICE__WORKERS": "1",
            "DOCGATE_AUTH__VERIFY_REQUIRES_TOKEN": "true",
        },
    )
    yield svc
    stop_service(svc)


@pytest.fixture(scope="module")
def lenient_service(tmp_path_factory, dead_port):
    svc = _start(
        tmp_path_factory,
        "lenient",
        {
            "DOCGATE_SIGNING__TSA_URL": f"http://127.0.0.1:{dead_port}/tsa",
            "DOCGATE_SIGNING__TSA_TIMEOUT_S": "1",
            "DOCGATE_SIGNING__TSA_RETRIES": "0",
            "DOCGATE_SIGNING__TSA_FAILURE": "downgrade",
            "DOCGATE_SERVICE__WORKERS": "1",
        },
    )
    yield svc
    stop_service(svc)


def test_tsa_down_fails_with_503(strict_service):
    answer = strict_service.sign(simple_pdf(), strict_service.token(AGENCY), "level=B-T")
    assert answer.status == 503
    body = answer.json()
    assert body["code"] == "tsa_unavailable"
    assert "127.0.0.1" in body["detail"] and "Traceback" not in body["detail"]
    # B-B needs no TSA and still works
    assert (
        strict_service.sign(simple_pdf(), strict_service.token(AGENCY), "level=B-B").status == 200
    )


def test_readyz_names_the_unreachable_tsa(strict_service):
    answer = strict_service.request("GET", "/readyz")
    assert answer.status == 503
    assert "timestamp_service" in answer.json()["failing"]


def test_tsa_down_downgrades_when_configured(lenient_service):
    answer = lenient_service.sign(simple_pdf(), lenient_service.token(AGENCY), "level=B-LT")
    assert answer.status == 200
    assert answer.headers["docgate-level"] == "B-B"
    assert b"/ETSI.CAdES.detached" in answer.body


def test_upload_over_the_limit_is_413(strict_service):
    big = simple_pdf() + b"%" + b"x" * (1024 * 1024 + 10) + b"\n"
    answer = strict_service.sign(big, strict_service.token(AGENCY), "level=B-B")
    assert answer.status == 413
    assert answer.json()["code"] == "too_large"


def test_multipart_over_the_limit_is_413(strict_service):
    big = simple_pdf() + b"%" + b"x" * (1024 * 1024 + 10) + b"\n"
    answer = strict_service.sign_multipart(big, strict_service.token(AGENCY), {"level": "B-B"})
    assert answer.status == 413
    assert answer.json()["code"] == "too_large"


def test_verify_can_require_a_token(strict_service):
    signed = strict_service.sign(simple_pdf(), strict_service.token(AGENCY), "level=B-B").body
    anonymous = strict_service.request(
        "POST", "/v1/verify", signed, {"Content-Type": "application/pdf"}
    )
    assert anonymous.status == 401 and anonymous.json()["code"] == "unauthorized"
    with_token = strict_service.request(
        "POST",
        "/v1/verify",
        signed,
        {
            "Content-Type": "application/pdf",
            "Authorization": f"Bearer {strict_service.token(AGENCY)}",
        },
    )
    assert with_token.status == 200 and with_token.json()["valid"] is True


def test_open_endpoints_are_rate_limited(lenient_service):
    statuses = [lenient_service.request("GET", "/v1/trust/roots").status for _ in range(60)]
    assert statuses[0] == 200
    assert 429 in statuses  # burst of 30, then 5 per second per address
