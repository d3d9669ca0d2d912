"""Time to compute one month of the electronic-exchange report (exchange/reports.py,
``compute_month``) for 200 agencies over 1 million exchanges, on SQLite and on
PostgreSQL. Target: under 2 s on PostgreSQL.

For each backend: a throwaway database (SQLite file in a temp dir; PostgreSQL on
127.0.0.1 via ``throwaway_pg_database``, dropped afterwards; an unreachable server is
reported and skipped), migrated, then bulk-loaded in SQL (no ORM object per row):
200 agencies, one blob, ``--rows`` exchanges spread over 2026-01..2026-03 (local time),
85% electronic (outgoing, 1 or 2 recipients: ~1.5 per exchange), 15% paper (half
outgoing, half incoming with one registrant recipient), 2% secret, a due date on ~30%
(3..22 days after the exchange), a status 06 event for ~60% of the recipients with a due
date (0..25 days after the exchange, so some late). The data are a deterministic
function of the row number (an integer hash computed in SQL), so both backends hold the
same rows and must give the same checksum.

Then ANALYZE (PostgreSQL) / ANALYZE + PRAGMA optimize (SQLite), one warm-up, and
``--runs`` timed runs of ``compute_month(session, "2026-02")``: median and max. The load
time is printed separately (it is not the figure). Baseline in the same run: the naive
way, loading the month's exchanges and recipients as ORM rows and counting in Python
(volumes and signed counts only, no on-time rate: a lower bound for the naive way), on
the same database, checked against ``compute_month``.

Figures go to ``bench/results/report.json``. Only 127.0.0.1 is contacted.

Run: ``.venv/bin/python bench/report.py [--rows 1000000] [--runs 5] [--no-naive]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402

from exchange.db import Database, sqlite_url  # noqa: E402
from exchange.migrate import upgrade_sync  # noqa: E402
from exchange.models import Exchange, Recipient  # noqa: E402
from exchange.reports import MonthBounds, compute_month  # noqa: E402
from tests.fixtures.db import pg_server_url, throwaway_pg_database  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "report.json"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
AGENCIES = 200
MONTH = "2026-02"  # the middle one of the three loaded months
BASE = int(dt.datetime(2025, 12, 31, 17, tzinfo=dt.UTC).timestamp())  # 2026-01-01 local
SPAN = 90 * 86400  # 2026-01-01 .. 2026-04-01 local
BLOB = "b" * 64
TARGET_S = 2.0


# -- the data, as SQL over a series of row numbers g -----------------------------------


class Dialect:
    def __init__(self, name: str) -> None:
        self.name = name

    def series(self, n: int) -> str:
        if self.name == "sqlite":
            return f"s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n})"
        return f"s(g) AS (SELECT generate_series(1, {n})::bigint)"

    def hexw(self, expr: str, width: int) -> str:
        if self.name == "sqlite":
            return f"printf('%0{width}x', {expr})"
        return f"lpad(to_hex({expr}), {width}, '0')"

    def code(self, expr: str) -> str:
        if self.name == "sqlite":
            return f"printf('%03d.00.00.H41', {expr})"
        return f"(lpad(({expr})::text, 3, '0') || '.00.00.H41')"

    def ts(self, seconds: str) -> str:
        if self.name == "sqlite":  # SQLAlchemy's storage format for DateTime on SQLite
            return f"(strftime('%Y-%m-%d %H:%M:%S', {seconds}, 'unixepoch') || '.000000')"
        return f"to_timestamp({seconds})"

    def date(self, seconds: str) -> str:
        if self.name == "sqlite":
            return f"date({seconds}, 'unixepoch')"
        return f"(to_timestamp({seconds}) AT TIME ZONE 'UTC')::date"


def _xor_shift(x: str, bits: int) -> str:
    return f"(({x} | ({x} >> {bits})) - ({x} & ({x} >> {bits})))"


def mix(x: str) -> str:
    """A 32-bit integer hash of ``x`` (same result in SQLite and PostgreSQL)."""
    a = f"((({x}) * 2654435761) % 4294967296)"
    b = _xor_shift(a, 16)
    c = f"(({b} * 2146121005) % 4294967296)"
    return _xor_shift(c, 15)


def gen_cte(d: Dialect, n: int) -> str:
    def r(salt: int, mod: int) -> str:
        return f"({mix(f'g * 32 + {salt}')} % {mod})"

    cols = {
        "s": r(1, AGENCIES),  # sender
        "ch": r(2, 100),  # < 85: electronic
        "dirbit": r(3, 2),  # paper: 1 incoming
        "sec": r(4, 100),  # < 2: secret
        "sv": r(5, 10),  # < 9: signature valid
        "t": r(6, SPAN),  # seconds after BASE
        "du": r(7, 100),  # < 30: has a due date
        "dd": r(8, 20),  # due date: 3 + dd days after
        "o1": f"(1 + {r(9, AGENCIES - 1)})",  # first recipient: sender + o1
        "two": r(10, 2),  # 0: a second recipient
        "ida": r(11, 4294967296),
        "idb": r(12, 4294967296),
        "st1": r(13, 100),  # < 60: status 06 posted by recipient 1
        "st2": r(14, 100),
        "lat1": r(15, 25 * 86400),
        "lat2": r(16, 25 * 86400),
    }
    select = ", ".join(f"{expr} AS {name}" for name, expr in cols.items())
    ident = (
        f"{d.hexw('ida', 8)} || '-' || {d.hexw('idb % 65536', 4)} || '-4' || "
        f"{d.hexw('(idb / 65536) % 4096', 3)} || '-8' || {d.hexw('ida % 4096', 3)} || '-' || "
        f"{d.hexw('g', 12)}"
    )
    return (
        f"WITH RECURSIVE {d.series(n)}, "
        f"r AS (SELECT g, {select} FROM s), "
        f"gen AS (SELECT r.*, {ident} AS id FROM r)"
    )


def load_statements(d: Dialect, n: int) -> list[str]:
    gen = gen_cte(d, n)
    at = d.ts(f"({BASE} + t)")
    electronic = "ch < 85"
    exchanges = f"""{gen}
