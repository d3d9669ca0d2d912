"""Signing and verification under HTTP load, next to the alternatives, in one run.

Starts ``docgate serve`` (development mode, SQLite, one signing worker per core) and, on
the same machine:

- baseline (a): ``pyhanko sign addsig --use-pades pemder`` once per file (a script
  looping over a folder), timed as whole processes;
- baseline (b): pyHanko's ``signers.sign_pdf`` + ``SimpleSigner`` in-process, and
  ``validate_pdf_signature`` for verification (in a fresh process: no DocGate code);
- DocGate over HTTP with ``wrk`` (Debian package): ``POST /v1/sign?level=B-B`` of
  1-page documents (each request a distinct document) at concurrency 1, 16 and 64 for
  ``--seconds`` each; the same with the agency stamp at 16; ``POST /v1/verify`` of a
  B-B and of a B-LT document at 16.

Prints documents/s, p50/p99 latency, errors and the service's peak memory (VmHWM of the
server and its workers, reset before each phase) and checks the targets of issue 6;
writes ``bench/results/load.json``. Only 127.0.0.1 is contacted.

Run: ``make bench`` or ``.venv/bin/python bench/load.py [--seconds 30]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baselines import cli_sign, in_fresh_process, naive_sign, naive_verify, pem_files  # noqa: E402
from bench.common import AGENCY, Figures, write_results  # noqa: E402
from bench.service import peaks, reset_peaks  # noqa: E402
from signing.devpki import DevPki  # noqa: E402
from signing.verify import VerifyContext  # noqa: E402
from tests.fixtures.pdfs import UniquePdfs  # noqa: E402
from tests.fixtures.service import RunningService, start_service, stop_service  # noqa: E402

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "wrk_post.lua"
TARGETS = {
    "sign_c16_per_s": 150.0,
    "sign_c16_p99_ms": 250.0,
    "vs_cli": 20.0,
    "vs_naive": 10.0,
    "verify_per_s": 100.0,
}


def wrk(svc: RunningService, path: str, body: Path, token: str, concurrency: int,
        seconds: float, *, unique: bool, run: int) -> dict:  # fmt: skip
    """One wrk run; the service's peak memory over it."""
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does)")
    env = {
        **os.environ,
        "BENCH_BODY": str(body),
        "BENCH_TOKEN": token,
        "BENCH_UNIQUE": "1" if unique else "0",
        "BENCH_RUN": str(run),
    }
    reset = reset_peaks(svc)
    proc = subprocess.run(
        [exe, "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "60s",
         "-s", str(WRK_SCRIPT), svc.base_url + path],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = next(x for x in proc.stdout.splitlines() if x.startswith("{"))
    raw = json.loads(line)
    errors = sum(v for k, v in raw.items() if k.startswith("errors_"))
    wall = raw["duration_us"] / 1e6
    return {
        "concurrency": concurrency,
        "seconds": round(wall, 1),
        "ok": raw["requests"] - raw["errors_status"],
        "errors": errors,
        "per_s": round((raw["requests"] - raw["errors_status"]) / wall, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 1),
        "p99_ms": round(raw["p99_us"] / 1000, 1),
        "max_ms": round(raw["max_us"] / 1000, 1),
        "peak_rss": peaks(svc) | {"reset_before_phase": reset},
    }


def _figures(f: Figures) -> dict:
    return {"runs": f.runs, "per_s": round(f.per_second, 1), "p50_ms": round(f.median_ms, 1),
            "p99_ms": round(f.p99_ms, 1)}  # fmt: skip


def _signed(svc: RunningService, pdf: bytes, level: str) -> bytes:
    answer = svc.sign(pdf, svc.token(AGENCY.code), f"level={level}&appearance=none")
    assert answer.status == 200, answer.body[:300]
    return answer.body


def run(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="docgate-load-"))
    svc = start_service(tmp / "var", {"DOCGATE_SERVICE__WORKERS": str(args.workers)})
    try:
        return _run(args, svc, tmp)
    finally:
        stop_service(svc)
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args, svc: RunningService, tmp: Path) -> dict:
    docs = UniquePdfs(b"Bench ")
    one_page = tmp / "one-page.pdf"
    one_page.write_bytes(docs.template)
    pki = DevPki(svc.var_dir / "pki")
    password = pki.password_file.read_text().splitlines()[0].encode()
    key, cert, chain = pem_files(pki.agency_p12(AGENCY.code), password, tmp / "pem")
    out: dict = {"document_bytes": len(docs.template)}

    print(f"baseline (a): pyhanko CLI x {args.cli_runs} files ...", flush=True)
    out["cli"] = _figures(cli_sign(key, cert, chain, one_page, args.cli_runs, tmp))
    print(f"baseline (b): in-process sign_pdf x {args.naive_runs} ...", flush=True)
    naive = in_fresh_process(
        naive_sign, str(pki.agency_p12(AGENCY.code)), password, docs.template, args.naive_runs
    )
    out["naive_sign"] = _figures(naive)

    token = svc.token(AGENCY.code)
    for n, c in enumerate([1, 16, 64], start=1):  # warm-up, then the three phases
        if n == 1:
            wrk(svc, "/v1/sign?level=B-B&appearance=none", one_page, token, 16, 3,
                unique=True, run=0)  # fmt: skip
        print(f"DocGate /v1/sign B-B at concurrency {c}, {args.seconds:g} s ...", flush=True)
        out[f"sign_c{c}"] = wrk(svc, "/v1/sign?level=B-B&appearance=none", one_page, token, c,
                                args.seconds, unique=True, run=n)  # fmt: skip
    print(f"DocGate /v1/sign B-B with the agency stamp at 16, {args.seconds:g} s ...", flush=True)
    out["sign_stamp_c16"] = wrk(svc, "/v1/sign?level=B-B", one_page, token, 16, args.seconds,
                                unique=True, run=9)  # fmt: skip

    admin = svc.token()
    vctx = VerifyContext.for_development(pki)
    trust = vctx.trust
    for level in ("B-B", "B-LT"):
        signed = tmp / f"signed-{level}.pdf"
        signed.write_bytes(_signed(svc, docs.template, level))
        print(f"DocGate /v1/verify {level} at 16, {args.seconds:g} s ...", flush=True)
        out[f"verify_{level}"] = wrk(svc, "/v1/verify", signed, admin, 16, args.seconds,
                                     unique=False, run=0)  # fmt: skip
        base = in_fresh_process(
            naive_verify,
            signed.read_bytes(),
            [c.dump() for c in trust.roots],
            [c.dump() for c in trust.intermediates],
            list(trust.crls),
            list(trust.ocsps),
            args.naive_runs,
        )
        out[f"naive_verify_{level}"] = _figures(base)
    return out


