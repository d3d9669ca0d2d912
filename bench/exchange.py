"""Exchange throughput of ``docgate serve``: sign + archive + deliver to 2 recipients.

For each database (SQLite, then PostgreSQL in a fresh database dropped afterwards), in one
run: start the service (development mode, on 127.0.0.1), warm up, then for ``--seconds``
each, with ``--concurrency`` clients (keep-alive connections, one asyncio loop):

- baseline: ``POST /v1/sign`` of the same kind of document at the same level (signing
  alone: no database transaction, no audit chain, no recipients; it still keeps its
  file-based signing record, as every /v1/sign does);
- ``POST /v1/exchanges`` A -> [B, C] with ``sign: true``: sign, archive the blob, one
  transaction with the exchange, 2 recipients and 4 audit entries.

Every request carries a distinct one-page document. Prints requests/s, p50/p99 latency,
errors and the peak RSS (VmHWM, reset before each phase) of the server and of its worker
processes, and writes the figures to ``bench/results/exchange.json``. Only 127.0.0.1 is
contacted (the service and PostgreSQL). The client runs on the same machine and takes
CPU from the service: compare the rows with each other, not with other machines.

Run: ``.venv/bin/python bench/exchange.py [--seconds 20] [--level B-B|B-T|B-LT]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from bench.service import cpu_seconds, descendants, peaks, process_kind, reset_peaks  # noqa: E402
from tests.fixtures.db import pg_server_url, throwaway_pg_database  # noqa: E402
from tests.fixtures.load import A, B, C  # noqa: E402
from tests.fixtures.pdfs import UniquePdfs  # noqa: E402
from tests.fixtures.service import (  # noqa: E402
    RunningService,
    exchange_envelope,
    exchange_multipart,
    start_service,
    stop_service,
)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
RESULTS = Path(__file__).resolve().parent / "results" / "exchange.json"


# -- documents --------------------------------------------------------------------------


# distinct valid PDFs: a one-page template whose marker becomes a fresh UUID each call
document = UniquePdfs(b"Bench ")


def exchange_body(level: str, n: int) -> tuple[bytes, str]:
    envelope = exchange_envelope(
        [B, C], subject="Về việc đo hiệu năng trao đổi văn bản", number=n, level=level
    )
    return exchange_multipart(envelope, document())


# -- load -------------------------------------------------------------------------------


async def run_load(
    svc: RunningService, kind: str, level: str, seconds: float, concurrency: int
) -> dict:
    """``concurrency`` clients sending back to back for ``seconds``."""
    token = svc.token(A)
    url = svc.base_url + ("/v1/exchanges" if kind == "exchange" else f"/v1/sign?level={level}")
    expected = 201 if kind == "exchange" else 200
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(10**9))
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                if kind == "exchange":
                    body, ctype = exchange_body(level, next(counter))
                else:
                    body, ctype = document(), "application/pdf"
                headers = {"Authorization": f"Bearer {token}", "Content-Type": ctype}
                started = time.perf_counter()
                try:
                    async with http.post(url, data=body, headers=headers) as resp:
                        answer = await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if status != expected:
                    errors.append(f"HTTP {status}: {answer[:200]!r}")
                    continue
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p * (len(latencies) - 1)))] * 1000, 1)

    return {
        "ok": len(latencies),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "wall_s": round(wall, 2),
        "per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
    }


# -- PostgreSQL -------------------------------------------------------------------------


def _loopback(url: str) -> bool:
    return (urlsplit(url.replace("postgresql+asyncpg://", "postgresql://")).hostname or "") in (
        LOOPBACK
    )


# -- main -------------------------------------------------------------------------------


class _Unreachable(Exception):
    """PostgreSQL did not answer: reported, the run goes on."""


def _unreachable(reason: str) -> NoReturn:
    raise _Unreachable(reason)


def bench_database(name: str, args, pg_base: str) -> dict:
    env = {"DOCGATE_SERVICE__WORKERS": str(args.workers)}
    with contextlib.ExitStack() as cleanup:  # in reverse: the service, the database, tmp
        tmp = Path(tempfile.mkdtemp(prefix=f"docgate-bench-{name}-"))
        cleanup.callback(shutil.rmtree, tmp, ignore_errors=True)
        if name == "postgresql":
            try:
                env["DOCGATE_DATABASE__URL"] = cleanup.enter_context(
                    throwaway_pg_database("docgate_bench", pg_base, unreachable=_unreachable)
                )
            except _Unreachable as exc:
                return {"skipped": str(exc)}
        svc = start_service(tmp / "var", env)
        cleanup.callback(stop_service, svc)
        workers = [p for p in descendants(svc.process.pid) if process_kind(p) == "worker"]
        print(f"[{name}] service up on 127.0.0.1:{svc.port}, {len(workers)} signing workers")
        for kind in ("sign", "exchange"):
            asyncio.run(run_load(svc, kind, args.level, args.warmup, args.concurrency))
        out: dict = {"workers": len(workers)}
        for kind in ("sign", "exchange"):
            reset = reset_peaks(svc)
            print(f"[{name}] {kind}: {args.seconds:g} s at concurrency {args.concurrency} ...")
            cpu_before = cpu_seconds(svc) | {"client": time.process_time()}
            figures = asyncio.run(run_load(svc, kind, args.level, args.seconds, args.concurrency))
            cpu_after = cpu_seconds(svc) | {"client": time.process_time()}
            figures["cpu_percent"] = {  # of one core, over the phase's wall time
                k: round(100 * (cpu_after[k] - cpu_before[k]) / figures["wall_s"])
                for k in cpu_before
            }
            figures["peak_rss"] = peaks(svc) | {"reset_before_phase": reset}
            out[kind] = figures
        return out


def print_table(results: dict, args) -> None:
    print()
    print(
        f"{'database':<11} {'case':<29} {'ok':>6} {'err':>4} {'per s':>6} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'mean':>6} {'CPU% srv/wrk/cli':>16}  "
        "peak RSS MiB (server + workers = sum)"
    )
    labels = {
        "sign": "/v1/sign (baseline)",
        "exchange": "/v1/exchanges A->[B,C]",
    }
    for db, figures in results.items():
        if "skipped" in figures:
            print(f"{db:<11} skipped: {figures['skipped']}")
            continue
        for kind in ("sign", "exchange"):
            f = figures[kind]
            rss = f["peak_rss"]
            workers = " + ".join(f"{w:.0f}" for w in rss["workers_mib"])
            cpu = "/".join(str(f["cpu_percent"][k]) for k in ("server", "workers", "client"))
            print(
                f"{db:<11} {labels[kind]:<29} {f['ok']:>6} {f['errors']:>4} {f['per_s']:>6.1f} "
                f"{f['p50_ms'] or 0:>7.1f} {f['p99_ms'] or 0:>7.1f} {f['mean_ms'] or 0:>6.1f} "
                f"{cpu:>16}  {rss['server_mib']:.0f} + {workers} = {rss['total_mib']:.0f}"
            )
            for sample in f["error_samples"]:
                print(f"{'':<11}   error: {sample}")
        s, e = figures["sign"], figures["exchange"]
        if s["per_s"] and e["per_s"] and s["p50_ms"] and e["p50_ms"]:
            print(
                f"{'':<11} archiving + delivery: {e['per_s'] / s['per_s']:.0%} of the signing "
                f"throughput; latency {e['p50_ms'] - s['p50_ms']:+.1f} ms at p50, "
                f"{e['mean_ms'] - s['mean_ms']:+.1f} ms mean, {e['p99_ms'] - s['p99_ms']:+.1f} ms at p99"
            )
    print(
        f"\nlevel {args.level}, {args.seconds:g} s per case, concurrency {args.concurrency}, "
        f"{os.cpu_count()} CPUs (client on the same machine), load average "
        f"{os.getloadavg()[0]:.2f}; figures in {RESULTS}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per case (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="per case (default 3)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--level", default="B-B", choices=["B-B", "B-T", "B-LT"])
    parser.add_argument(
        "--workers", type=int, default=0, help="signing workers (0: one per core, the default)"
    )
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument(
        "--postgres-url",
        default=pg_server_url(),
        help="server URL (a database on it is created and dropped); loopback only",
    )
    args = parser.parse_args()
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if set(databases) - {"sqlite", "postgresql"} or not databases:
        parser.error("--databases takes sqlite and/or postgresql")
    if "postgresql" in databases and not _loopback(args.postgres_url):
        parser.error("the benchmark only talks to 127.0.0.1: --postgres-url must be loopback")

    load_at_start = [round(x, 2) for x in os.getloadavg()]  # other work on the machine
    results = {db: bench_database(db, args, args.postgres_url) for db in databases}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "exchange",
                "run_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": {
                    "cpus": os.cpu_count(),
                    "loadavg_at_start": load_at_start,
                    "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "settings": {
                    "seconds": args.seconds,
                    "warmup_s": args.warmup,
                    "concurrency": args.concurrency,
                    "level": args.level,
                    "workers": args.workers,
                    "document_bytes": len(document.template),
                },
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print_table(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