INSERT INTO exchanges (id, sender_code, channel, direction, subject, due_date, secret,
    document_sha256, signed_by_gateway, level, signature_valid, envelope_json,
    exchanged_at, created_at)
SELECT id, {d.code("s")},
    CASE WHEN {electronic} THEN 'electronic' ELSE 'paper' END,
    CASE WHEN {electronic} OR dirbit = 0 THEN 'outgoing' ELSE 'incoming' END,
    'Bench exchange ' || g,
    CASE WHEN du < 30 THEN {d.date(f"({BASE} + t + 25200 + (3 + dd) * 86400)")} END,
    CASE WHEN sec < 2 THEN TRUE ELSE FALSE END,
    CASE WHEN {electronic} THEN '{BLOB}' END,
    CASE WHEN {electronic} THEN TRUE ELSE FALSE END,
    CASE WHEN {electronic} THEN 'B-T' END,
    CASE WHEN NOT ({electronic}) THEN NULL WHEN sv < 9 THEN TRUE ELSE FALSE END,
    '{{}}', {at}, {at}
FROM gen"""
    pairs = f"""gen JOIN (SELECT 1 AS k UNION ALL SELECT 2) ks
    ON ({electronic} AND (k = 1 OR two = 0)) OR (NOT ({electronic}) AND dirbit = 1 AND k = 1)"""
    agency = d.code(
        f"(CASE WHEN k = 1 THEN s + o1 ELSE s + o1 % {AGENCIES - 1} + 1 END) % {AGENCIES}"
    )
    done = "du < 30 AND ((k = 1 AND st1 < 60) OR (k = 2 AND st2 < 60))"
    recipients = f"""{gen}
INSERT INTO recipients (exchange_id, agency_code, status, updated_at)
SELECT id, {agency}, CASE WHEN {done} THEN '06' END, {at}
FROM {pairs}"""
    done_at = d.ts(f"({BASE} + t + CASE WHEN k = 1 THEN lat1 ELSE lat2 END)")
    events = f"""{gen}
INSERT INTO status_events (exchange_id, recipient_code, code, actor_code, created_at)
SELECT id, {agency}, '06', {agency}, {done_at}
FROM {pairs}
WHERE {done}"""
    return [exchanges, recipients, events]


def setup_statements(d: Dialect) -> list[str]:
    created = d.ts(str(BASE - 86400))
    return [
        f"""{"WITH RECURSIVE " + d.series(AGENCIES)}
