"""The docgate command line: dev-init and in-process signing."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.fixtures.pdfs import simple_pdf
from tests.fixtures.poppler import nss_db_for, run_pdfsig


def _docgate(args, env_var_dir, check=True):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGATE_")}
    env["DOCGATE_SERVICE__VAR_DIR"] = str(env_var_dir)
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=check,
    )


def test_dev_init_then_sign(tmp_path):
    var = tmp_path / "var"
    out = json.loads(_docgate(["dev-init"], var).stdout)
    assert (var / "dev-tokens.json").exists() and out["root_certificate"].endswith("root.pem")
    tokens = json.loads((var / "dev-tokens.json").read_text())
    assert set(tokens) == {"admin", "auditor", "agencies"} and len(tokens["agencies"]) == 3
    src = tmp_path / "in.pdf"
    src.write_bytes(simple_pdf())
    dst = tmp_path / "out.pdf"
    result = _docgate(
        [
            "sign",
            str(src),
            "-o",
            str(dst),
            "--level",
            "B-LT",
            "--appearance",
            "appendix",
            "--number",
            "Số: 07/UBND-VP",
        ],
        var,
    )
    assert "B-LT" in result.stdout
    (sig,) = run_pdfsig(dst, nss_db_for(var / "pki" / "root.pem", tmp_path / "nss")).signatures
    assert sig["Signature Validation"] == "Signature is Valid."
    assert sig["Certificate Validation"] == "Certificate is Trusted."


def test_sign_errors_are_one_line(tmp_path):
    var = tmp_path / "var"
    src = tmp_path / "in.pdf"
    src.write_bytes(b"not a pdf")
    result = _docgate(["sign", str(src), "-o", str(tmp_path / "o.pdf")], var, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "not_a_pdf: the body is not a PDF document (no %PDF- header)"
    )
    assert "Traceback" not in result.stderr


def test_bad_configuration_is_reported(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGATE_")}
    env["DOCGATE_SIGNING__NO_SUCH_KEY"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "dev-init"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2 and "no_such_key" in result.stderr
