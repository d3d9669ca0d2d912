"""The service under test, seen from outside: its processes (server, signing workers),
their CPU time and their peak memory (VmHWM, reset per phase), read from /proc (Linux).
Shared by the benchmarks that start ``docgate serve``."""

from __future__ import annotations

import os
from pathlib import Path

from tests.fixtures.load import proc_stats
from tests.fixtures.service import RunningService

__all__ = [
    "cpu_seconds",
    "descendants",
    "loop_lag",
    "peaks",
    "process_kind",
    "reset_peaks",
    "status_kib",
]


def status_kib(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, fields in proc_stats():
        children.setdefault(int(fields[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def process_kind(pid: int) -> str:
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

    workers = [p for p in descendants(svc.process.pid) if process_kind(p) == "worker"]
    return {"server": of(svc.process.pid), "workers": sum(of(p) for p in workers)}


def reset_peaks(svc: RunningService) -> bool:
    """Reset VmHWM of the server and its workers (``5 > /proc/PID/clear_refs``)."""
    ok = True
    for pid in [svc.process.pid, *descendants(svc.process.pid)]:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def peaks(svc: RunningService) -> dict:
    """VmHWM in MiB: the server, each worker, and the sum (an upper bound of the total)."""
    server = status_kib(svc.process.pid, "VmHWM") or 0
    workers = []
    for pid in descendants(svc.process.pid):
        if process_kind(pid) == "worker":
            workers.append((status_kib(pid, "VmHWM") or 0) / 1024)
    return {
        "server_mib": round(server / 1024, 1),
        "workers_mib": [round(w, 1) for w in workers],
        "total_mib": round(server / 1024 + sum(workers), 1),
    }


def loop_lag(svc: RunningService) -> dict[float, float]:
    """The service's event-loop lag histogram (``/metrics``): upper bound -> count."""
    text = svc.request("GET", "/metrics").body.decode()
    buckets = {}
    for line in text.splitlines():
        if line.startswith("docgate_event_loop_lag_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(le)] = float(line.rsplit(" ", 1)[1])
    return buckets


def lag_between(before: dict[float, float], after: dict[float, float]) -> dict:
    """Samples taken between two readings, and how many were late by more than each
    bucket bound; p99 as the smallest bound that 99 % of the samples stay under."""
    counts = {le: after[le] - before.get(le, 0.0) for le in sorted(after)}
    total = counts.get(float("inf"), 0.0)
    p99 = next((le for le, n in counts.items() if total and n >= 0.99 * total), None)
    over_50ms = total - counts.get(0.05, 0.0)
    return {"samples": int(total), "over_50ms": int(over_50ms), "p99_at_most_ms": (
        p99 * 1000 if p99 not in (None, float("inf")) else None)}  # fmt: skip