INSERT INTO agencies (code, name, created_at)
SELECT {d.code("g - 1")}, 'Cơ quan thử nghiệm ' || (g - 1), {created} FROM s""",
        f"INSERT INTO blobs (sha256, size, created_at) VALUES ('{BLOB}', 12345, {created})",
    ]


COUNT_SQL = [
    ("agencies", "SELECT count(*) FROM agencies"),
    ("exchanges", "SELECT count(*) FROM exchanges"),
    ("recipients", "SELECT count(*) FROM recipients"),
    ("status_events", "SELECT count(*) FROM status_events"),
]


def load_sqlite(path: Path, n: int) -> tuple[float, dict[str, int]]:
    d = Dialect("sqlite")
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous=OFF")  # for the load only (this connection)
        start = time.perf_counter()
        con.execute("BEGIN")
        for sql in setup_statements(d) + load_statements(d, n):
            con.execute(sql)
        con.execute("COMMIT")
        con.execute("ANALYZE")
        con.execute("PRAGMA optimize")
        elapsed = time.perf_counter() - start
        return elapsed, {k: con.execute(q).fetchone()[0] for k, q in COUNT_SQL}
    finally:
        con.close()


async def load_pg(url: str, n: int) -> tuple[float, dict[str, int]]:
    import asyncpg

    d = Dialect("postgresql")
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("SET synchronous_commit = off; SET maintenance_work_mem = '256MB'")
        start = time.perf_counter()
        async with conn.transaction():
            for sql in setup_statements(d) + load_statements(d, n):
                await conn.execute(sql)
        await conn.execute("VACUUM ANALYZE")
        elapsed = time.perf_counter() - start
        return elapsed, {k: await conn.fetchval(q) for k, q in COUNT_SQL}
    finally:
        await conn.close()


# -- measuring -------------------------------------------------------------------------


def checksum(report: dict[str, Any]) -> str:
    keys = (
        "sent_electronic",
        "sent_paper",
        "received_electronic",
        "received_paper",
        "signed_valid",
        "on_time_rate",
    )
    rows = [[r["agency"], *(r[k] for k in keys)] for r in report["agencies"]]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def volumes(report: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {
        r["agency"]: (
            r["sent_electronic"],
            r["sent_paper"],
            r["received_electronic"],
            r["received_paper"],
            r["signed_valid"],
        )
        for r in report["agencies"]
        if any(
            (r["sent_electronic"], r["sent_paper"], r["received_electronic"], r["received_paper"])
        )
    }


async def naive_month(db: Database, month: str) -> dict[str, tuple[int, ...]]:
    """The naive way: the month's exchanges and recipients as ORM rows, counted in Python."""
    bounds = MonthBounds(month)
    in_month = (Exchange.exchanged_at >= bounds.start, Exchange.exchanged_at < bounds.end)
    async with db.sessions() as s:
        exchanges = (await s.scalars(select(Exchange).where(*in_month))).all()
        recipients = (
            await s.scalars(
                select(Recipient)
                .join(Exchange, Exchange.id == Recipient.exchange_id)
                .where(*in_month)
            )
        ).all()
    by_id = {e.id: e for e in exchanges}
    c: Counter[tuple[str, str]] = Counter()
    for e in exchanges:
        if e.secret:
            continue
        electronic = e.channel == "electronic"
        if electronic or e.direction == "outgoing":
            c[e.sender_code, "se" if electronic else "sp"] += 1
            if electronic and e.signature_valid:
                c[e.sender_code, "v"] += 1
    for r in recipients:
        e = by_id[r.exchange_id]
        if e.secret:
            continue
        electronic = e.channel == "electronic"
        c[r.agency_code, "re" if electronic else "rp"] += 1
        if electronic and e.signature_valid:
            c[r.agency_code, "v"] += 1
    codes = sorted({code for code, _ in c})
    return {
        code: (c[code, "se"], c[code, "sp"], c[code, "re"], c[code, "rp"], c[code, "v"])
        for code in codes
        if any((c[code, "se"], c[code, "sp"], c[code, "re"], c[code, "rp"]))
    }


