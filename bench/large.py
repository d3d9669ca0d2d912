"""Large documents over HTTP: time and memory from 1 MB to 100 MB, the event loop under
64 large signings, and work that ends when its client leaves.

Starts ``docgate serve`` (development mode, SQLite, one worker per core), then:

1. Series: scan-like PDFs (A4 pages of incompressible images) of 1, 10, 25, 50 and
   100 MB are signed (``POST /v1/sign?level=B-B``, streamed upload, streamed answer)
   and the signed file verified (``POST /v1/verify``). For each: seconds, MB/s and the
   service's peak memory (VmHWM of the server and of each worker, reset before each
   request), against the bound of issue 6: peak <= 2 x the file + the idle service.
   Baseline in the same run: the same 100 MB file read and hashed once by this process
   (the floor for any signer that must hash the signed ranges).
2. Responsiveness: 64 concurrent signings of a 20 MB document while a health checker
   (its own process) asks ``/healthz`` every 20 ms over one keep-alive connection; its
   p50/p99/max latency against the 50 ms target,
   and the gateway's own event-loop lag (``docgate_event_loop_lag_seconds``). The 64
   clients run in this process, on the same two cores as the service.
3. Cancellation: 8 signings of the 100 MB document are started and their clients
   disconnect after 1.5 s; the workers' CPU time in the next 3 s shows whether their
   work went on.

Writes ``bench/results/large.json``. Run: ``.venv/bin/python bench/large.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from bench.common import AGENCY, write_results  # noqa: E402
from bench.service import (  # noqa: E402
    descendants,
    lag_between,
    loop_lag,
    peaks,
    process_kind,
    reset_peaks,
)
from tests.fixtures.pdfs import scanned_pdf  # noqa: E402
from tests.fixtures.service import RunningService, start_service, stop_service  # noqa: E402

MB = 1_000_000
SIZES_MB = (1, 10, 25, 50, 100)


def idle_rss_mib(svc: RunningService) -> float:
    """Resident memory of the idle service (server + workers), the fixed overhead."""
    from bench.service import status_kib

    pids = [svc.process.pid, *descendants(svc.process.pid)]
    return sum((status_kib(p, "VmRSS") or 0) for p in pids) / 1024


async def post_file(http, url: str, token: str | None, path: Path, out: Path | None):
    headers = {"Content-Type": "application/pdf"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    started = time.perf_counter()
    with path.open("rb") as body:
        async with http.post(url, data=body, headers=headers) as resp:
            if out is not None and resp.status == 200:
                with out.open("wb") as fh:
                    async for chunk in resp.content.iter_chunked(1 << 20):
                        fh.write(chunk)
                payload = None
            else:
                payload = await resp.read()
            return resp.status, time.perf_counter() - started, payload


def hash_baseline(path: Path) -> float:
    started = time.perf_counter()
    with path.open("rb") as fh:
        hashlib.file_digest(fh, "sha256")
    return time.perf_counter() - started


async def series(svc: RunningService, tmp: Path, idle_mib: float) -> list[dict]:
    rows = []
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for size_mb in SIZES_MB:
            src = scanned_pdf(tmp / f"scan-{size_mb}.pdf", size_mb * MB)
            signed = tmp / f"signed-{size_mb}.pdf"
            reset_peaks(svc)
            status, sign_s, body = await post_file(
                http, svc.base_url + "/v1/sign?level=B-B", svc.token(AGENCY.code), src, signed
            )
            assert status == 200, body
            sign_peak = peaks(svc)
            reset_peaks(svc)
            status, verify_s, body = await post_file(
                http, svc.base_url + "/v1/verify", svc.token(), signed, None
            )
            assert status == 200 and json.loads(body)["valid"], body[:500]
            verify_peak = peaks(svc)
            size_mib = src.stat().st_size / 2**20
            bound = 2 * size_mib + idle_mib
            rows.append(
                {
                    "size_mb": size_mb,
                    "bytes": src.stat().st_size,
                    "sign_s": round(sign_s, 3),
                    "sign_mb_per_s": round(size_mb / sign_s, 1),
                    "sign_peak": sign_peak,
                    "verify_s": round(verify_s, 3),
                    "verify_mb_per_s": round(size_mb / verify_s, 1),
                    "verify_peak": verify_peak,
                    "bound_mib": round(bound, 1),
                    "within_bound": max(sign_peak["total_mib"], verify_peak["total_mib"]) <= bound,
                    "hash_only_s": round(hash_baseline(src), 3),
                }
            )
            print(
                f"  {size_mb:>4} MB: sign {sign_s:6.2f} s, verify {verify_s:6.2f} s, peak "
                f"{sign_peak['total_mib']:.0f}/{verify_peak['total_mib']:.0f} MiB "
                f"(bound {bound:.0f})",
                flush=True,
            )
            signed.unlink()
            if size_mb != SIZES_MB[-1]:
                src.unlink()
    return rows


def probe_health(port: int, interval: float, stop, out) -> None:
    """A health checker in its own process: GET /healthz every ``interval`` seconds over
    one keep-alive connection (as a load balancer does), latencies into ``out``."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    next_at = time.perf_counter()
    while not stop.is_set():
        started = time.perf_counter()
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        latencies.append((time.perf_counter() - started, resp.status))
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    conn.close()
    out.put(latencies)