def check_targets(r: dict) -> list[tuple[str, str, bool]]:
    s16 = r["sign_c16"]
    rows = [
        (f"sign B-B c16 >= {TARGETS['sign_c16_per_s']:g} docs/s", f"{s16['per_s']}",
         s16["per_s"] >= TARGETS["sign_c16_per_s"]),
        (f"sign B-B c16 p99 < {TARGETS['sign_c16_p99_ms']:g} ms", f"{s16['p99_ms']}",
         s16["p99_ms"] < TARGETS["sign_c16_p99_ms"]),
        (f">= {TARGETS['vs_cli']:g}x the CLI per file", f"{s16['per_s'] / r['cli']['per_s']:.1f}x",
         s16["per_s"] >= TARGETS["vs_cli"] * r["cli"]["per_s"]),
        (f">= {TARGETS['vs_naive']:g}x naive in-process",
         f"{s16['per_s'] / r['naive_sign']['per_s']:.1f}x",
         s16["per_s"] >= TARGETS["vs_naive"] * r["naive_sign"]["per_s"]),
    ]  # fmt: skip
    for level in ("B-B", "B-LT"):
        v = r[f"verify_{level}"]
        rows.append((f"verify {level} c16 >= {TARGETS['verify_per_s']:g} docs/s",
                     f"{v['per_s']}", v["per_s"] >= TARGETS["verify_per_s"]))  # fmt: skip
    errors = sum(v["errors"] for k, v in r.items() if isinstance(v, dict) and "errors" in v)
    rows.append(("no errors", str(errors), errors == 0))
    return rows


def print_report(r: dict) -> None:
    print(f"\n{'case':<46} {'n':>6} {'err':>4} {'docs/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
          f"  peak RSS MiB (server + workers = total)")  # fmt: skip
    rows = [
        ("baseline (a) pyhanko CLI per file", r["cli"]),
        ("baseline (b) naive in-process sign_pdf", r["naive_sign"]),
        ("DocGate HTTP sign B-B, c=1", r["sign_c1"]),
        ("DocGate HTTP sign B-B, c=16", r["sign_c16"]),
        ("DocGate HTTP sign B-B, c=64", r["sign_c64"]),
        ("DocGate HTTP sign B-B + agency stamp, c=16", r["sign_stamp_c16"]),
        ("baseline naive validate_pdf_signature B-B", r["naive_verify_B-B"]),
        ("DocGate HTTP verify B-B, c=16", r["verify_B-B"]),
        ("baseline naive validate_pdf_signature B-LT", r["naive_verify_B-LT"]),
        ("DocGate HTTP verify B-LT, c=16", r["verify_B-LT"]),
    ]
    for name, f in rows:
        n = f.get("ok", f.get("runs"))
        rss = f.get("peak_rss")
        mem = (f"{rss['server_mib']:.0f} + {' + '.join(f'{w:.0f}' for w in rss['workers_mib'])}"
               f" = {rss['total_mib']:.0f}") if rss else "-"  # fmt: skip
        print(f"{name:<46} {n:>6} {f.get('errors', 0):>4} {f['per_s']:>8.1f} "
              f"{f['p50_ms']:>8.1f} {f['p99_ms']:>8.1f}  {mem}")  # fmt: skip
    print("\ntargets (issue 6):")
    for label, value, ok in check_targets(r):
        print(f"  {'PASS' if ok else 'FAIL'}  {label:<40} {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per HTTP phase")
    parser.add_argument("--cli-runs", type=int, default=15)
    parser.add_argument("--naive-runs", type=int, default=60)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    started = time.perf_counter()
    results = run(args)
    results["targets"] = [
        {"target": label, "value": value, "met": ok} for label, value, ok in check_targets(results)
    ]
    path = write_results("load", results, vars(args))
    print_report(results)
    print(f"\n{time.perf_counter() - started:.0f} s; figures in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