async def measure(url: str, runs: int, naive: bool) -> dict[str, Any]:
    db = Database.open(url)
    try:
        async with db.sessions() as s:  # warm-up
            report = await compute_month(s, MONTH)
        times = []
        for _ in range(runs):
            async with db.sessions() as s:
                start = time.perf_counter()
                report = await compute_month(s, MONTH)
                times.append(time.perf_counter() - start)
        result: dict[str, Any] = {
            "median_s": round(statistics.median(times), 4),
            "max_s": round(max(times), 4),
            "runs_s": [round(t, 4) for t in times],
            "agencies": len(report["agencies"]),
            "checksum": checksum(report),
            "total_sent_received": sum(
                r["sent_electronic"]
                + r["sent_paper"]
                + r["received_electronic"]
                + r["received_paper"]
                for r in report["agencies"]
            ),
        }
        if naive:
            start = time.perf_counter()
            counted = await naive_month(db, MONTH)
            result["naive_s"] = round(time.perf_counter() - start, 3)
            result["naive_matches"] = counted == volumes(report)
        return result
    finally:
        await db.close()


def print_backend(name: str, load_s: float, rows: dict[str, int], r: dict[str, Any]) -> None:
    print(f"[{name}] loaded {rows} in {load_s:.1f} s (load time, not the figure)")
    target = f"target < {TARGET_S:g} s on PostgreSQL" if name == "postgresql" else "no target"
    verdict = ""
    if name == "postgresql":
        verdict = "  MET" if r["median_s"] < TARGET_S and r["max_s"] < TARGET_S else "  MISSED"
    print(
        f"[{name}] compute_month({MONTH}): median {r['median_s']:.3f} s, max {r['max_s']:.3f} s "
        f"over {len(r['runs_s'])} runs ({target}){verdict}"
    )
    print(
        f"[{name}]   agencies returned {r['agencies']}, sent+received {r['total_sent_received']}, "
        f"checksum {r['checksum']}"
    )
    if "naive_s" in r:
        print(
            f"[{name}] baseline, naive (ORM rows of the month, counted in Python; volumes and "
            f"signed only): {r['naive_s']:.2f} s, same counts: {r['naive_matches']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="exchanges to load")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()

    host = urlsplit(pg_server_url().replace("postgresql+asyncpg", "postgresql")).hostname
    if host not in LOOPBACK:
        sys.exit(f"refusing a PostgreSQL server that is not on this machine: {host}")

    print(
        f"{AGENCIES} agencies, {args.rows} exchanges over 2026-01..2026-03, month {MONTH}; "
        f"{platform.python_version()} on {platform.machine()}"
    )
    out: dict[str, Any] = {
        "rows": args.rows,
        "agencies": AGENCIES,
        "month": MONTH,
        "target_s_postgresql": TARGET_S,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "backends": {},
    }
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="docgate-bench-report-") as tmp:
            path = Path(tmp) / "docgate.db"
            url = sqlite_url(str(path))
            upgrade_sync(url)
            load_s, rows = load_sqlite(path, args.rows)
            r = asyncio.run(measure(url, args.runs, not args.no_naive))
            print_backend("sqlite", load_s, rows, r)
            out["backends"]["sqlite"] = {"load_s": round(load_s, 2), "rows": rows, **r}

    if args.only in (None, "postgresql"):

        def unreachable(reason: str):
            raise _Unreachable(reason)

        try:
            with throwaway_pg_database("docgate_bench_report", unreachable=unreachable) as url:
                upgrade_sync(url)
                load_s, rows = asyncio.run(load_pg(url, args.rows))
                r = asyncio.run(measure(url, args.runs, not args.no_naive))
                print_backend("postgresql", load_s, rows, r)
                out["backends"]["postgresql"] = {"load_s": round(load_s, 2), "rows": rows, **r}
        except _Unreachable as exc:
            print(f"[postgresql] skipped: {exc}")
            out["backends"]["postgresql"] = {"skipped": str(exc)}

    got = [b["checksum"] for b in out["backends"].values() if "checksum" in b]
    if len(got) == 2:
        print(f"same report on both backends: {got[0] == got[1]}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"figures written to {RESULTS}")


class _Unreachable(Exception):
    pass


if __name__ == "__main__":
    main()