def _percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


async def responsiveness(svc: RunningService, tmp: Path, n: int, size_mb: int) -> dict:
    src = scanned_pdf(tmp / f"scan-{size_mb}-load.pdf", size_mb * MB)
    lag_before = loop_lag(svc)
    ctx = multiprocessing.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    probe = ctx.Process(target=probe_health, args=(svc.port, 0.02, stop, out))
    probe.start()
    await asyncio.sleep(1.0)
    timeout = aiohttp.ClientTimeout(total=1800)
    connector = aiohttp.TCPConnector(limit=n)
    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        results = await asyncio.gather(
            *(
                post_file(
                    http,
                    svc.base_url + "/v1/sign?level=B-B",
                    svc.token(AGENCY.code),
                    src,
                    tmp / f"load-out-{i}.pdf",
                )  # fmt: skip
                for i in range(n)
            )
        )
    wall = time.perf_counter() - started
    lag = lag_between(lag_before, loop_lag(svc))
    stop.set()
    probes = out.get(timeout=60)
    probe.join(timeout=30)
    health_ms = [t * 1000 for t, _ in probes]
    health_errors = sum(1 for _, status in probes if status != 200)
    for i in range(n):
        (tmp / f"load-out-{i}.pdf").unlink(missing_ok=True)
    ok = sum(1 for status, _, _ in results if status == 200)
    return {
        "signings": n,
        "document_mb": size_mb,
        "ok": ok,
        "wall_s": round(wall, 1),
        "docs_per_s": round(ok / wall, 2),
        "healthz_requests": len(probes),
        "healthz_errors": health_errors,
        "healthz_p50_ms": round(_percentile(health_ms, 0.5), 2),
        "healthz_p99_ms": round(_percentile(health_ms, 0.99), 2),
        "healthz_max_ms": round(max(health_ms), 2),
        "event_loop_lag": lag,
        "target_p99_ms": 50,
        "met": _percentile(health_ms, 0.99) < 50 and ok == n and not health_errors,
    }


