"""Evidence packages over HTTP against ``docgate serve``: the delivery state in
``GET /v1/exchanges/{id}``, who may export, the ZIP's headers, and the bundled checker
saying OK on what an admin and an auditor download.

The helpers are in tests/fixtures/evidence.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import subprocess
import sys
import uuid

from tests.fixtures.evidence import FORBIDDEN, run_checker, unzip
from tests.fixtures.exchange_world import raw_envelope
from tests.fixtures.pdfs import simple_pdf

# -- over HTTP ---------------------------------------------------------------------------


def _cli(service, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGATE_")}
    env["DOCGATE_SERVICE__VAR_DIR"] = str(service.var_dir)
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_evidence_over_http(service, tmp_path):
    a_code, b_code = "000.00.00.H41", "000.00.01.H41"
    a, b, c = (service.token(x) for x in (a_code, b_code, "000.00.02.H41"))
    hooked = json.loads(_cli(service, "agency", "webhook", b_code, "http://127.0.0.1:9/hook"))
    assert hooked["agency"] == b_code and hooked["secret"].startswith("whsec_")
    try:
        envelope = raw_envelope(a_code, [b_code])
        envelope["document"]["number"] = str(random.randint(1, 999))
        sent = service.post_exchange(a, envelope, simple_pdf())
        assert sent.status == 201, sent.body
        xid = sent.json()["id"]
        detail = service.request(
            "GET", f"/v1/exchanges/{xid}", None, {"Authorization": f"Bearer {a}"}
        )
        assert [d["agency"] for d in detail.json()["delivery"]] == [b_code]
    finally:
        assert _cli(service, "agency", "webhook", b_code, "--off").strip() == (
            f"webhook of {b_code} removed"
        )
    # (the service's own hourly job may have timestamped the head already)
    made = _cli(service, "audit", "checkpoint")
    assert made.startswith(("checkpoint at entry", "nothing to checkpoint")), made

    path = f"/v1/exchanges/{xid}/evidence"
    for agency in (a, b, c):  # not even the parties: the chain proof shows other exchanges
        denied = service.request("GET", path, None, {"Authorization": f"Bearer {agency}"})
        assert denied.status == 403 and denied.json()["code"] == "forbidden", denied.body
        assert denied.json()["detail"] == FORBIDDEN
    admin = {"Authorization": f"Bearer {service.token()}"}
    got = service.request("GET", path, None, admin)
    assert got.status == 200, got.body
    assert got.headers["content-type"] == "application/zip"
    assert f'filename="docgate-evidence-{xid}.zip"' in got.headers["content-disposition"]
    digest = hashlib.sha256(got.body).digest()
    assert got.headers["repr-digest"] == f"sha-256=:{base64.b64encode(digest).decode()}:"
    folder = unzip(got.body, tmp_path / "package")
    code, out = run_checker(folder, "--trust", str(service.root_pem))
    assert code == 0 and out.startswith(f"OK: exchange {xid}"), out
    pdf = service.request(
        "GET", f"/v1/exchanges/{xid}/document", None, {"Authorization": f"Bearer {b}"}
    )
    assert (folder / "document.pdf").read_bytes() == pdf.body

    # the exports and the download are audited about the exchange: checkpoint them too
    made = _cli(service, "audit", "checkpoint")
    assert made.startswith(("checkpoint at entry", "nothing to checkpoint")), made
    auditor = service.request(
        "GET", path, None, {"Authorization": f"Bearer {service.tokens['auditor']}"}
    )
    assert auditor.status == 200
    folder = unzip(auditor.body, tmp_path / "auditor")
    assert not (folder / "document.pdf").exists()
    code, out = run_checker(folder, "--trust", str(service.root_pem))
    assert code == 0 and out.startswith(f"OK: exchange {xid}"), out
    assert "the document file is not in the package, so it was NOT checked" in out, out
    denied = service.request("GET", path, None, {"Authorization": f"Bearer {c}"})
    assert denied.status == 403 and denied.json()["code"] == "forbidden"
    missing = service.request("GET", f"/v1/exchanges/{uuid.uuid4()}/evidence", None, admin)
    assert missing.status == 404 and missing.json()["code"] == "not_found"
    missing = service.request(  # an agency learns nothing about an id it may not see
        "GET", f"/v1/exchanges/{uuid.uuid4()}/evidence", None, {"Authorization": f"Bearer {b}"}
    )
    assert missing.status == 403 and missing.json()["code"] == "forbidden"
    assert service.request("GET", path).status == 401
