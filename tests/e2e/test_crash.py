"""Crash consistency of exchanges: ``kill -9`` of the whole service under load.

Agency A keeps sending signed exchanges to B and C from 8 threads; after 3-5 s the
service's process group (the server and its signing workers) gets SIGKILL, at whatever
point each request is (signing, blob write, the transaction, the webhook dispatcher in
the middle of a delivery). The service restarts on the same var dir and database, and:

- every exchange that got a 201 survived: it is in B's and C's inbox and A's outbox, its
  document downloads (as B and as C) with the acknowledged SHA-256, is a signed revision
  of the bytes A sent, and verifies valid;
- every exchange visible after the restart is whole (all or nothing): both recipients, a
  readable document, its four audit entries (signed, sent, received x2) and one webhook
  outbox row per recipient; no exchange audit entry names an exchange that does not exist;
- the audit chain verifies;
- the webhook notifications are not lost: after the restart they are delivered (at least
  once), except those the killed dispatcher had claimed, which stay pending until their
  lease ends.

On SQLite and on PostgreSQL (a fresh database per run, dropped at the end). B and C get a
webhook (set in the database: there is no API for it yet) pointing at a receiver here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import http.client
import http.server
import io
import json
import os
import random
import signal
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.content import RawContent, ResourceType
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from exchange.delivery import verify_signature
from tests.fixtures.db import _PG_DEFAULT, _pg_admin
from tests.fixtures.service import RunningService, start_service, stop_service
from tests.fixtures.tools import missing_component

A, B, C = "000.00.00.H41", "000.00.01.H41", "000.00.02.H41"
SENDERS = 8  # threads sending continuously
WEBHOOK_SECRET = "crash-test-webhook-secret"

pytestmark = pytest.mark.timeout(240)


# -- documents and requests ------------------------------------------------------------

_MARKER = b"X" * 32


def _template() -> bytes:
    """A one-page PDF whose text holds ``_MARKER`` (uncompressed, so that replacing the
    marker by another 32 bytes keeps every offset valid)."""
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
    content = RawContent(b"BT /F1 12 Tf 72 770 Td (Crash test " + _MARKER + b") Tj ET")
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


def _document() -> bytes:
    """A unique valid PDF (its text carries a fresh UUID)."""
    return TEMPLATE.replace(_MARKER, uuid.uuid4().hex.encode())


def _multipart(envelope: dict, document: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="envelope"\r\n'
        "Content-Type: application/json\r\n\r\n".encode()
        + json.dumps(envelope, ensure_ascii=False).encode()
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="d.pdf"\r\nContent-Type: application/pdf\r\n\r\n'.encode()
        + document
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _envelope(n: int) -> dict:
    return {
        "from": A,
        "to": [B, C],
        "channel": "electronic",
        "direction": "outgoing",
        "document": {
            "number": str(n),
            "notation": "UBND-VP",
            "type": "CV",
            "subject": f"Kiểm thử sự cố {n}",
            "promulgated_at": "2026-11-02",
            "secret": False,
        },
        "sign": True,
        "level": "B-B",  # fast: the crash is what is tested, not the timestamps
    }


def _get(svc: RunningService, token: str, path: str):
    return svc.request("GET", path, None, {"Authorization": f"Bearer {token}"}, timeout=60)


def _listing(svc: RunningService, token: str, path: str) -> list[dict]:
    """Every item of an inbox/outbox, following the cursors."""
    items: list[dict] = []
    cursor = None
    while True:
        page = _get(svc, token, f"{path}?limit=200" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status == 200, (path, page.status, page.body[:500])
        data = page.json()
        items += data["items"]
        cursor = data["next_cursor"]
        if not cursor:
            return items


# -- the database, read directly (outbox and audit rows have no API) --------------------


@dataclasses.dataclass
class Backend:
    name: str
    var_dir: Path
    env: dict[str, str]
    pg_url: str | None = None  # SQLAlchemy URL of the fresh PostgreSQL database

    def rows(self, sql: str) -> list[tuple]:
        if self.pg_url is None:
            con = sqlite3.connect(self.var_dir / "docgate.db", timeout=30)
            try:
                return [tuple(r) for r in con.execute(sql).fetchall()]
            finally:
                con.close()
        return asyncio.run(self._pg(sql, fetch=True))

    def execute(self, sql: str) -> None:
        if self.pg_url is None:
            con = sqlite3.connect(self.var_dir / "docgate.db", timeout=30)
            try:
                con.execute(sql)
                con.commit()
            finally:
                con.close()
            return
        asyncio.run(self._pg(sql, fetch=False))

    async def _pg(self, sql: str, *, fetch: bool):
        import asyncpg

        assert self.pg_url is not None
        conn = await asyncpg.connect(self.pg_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            if fetch:
                return [tuple(r) for r in await conn.fetch(sql)]
            await conn.execute(sql)
            return None
        finally:
            await conn.close()


def _utc(value) -> dt.datetime:
    if isinstance(value, str):  # SQLite's stored text
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    var_dir = tmp_path / "var"
    if request.param == "sqlite":
        yield Backend("sqlite", var_dir, {})
        return
    base = os.environ.get("DOCGATE_TEST_POSTGRES_URL", _PG_DEFAULT)
    name = f"docgate_crash_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(base, f'CREATE DATABASE "{name}"'))
    except (OSError, Exception) as exc:  # noqa: BLE001 - reported as a missing component
        missing_component(f"PostgreSQL at {base} is not reachable: {exc}")
    url = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield Backend("postgresql", var_dir, {"DOCGATE_DATABASE__URL": url}, url)
    finally:
        asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- the process group ------------------------------------------------------------------


def _live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            found.append(int(entry))
    return found


def _kill_group(svc: RunningService) -> list[int]:
    """SIGKILL the service's whole process group; the pids it held."""
    pgid = svc.process.pid  # start_service(new_session=True): the service leads its group
    members = _live_members(pgid)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    svc.process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _live_members(pgid):
        assert time.monotonic() < deadline, f"group {pgid} survived SIGKILL: {_live_members(pgid)}"
        time.sleep(0.05)
    return members


