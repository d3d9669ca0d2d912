"""Shared helpers for the benchmarks: timing statistics, a throwaway development PKI,
and the one-page document every signing benchmark uses."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from signing.devpki import DevAgency, DevPki, ensure_dev_pki

__all__ = [
    "AGENCY",
    "Figures",
    "dev_pki",
    "machine",
    "measure",
    "one_page_pdf",
    "report",
    "write_results",
]

RESULTS = Path(__file__).resolve().parent / "results"

AGENCY = DevAgency("000.00.00.H41", "Ủy ban nhân dân tỉnh Thử nghiệm")


@dataclass(frozen=True)
class Figures:
    name: str
    runs: int
    median_ms: float
    p99_ms: float
    per_second: float
    peak_kib: float


def measure(name: str, fn: Callable[[], object], runs: int, warmup: int = 3) -> Figures:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    times.sort()
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    return Figures(
        name,
        runs,
        statistics.median(times) * 1000,
        p99 * 1000,
        len(times) / sum(times),
        peak / 1024,
    )


def report(rows: list[Figures]) -> None:
    print(f"{'case':<48} {'runs':>5} {'median ms':>10} {'p99 ms':>9} {'docs/s':>8} {'peak KiB':>9}")
    for r in rows:
        print(
            f"{r.name:<48} {r.runs:>5} {r.median_ms:>10.2f} {r.p99_ms:>9.2f} "
            f"{r.per_second:>8.1f} {r.peak_kib:>9.0f}"
        )


def dev_pki() -> DevPki:
    root = Path(tempfile.mkdtemp(prefix="docgate-bench-")) / "pki"
    return ensure_dev_pki(root, [AGENCY], now=dt.datetime.now(dt.UTC))


def one_page_pdf() -> bytes:
    from tests.fixtures.pdfs import simple_pdf

    return simple_pdf(1)


def machine() -> dict:
    """What the figures were measured on."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_results(name: str, results: dict, settings: dict) -> Path:
    """``bench/results/<name>.json``: the figures, the settings and the machine."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "run_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": settings,
        "results": results,
    }
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    return path