async def _leave_after_upload(svc: RunningService, src: Path, linger: float) -> None:
    """Send a whole signing request, wait ``linger`` seconds, close the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", svc.port)
    head = (
        f"POST /v1/sign?level=B-B HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {svc.token(AGENCY.code)}\r\n"
        f"Content-Type: application/pdf\r\nContent-Length: {src.stat().st_size}\r\n\r\n"
    )
    writer.write(head.encode())
    with src.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            writer.write(chunk)
            await writer.drain()
    await asyncio.sleep(linger)
    writer.close()
    await writer.wait_closed()


async def cancellation(svc: RunningService, src: Path, n: int) -> dict:
    """``n`` clients send a large signing each and leave 0.3 s after their upload: the
    ones waiting for a worker leave the queue, the running ones are stopped."""
    worker_pids = sorted(p for p in descendants(svc.process.pid) if process_kind(p) == "worker")
    logged = svc.log().count("went away: its work is cancelled")
    journal = svc.var_dir / "archive" / "journal.jsonl"

    def count() -> int:
        return len(journal.read_text().splitlines()) if journal.exists() else 0

    records = count()
    await asyncio.gather(*(_leave_after_upload(svc, src, 0.3) for _ in range(n)))
    await asyncio.sleep(5.0)  # long enough for all n signings, had they gone on
    workers_after = sorted(p for p in descendants(svc.process.pid) if process_kind(p) == "worker")
    return {
        "clients": n,
        "cancelled_in_log": svc.log().count("went away: its work is cancelled") - logged,
        "workers_replaced": len(set(worker_pids) - set(workers_after)),
        "signed_anyway": count() - records,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--load-mb", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--parts", default="series,load,cancel", help="which parts to run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="docgate-large-"))
    svc = start_service(tmp / "var", {"DOCGATE_SERVICE__WORKERS": str(args.workers)})
    try:
        idle = idle_rss_mib(svc)
        print(f"service up, idle RSS {idle:.0f} MiB; series {SIZES_MB} MB ...", flush=True)
        rows = asyncio.run(series(svc, tmp, idle)) if "series" in parts else []
        print(f"{args.concurrency} x {args.load_mb} MB signings with /healthz probing ...")
        load = (
            asyncio.run(responsiveness(svc, tmp, args.concurrency, args.load_mb))
            if "load" in parts
            else None
        )
        print("clients that leave ...", flush=True)
        big = tmp / f"scan-{SIZES_MB[-1]}.pdf"
        if not big.exists():
            scanned_pdf(big, SIZES_MB[-1] * MB)
        cancel = asyncio.run(cancellation(svc, big, 8)) if "cancel" in parts else None
    finally:
        stop_service(svc)
        shutil.copy(svc.log_path, "/tmp/large-service.log") if os.environ.get(
            "BENCH_KEEP_LOG"
        ) else None
        shutil.rmtree(tmp, ignore_errors=True)
    results = {"idle_rss_mib": round(idle, 1), "series": rows, "responsiveness": load,
               "cancellation": cancel}  # fmt: skip
    path = write_results("large", results, vars(args))
    report(results)
    print(f"\nfigures in {path}")
    return 0


def report(r: dict) -> None:
    if r["series"]:
        _report_series(r)
    if r["responsiveness"]:
        _report_load(r["responsiveness"])
    if r["cancellation"]:
        _report_cancel(r["cancellation"])


def _report_series(r: dict) -> None:
    print(f"\n{'MB':>5} {'sign s':>7} {'MB/s':>6} {'verify s':>8} {'MB/s':>6} {'hash-only s':>11} "
          f"{'peak sign/verify MiB':>21} {'bound':>6}  {'srv + workers (sign)':<24}")  # fmt: skip
    for row in r["series"]:
        sp, vp = row["sign_peak"], row["verify_peak"]
        workers = " + ".join(f"{w:.0f}" for w in sp["workers_mib"])
        print(
            f"{row['size_mb']:>5} {row['sign_s']:>7.2f} {row['sign_mb_per_s']:>6.1f} "
            f"{row['verify_s']:>8.2f} {row['verify_mb_per_s']:>6.1f} {row['hash_only_s']:>11.2f} "
            f"{sp['total_mib']:>10.0f}/{vp['total_mib']:<10.0f} {row['bound_mib']:>6.0f}  "
            f"{sp['server_mib']:.0f} + {workers}"
        )
    first, last = r["series"][1], r["series"][-1]  # 10 MB and 100 MB: per-MB time
    per_mb = [row["sign_s"] / row["size_mb"] for row in (first, last)]
    print(f"sign time per MB: {per_mb[0] * 1000:.1f} ms at {first['size_mb']} MB, "
          f"{per_mb[1] * 1000:.1f} ms at {last['size_mb']} MB (linear: ratio "
          f"{per_mb[1] / per_mb[0]:.2f})")  # fmt: skip
    print(f"memory within 2 x file + idle service ({r['idle_rss_mib']:.0f} MiB): "
          f"{'PASS' if all(x['within_bound'] for x in r['series']) else 'FAIL'}")  # fmt: skip


def _report_load(h: dict) -> None:
    print(f"\n{h['signings']} concurrent {h['document_mb']} MB signings: {h['ok']} ok in "
          f"{h['wall_s']} s; /healthz over {h['healthz_requests']} probes: p50 "
          f"{h['healthz_p50_ms']} ms, p99 {h['healthz_p99_ms']} ms, max {h['healthz_max_ms']} "
          f"ms (target p99 < 50 ms: {'PASS' if h['met'] else 'FAIL'})")  # fmt: skip
    lag = h["event_loop_lag"]
    print(f"the gateway's own event-loop lag meanwhile: {lag['samples']} samples every 50 ms, "
          f"{lag['over_50ms']} late by more than 50 ms, p99 <= {lag['p99_at_most_ms']} ms")  # fmt: skip


def _report_cancel(c: dict) -> None:
    print(f"\n{c['clients']} clients of 100 MB signings left 0.3 s after their upload: "
          f"{c['cancelled_in_log']} cancellations logged ({c['workers_replaced']} running "
          f"tasks stopped, their workers replaced); signed anyway: {c['signed_anyway']}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