@pytest.fixture
def services():
    """Services started by the test; whatever still runs at the end is killed (group)."""
    started: list[RunningService] = []
    yield started
    for svc in started:
        if svc.process.poll() is None:
            try:
                os.killpg(svc.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            svc.process.wait(timeout=30)


# -- the webhook receiver ---------------------------------------------------------------


class Receiver:
    """Webhook endpoint on 127.0.0.1: records (exchange_id, agency) of every valid POST."""

    def __init__(self) -> None:
        self.received: set[tuple[str, str]] = set()
        self.bad: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                agency = self.path.rsplit("/", 1)[-1]
                signature = self.headers.get("DocGate-Signature", "")
                with receiver.lock:
                    try:
                        payload = json.loads(body)
                        if not verify_signature(WEBHOOK_SECRET, signature, body):
                            raise ValueError("bad DocGate-Signature")
                        if payload["agency"] != agency:
                            raise ValueError(f"for {payload['agency']} at {self.path}")
                        receiver.received.add((payload["exchange_id"], agency))
                    except (ValueError, KeyError, TypeError) as exc:
                        receiver.bad.append(f"{self.path}: {exc}")
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, agency: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook/{agency}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


# -- the load ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Ack:
    id: str
    document_sha256: str
    sent: bytes  # the unsigned bytes A posted


@dataclasses.dataclass
class Load:
    acked: list[Ack] = dataclasses.field(default_factory=list)
    refused: list[str] = dataclasses.field(default_factory=list)  # HTTP answers other than 201
    cut: list[tuple[float, str]] = dataclasses.field(default_factory=list)  # (started, error)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


def _send_until(svc: RunningService, token: str, stop: threading.Event, load: Load, n0: int):
    n = n0
    while not stop.is_set():
        n += SENDERS
        document = _document()
        body, ctype = _multipart(_envelope(n), document)
        headers = {"Content-Type": ctype, "Authorization": f"Bearer {token}"}
        started = time.monotonic()
        try:
            answer = svc.request("POST", "/v1/exchanges", body, headers, timeout=60)
            parsed = answer.json() if answer.status == 201 else None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            with load.lock:  # cut by the kill, or refused after it (until ``stop``)
                load.cut.append((started, f"{type(exc).__name__}: {exc}"))
            continue
        with load.lock:
            if parsed is not None:
                load.acked.append(Ack(parsed["id"], parsed["document_sha256"], document))
            else:
                load.refused.append(f"{answer.status} {answer.body[:300]!r}")


# -- the test ---------------------------------------------------------------------------


def test_kill_9_under_load_loses_no_acknowledged_exchange(backend: Backend, services):
    env = {"DOCGATE_DELIVERY__POLL_SECONDS": "0.2", **backend.env}
    with Receiver() as receiver:
        svc = start_service(backend.var_dir, env, new_session=True)
        services.append(svc)
        for agency in (B, C):  # webhooks: no API sets them yet
            backend.execute(
                f"UPDATE agencies SET webhook_url = '{receiver.url(agency)}', "
                f"webhook_secret = '{WEBHOOK_SECRET}' WHERE code = '{agency}'"
            )

        load, stop = Load(), threading.Event()
        token_a = svc.token(A)
        senders = [
            threading.Thread(target=_send_until, args=(svc, token_a, stop, load, i), daemon=True)
            for i in range(SENDERS)
        ]
        started_at = time.monotonic()
        for t in senders:
            t.start()
        time.sleep(random.uniform(3.0, 5.0))
        kill_at = time.monotonic()
        killed = _kill_group(svc)
        stop.set()
        for t in senders:
            t.join(timeout=90)
        assert not any(t.is_alive() for t in senders), "a sender thread hangs"
        with load.lock:
            acked = list(load.acked)
        in_flight = [error for started, error in load.cut if started < kill_at]
        summary = [
            f"{backend.name}: killed the group {killed} (server, workers, helpers) after "
            f"{kill_at - started_at:.1f} s: {len(acked)} exchanges acknowledged, "
            f"{len(in_flight)} requests in flight cut off ({sorted(set(in_flight))[:3]}), "
            f"{len(load.refused)} refused"
        ]
        assert len(killed) >= 3, f"expected the server and its 2 workers in the group: {killed}"
        assert len(acked) >= 10, f"the load produced too few exchanges: {summary}"

        svc = start_service(backend.var_dir, env, new_session=True)
        services.append(svc)
        problems = _check(svc, backend, receiver, acked, summary)
        problems += [f"answer other than 201 before the kill: {r}" for r in load.refused]
        stop_service(svc)

    print("\n".join(summary))
    assert not problems, "\n".join(summary + problems[:60] + [f"({len(problems)} problems)"])


def _check(svc, backend: Backend, receiver: Receiver, acked: list[Ack], summary: list[str]):
    a, b, c = (svc.token(x) for x in (A, B, C))
    problems: list[str] = []
    # Database rows before any download (downloads add audit entries of their own).
    exchanges = {r[0] for r in backend.rows("SELECT id FROM exchanges")}
    recipients: dict[str, list[str]] = {}
    for xid, agency in backend.rows("SELECT exchange_id, agency_code FROM recipients"):
        recipients.setdefault(xid, []).append(agency)
    events: dict[str, list[str]] = {}
    for subject, event in backend.rows(
        "SELECT subject, event FROM audit_entries WHERE event IN ('signed', 'sent', 'received')"
    ):
        events.setdefault(subject, []).append(event)

    outbox = _listing(svc, a, "/v1/outbox")
    inbox = {x: {i["id"] for i in _listing(svc, t, "/v1/inbox")} for x, t in ((B, b), (C, c))}
    outbox_ids = {i["id"] for i in outbox}
    acked_ids = {ack.id for ack in acked}
    unacked = outbox_ids - acked_ids
    summary.append(
        f"after restart: {len(exchanges)} exchange rows, {len(outbox_ids)} in A's outbox "
        f"({len(unacked)} committed whose 201 was cut off by the kill)"
    )

    # 1. No acknowledged exchange is lost.
    def acknowledged(ack: Ack) -> list[str]:
        found = []
        places = (("A's outbox", outbox_ids), ("B's inbox", inbox[B]), ("C's inbox", inbox[C]))
        for where, ids in places:
            if ack.id not in ids:
                found.append(f"LOST {ack.id}: acknowledged, missing from {where}")
        signed = None
        for agency, token in ((B, b), (C, c)):
            doc = _get(svc, token, f"/v1/exchanges/{ack.id}/document")
            if doc.status != 200:
                found.append(f"LOST {ack.id}: {agency} gets {doc.status} {doc.body[:200]!r}")
                continue
            if hashlib.sha256(doc.body).hexdigest() != ack.document_sha256:
                found.append(f"CHANGED {ack.id}: {agency}'s copy is not the acknowledged bytes")
            elif not doc.body.startswith(ack.sent):
                found.append(f"CHANGED {ack.id}: not a signed revision of what A sent")
            signed = doc.body
        if signed is not None:
            report = svc.request(
                "POST",
                "/v1/verify",
                signed,
                {"Content-Type": "application/pdf", "Authorization": f"Bearer {a}"},
                timeout=60,
            )
            if report.status != 200 or report.json().get("valid") is not True:
                found.append(f"INVALID {ack.id}: {report.status} {report.body[:300]!r}")
        return found

    # 2. Whatever is visible is whole.
    def whole(item: dict) -> list[str]:
        xid, found = item["id"], []
        if sorted(r["agency"] for r in item["recipients"]) != [B, C]:
            found.append(f"HALF {xid}: recipients {item['recipients']}")
        if sorted(recipients.get(xid, [])) != [B, C]:
            found.append(f"HALF {xid}: recipient rows {recipients.get(xid)}")
        if sorted(events.get(xid, [])) != ["received", "received", "sent", "signed"]:
            found.append(f"HALF {xid}: audit entries {sorted(events.get(xid, []))}")
        for agency, ids in inbox.items():
            if xid not in ids:
                found.append(f"HALF {xid}: not in {agency}'s inbox")
        doc = _get(svc, a, f"/v1/exchanges/{xid}/document")
        if doc.status != 200:
            found.append(f"HALF {xid}: its document answers {doc.status} {doc.body[:200]!r}")
        elif hashlib.sha256(doc.body).hexdigest() != item["document_sha256"]:
            found.append(f"HALF {xid}: its document does not match its document_sha256")
        return found

    with ThreadPoolExecutor(8) as pool:
        for found in pool.map(acknowledged, acked):
            problems += found
        for found in pool.map(whole, outbox):
            problems += found
    problems += [f"ORPHAN: exchange row {x} not in A's outbox" for x in exchanges - outbox_ids]
    for agency, ids in inbox.items():
        problems += [
            f"ORPHAN: {x} in {agency}'s inbox, not in A's outbox" for x in ids - outbox_ids
        ]
    problems += [
        f"ORPHAN: audit entries {sorted(e)} for {s}, which does not exist"
        for s, e in events.items()
        if s not in exchanges
    ]

    # 3. The audit chain verifies.
    verdict = _get(svc, svc.tokens["auditor"], "/v1/audit/verify")
    if verdict.status != 200 or verdict.json().get("ok") is not True:
        problems.append(f"AUDIT: {verdict.status} {verdict.body[:500]!r}")
    else:
        summary.append(f"audit chain: {verdict.json()['summary']}")

    # 4. Webhook notifications: one outbox row per recipient, delivered after the restart
    #    unless the killed dispatcher still holds its lease.
    problems += _check_webhooks(backend, receiver, outbox_ids, acked_ids, summary)

    # Leftovers of requests cut between the blob write and the commit (harmless garbage).
    blob_root = backend.var_dir / "archive" / "blobs"
    files = {p.name for p in blob_root.glob("??/*") if not p.name.startswith(".")}
    temps = list(blob_root.glob("??/.*.tmp-*"))
    referenced = {r[0] for r in backend.rows("SELECT sha256 FROM blobs")}
    problems += [
        f"LOST BLOB: {sha} is in the blobs table, not on disk" for sha in referenced - files
    ]
    summary.append(
        f"blob store: {len(files)} files, {len(files - referenced)} unreferenced "
        f"(written before a commit the kill prevented), {len(temps)} temporary files left"
    )
    return problems


def _check_webhooks(backend, receiver: Receiver, outbox_ids, acked_ids, summary) -> list[str]:
    problems: list[str] = []
    deadline = time.monotonic() + 25
    while True:
        now = dt.datetime.now(dt.UTC)
        rows = backend.rows(
            "SELECT exchange_id, agency_code, state, attempts, next_attempt_at FROM outbox"
        )
        with receiver.lock:
            received = set(receiver.received)
        waiting = [
            r
            for r in rows
            if r[2] == "pending" and _utc(r[4]) <= now and (r[0], r[1]) not in received
        ]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    per_pair: dict[tuple[str, str], list[tuple]] = {}
    for row in rows:
        per_pair.setdefault((row[0], row[1]), []).append(row)
    for xid in outbox_ids:
        for agency in (B, C):
            found = per_pair.get((xid, agency), [])
            if len(found) != 1:
                problems.append(f"WEBHOOK {xid}: {len(found)} outbox rows for {agency}")
    leased = 0
    for (xid, agency), found in per_pair.items():
        for _, _, state, attempts, next_at in found:
            if state == "failed":
                problems.append(f"WEBHOOK {xid}: failed for {agency}")
            elif state == "delivered" and (xid, agency) not in received:
                problems.append(f"WEBHOOK {xid}: marked delivered to {agency}, never received")
            elif state == "pending" and (xid, agency) not in received:
                if _utc(next_at) > now and attempts >= 1:
                    leased += 1  # claimed by the killed dispatcher: retried when the lease ends
                else:
                    problems.append(f"WEBHOOK {xid}: not delivered to {agency} after the restart")
    problems += [f"WEBHOOK: bad delivery {bad}" for bad in receiver.bad]
    lost = [p for p in ((x, g) for x in acked_ids for g in (B, C)) if p not in per_pair]
    problems += [f"WEBHOOK LOST {x}: no notification row for {g}" for x, g in lost]
    summary.append(
        f"webhooks: {len(rows)} outbox rows, {len(received)} notifications received, "
        f"{leased} still leased by the killed dispatcher"
    )
    return problems
