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
import datetime as dt
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
from pyhanko.pdf_utils import generic  # noqa: E402
from pyhanko.pdf_utils.content import RawContent, ResourceType  # noqa: E402
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter  # noqa: E402

from tests.fixtures.service import RunningService, start_service, stop_service  # noqa: E402

A, B, C = "000.00.00.H41", "000.00.01.H41", "000.00.02.H41"
PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
RESULTS = Path(__file__).resolve().parent / "results" / "exchange.json"
_MARKER = b"X" * 32


# -- documents --------------------------------------------------------------------------


def _template() -> bytes:
    """A one-page PDF (uncompressed content) whose text holds ``_MARKER`` once."""
    w = PdfFileWriter()
    font = w.add_object(
        generic.DictionaryObject(
            {
                generic.pdf_name("/Type"): generic.pdf_name("/Font"),
                generic.pdf_name("/Subtype"): generic.pdf_name("/Type1"),
                generic.pdf_name("/BaseFont"): generic.pdf_name("/Helvetica"),
            }
        )
    )
    content = RawContent(b"BT /F1 12 Tf 72 770 Td (Bench " + _MARKER + b") Tj ET")
    content.set_resource(category=ResourceType.FONT, name=generic.pdf_name("/F1"), value=font)
    w.insert_page(
        PageObject(
            contents=w.add_object(generic.StreamObject(stream_data=content.render())),
            media_box=generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))),
            resources=content.resources.as_pdf_object(),
        )
    )
    out = io.BytesIO()
    w.write(out)
    data = out.getvalue()
    assert data.count(_MARKER) == 1
    return data


TEMPLATE = _template()


def document() -> bytes:
    """A distinct valid PDF: the marker becomes a fresh UUID (same length, offsets hold)."""
    return TEMPLATE.replace(_MARKER, uuid.uuid4().hex.encode())


def exchange_body(level: str, n: int) -> tuple[bytes, str]:
    envelope = {
        "from": A,
        "to": [B, C],
        "channel": "electronic",
        "direction": "outgoing",
        "document": {
            "number": str(n),
            "notation": "UBND-VP",
            "type": "CV",
            "subject": "Về việc đo hiệu năng trao đổi văn bản",
            "promulgated_at": "2026-11-02",
            "secret": False,
        },
        "sign": True,
        "level": level,
    }
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="envelope"\r\n'
        "Content-Type: application/json\r\n\r\n".encode()
        + json.dumps(envelope, ensure_ascii=False).encode()
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="d.pdf"\r\nContent-Type: application/pdf\r\n\r\n'.encode()
        + document()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


# -- the service's processes ------------------------------------------------------------


def _status_kib(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _name(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = b" ".join(cmd).decode(errors="replace")
    if "resource_tracker" in text:
        return "resource_tracker"
    if "multiprocessing" in text or "spawn_main" in text:
        return "worker"
    return "process"


def cpu_seconds(svc: RunningService) -> dict[str, float]:
    """CPU time (user + system) so far of the server and of its workers together."""
    tick = os.sysconf("SC_CLK_TCK")

    def of(pid: int) -> float:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

    workers = [p for p in _descendants(svc.process.pid) if _name(p) == "worker"]
    return {"server": of(svc.process.pid), "workers": sum(of(p) for p in workers)}


def reset_peaks(svc: RunningService) -> bool:
    """Reset VmHWM of the server and its workers (``5 > /proc/PID/clear_refs``)."""
    ok = True
    for pid in [svc.process.pid, *_descendants(svc.process.pid)]:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def peaks(svc: RunningService) -> dict:
    """VmHWM in MiB: the server, each worker, and the sum (an upper bound of the total)."""
    server = _status_kib(svc.process.pid, "VmHWM") or 0
    workers = []
    for pid in _descendants(svc.process.pid):
        if _name(pid) == "worker":
            workers.append((_status_kib(pid, "VmHWM") or 0) / 1024)
    return {
        "server_mib": round(server / 1024, 1),
        "workers_mib": [round(w, 1) for w in workers],
        "total_mib": round(server / 1024 + sum(workers), 1),
    }


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


async def _pg_admin(base: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _loopback(url: str) -> bool:
    return (urlsplit(url.replace("postgresql+asyncpg://", "postgresql://")).hostname or "") in (
        LOOPBACK
    )


# -- main -------------------------------------------------------------------------------


def bench_database(name: str, args, pg_base: str) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"docgate-bench-{name}-"))
    env = {"DOCGATE_SERVICE__WORKERS": str(args.workers)}
    pg_name = None
    if name == "postgresql":
        pg_name = f"docgate_bench_{uuid.uuid4().hex[:12]}"
        try:
            asyncio.run(_pg_admin(pg_base, f'CREATE DATABASE "{pg_name}"'))
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            shutil.rmtree(tmp, ignore_errors=True)
            return {"skipped": f"PostgreSQL at {pg_base} is not reachable: {exc}"}
        env["DOCGATE_DATABASE__URL"] = pg_base.rsplit("/", 1)[0] + f"/{pg_name}"
    svc = None
    try:
        svc = start_service(tmp / "var", env)
        workers = [p for p in _descendants(svc.process.pid) if _name(p) == "worker"]
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
    finally:
        if svc is not None:
            stop_service(svc)
        if pg_name is not None:
            asyncio.run(_pg_admin(pg_base, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        shutil.rmtree(tmp, ignore_errors=True)


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
        default=os.environ.get("DOCGATE_TEST_POSTGRES_URL", PG_DEFAULT),
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
                    "document_bytes": len(TEMPLATE),
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
