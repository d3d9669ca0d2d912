"""Where the time goes: the profiles behind BENCHMARKS.md ("Profile and fix").

- ``verify``: cProfile of ``verify_pdf`` on a one-page B-LT document (in-process),
  the top functions by cumulative time;
- ``gateway``: ``py-spy record --gil`` of the ``docgate serve`` process (and of each
  signing worker) while ``wrk`` posts ``/v1/sign?level=B-B`` at concurrency 16: the
  functions holding the GIL, i.e. the CPU the event-loop process spends per request.

Not part of ``make bench`` (profiles are for reading, not for comparing).
Run: ``.venv/bin/python bench/hotspots.py verify|gateway [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import datetime as dt
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import AGENCY, dev_pki, one_page_pdf  # noqa: E402
from bench.service import descendants, process_kind  # noqa: E402

HERE = Path(__file__).resolve().parent


def profile_verify(runs: int) -> None:
    from signing.engine import sign_pdf
    from signing.options import Appearance, Level, SignOptions
    from signing.runtime import development_spec, open_context
    from signing.verify import VerifyContext, verify_pdf

    pki = dev_pki()
    loop = asyncio.new_event_loop()
    ctx = loop.run_until_complete(open_context(development_spec(pki, [AGENCY]), None))
    options = SignOptions(agency=AGENCY.code, level=Level.B_LT, appearance=Appearance.AGENCY)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pdf = loop.run_until_complete(sign_pdf(one_page_pdf(), options, ctx, now=now)).pdf
    vctx = VerifyContext.for_development(pki)
    for _ in range(5):
        loop.run_until_complete(verify_pdf(pdf, vctx, now=dt.datetime.now(dt.UTC)))
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        loop.run_until_complete(verify_pdf(pdf, vctx, now=dt.datetime.now(dt.UTC)))
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)


_PLUMBING = ("asyncio/", "threading.py", "multiprocessing/", "runpy", "concurrent/futures",
             "<module>", "aiohttp/web.py", "gateway/cli.py", "worker_main.py")  # fmt: skip


def _top(path: Path, title: str, n: int = 25) -> None:
    total, own, inclusive = 0, collections.Counter(), collections.Counter()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    print(f"\n== {title}: {total} samples holding the GIL; inclusive, plumbing left out")
    shown = [(f, c) for f, c in inclusive.most_common() if not any(p in f for p in _PLUMBING)]
    for frame, count in shown[:n]:
        print(f"{100 * count / max(total, 1):5.1f}%  {frame[:150]}")
    print("-- own time")
    for frame, count in own.most_common(8):
        print(f"{100 * count / max(total, 1):5.1f}%  {frame[:150]}")


def profile_gateway(seconds: float) -> None:
    from tests.fixtures.pdfs import UniquePdfs
    from tests.fixtures.service import start_service, stop_service

    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    tmp = Path(tempfile.mkdtemp(prefix="docgate-profile-"))
    svc = start_service(tmp / "var", {"DOCGATE_SERVICE__WORKERS": "2"})
    try:
        body = tmp / "one-page.pdf"
        body.write_bytes(UniquePdfs(b"Bench ").template)
        env = {**os.environ, "BENCH_BODY": str(body), "BENCH_TOKEN": svc.token(AGENCY.code),
               "BENCH_UNIQUE": "1", "BENCH_RUN": "1"}  # fmt: skip
        url = svc.base_url + "/v1/sign?level=B-B&appearance=none"
        wrk = ["wrk", "-t1", "-c16", "-s", str(HERE / "wrk_post.lua"), url]
        subprocess.run([*wrk[:3], "-d3s", *wrk[3:]], env=env, capture_output=True, check=True)
        pids = [svc.process.pid] + [
            p for p in descendants(svc.process.pid) if process_kind(p) == "worker"
        ]
        spies = [
            subprocess.Popen(
                [
                    spy,
                    "record",
                    "-p",
                    str(pid),
                    "-d",
                    f"{seconds:g}",
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "--gil",
                    "--nonblocking",
                    "-o",
                    str(tmp / f"spy-{i}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            for i, pid in enumerate(pids)
        ]
        out = subprocess.run([*wrk[:3], f"-d{seconds:g}s", *wrk[3:]], env=env,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        for proc in spies:
            proc.wait()
        print(out.splitlines()[-1])
        _top(tmp / "spy-0.txt", "gateway process (event loop and its threads)")
        _top(tmp / "spy-1.txt", "signing worker 1", 15)
    finally:
        stop_service(svc)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["verify", "gateway"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    if args.what == "verify":
        profile_verify(args.runs)
    else:
        profile_gateway(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
