"""Evidence packages (exchange/evidence.py) on both databases: the ZIP's layout, the
bundled ``verify_evidence/`` checker run as a third party would (``python
verify_evidence``, a subprocess on the unzipped folder) saying OK, and naming the problem
once an entry, the document, the envelope, a status or the checkpoint token is changed;
who may export (operators only; the document only for an admin); the delivery state in
``ExchangeService.get``; and the whole path over HTTP against ``docgate serve``.

Signing and verification are fakes (as in test_exchanges.py); the blob store, the audit
chain, the outbox and the development TSA are real.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import random
import secrets
import subprocess
import sys
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select, update

from exchange import audit, delivery
from exchange.blobs import FileBlobStore
from exchange.evidence import CHECKER, FORMAT
from exchange.exchanges import (
    Envelope,
    ExchangeService,
    ForbiddenError,
    NotFoundError,
    StoredDocumentCorrupted,
    parse_envelope,
)
from exchange.models import Agency, AuditCheckpoint, AuditEntry, AuditEvent, OutboxMessage, Role
from exchange.uow import UnitOfWork
from signing.timestamps import load_dev_timestamper
from tests.fixtures.pdfs import simple_pdf

PDF = b"%PDF-1.7\n% a document\n%%EOF\n"
T0 = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)
CHECKER_FILES = {
    "verify_evidence/__main__.py",
    "verify_evidence/checks.py",
    "verify_evidence/anchor.py",
    "verify_evidence/der.py",
}
LAYOUT = CHECKER_FILES | {
    "manifest.json",
    "document.pdf",
    "verification.json",
    "envelope.json",
    "status_history.json",
    "audit/entries.jsonl",
    "audit/checkpoint.json",
    "audit/checkpoint.tsr",
    "audit/tsa_chain.pem",
}


# -- the world (as in test_exchanges.py) -------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class World:
    db: object
    service: ExchangeService
    clock: Clock
    blobs: FileBlobStore
    tsa: object
    a: str
    b: str
    c: str
    d: str
    audited: list = field(default_factory=list)

    def envelope(self, **changes) -> Envelope:
        to = changes.pop("to", [self.b, self.c])
        return parse_envelope(raw_envelope(self.a, to, **changes))

    async def send(self, envelope: Envelope | None = None, document: bytes | None = PDF):
        envelope = envelope or self.envelope()
        return await self.service.create(envelope.registrant, False, envelope, document)

    async def checkpoint(self) -> AuditCheckpoint | None:
        async with UnitOfWork(self.db) as uow:
            made = await audit.checkpoint(uow.session, self.tsa, now=self.clock())
            await uow.commit()
        return made

    async def export(self, exchange_id: str, role=Role.ADMIN) -> bytes:
        package = await self.service.evidence(exchange_id, None, role)  # operators only
        try:
            data = package.file.read()
        finally:
            package.close()
        assert len(data) == package.size
        assert hashlib.sha256(data).hexdigest() == package.sha256
        assert package.filename == f"docgate-evidence-{exchange_id}.zip"
        return data


def raw_envelope(sender: str, to: list[str], **changes) -> dict:
    raw = {
        "from": sender,
        "to": to,
        "channel": "electronic",
        "direction": "outgoing",
        "document": {
            "number": "123",
            "notation": "UBND-VP",
            "type": "CV",
            "subject": "Về việc tổ chức hội nghị",
            "promulgated_at": "2026-11-02",
            "due_date": "2026-11-20",
            "secret": False,
        },
        "sign": True,
        "level": "B-LT",
    }
    raw.update(changes)
    return raw


async def _seed_agencies(db, count: int = 4) -> list[str]:
    async with UnitOfWork(db) as uow:
        while True:
            first, second = secrets.randbelow(1000), secrets.randbelow(100)
            codes = [f"{first:03d}.{second:02d}.{i:02d}.H41" for i in range(count)]
            found = await uow.session.execute(select(Agency.code).where(Agency.code.in_(codes)))
            if not found.first():
                break
        for i, code in enumerate(codes):
            uow.session.add(
                Agency(
                    code=code,
                    name=f"Cơ quan {i}",
                    webhook_url=f"https://agency{i}.example/hook" if i < 2 else None,
                    webhook_secret="s3cret" if i < 2 else None,
                    created_at=T0,
                )
            )
        await uow.commit()
    return codes


@pytest.fixture
def tsa(dev_pki):
    return load_dev_timestamper(
        dev_pki.tsa_cert, dev_pki.tsa_key, (dev_pki.intermediate_cert, dev_pki.root_cert)
    )


@pytest.fixture
async def world(db, tmp_path, tsa) -> World:
    a, b, c, d = await _seed_agencies(db)
    clock = Clock()
    blobs = FileBlobStore(tmp_path / "blobs")
    w = World(db, None, clock, blobs, tsa, a, b, c, d)  # type: ignore[arg-type]

    async def sign(document: bytes, agency: str, level: str) -> tuple[bytes, str]:
        return document + f"% signed by {agency} at {level}\n".encode(), level

    async def verify(document: bytes) -> dict:
        return {
            "valid": True,
            "document": {"sha256": hashlib.sha256(document).hexdigest(), "size": len(document)},
            "signatures": [{"field": "Sig1", "indication": "TOTAL_PASSED", "level": "B-T"}],
            "summary": {"vi": "...", "en": "valid"},
        }

    async def audit_append(session, **kw):
        w.audited.append((kw["event"], kw["subject"], kw["payload"]))
        return await audit.append(session, **kw)

    w.service = ExchangeService(
        db,
        blobs,
        sign=sign,
        verify=verify,
        audit_append=audit_append,
        enqueue=delivery.enqueue,
        clock=clock,
    )
    return w


# -- the package on disk and the checker -------------------------------------------------


def unzip(data: bytes, folder: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(folder)
    return folder


def run_checker(folder: Path, *args: str, python: tuple[str, ...] = ()) -> tuple[int, str]:
    """``python verify_evidence`` as a third party runs it: its own process, no DocGate on
    the path (``-I``: isolated from PYTHONPATH and the working directory; Python puts the
    folder it runs, and only that, first on sys.path)."""
    done = subprocess.run(
        [sys.executable, "-I", *python, str(folder / "verify_evidence"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=folder,
    )
    assert done.stderr == "", done.stderr
    return done.returncode, done.stdout.strip()


def rehash(folder: Path) -> None:
    """What a forger does after changing a file: write the manifest's hashes again."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for name, listed in manifest["files"].items():
        listed["sha256"] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def read_entries(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "audit/entries.jsonl").read_text().splitlines()]


def write_entries(folder: Path, entries: list[dict]) -> None:
    lines = (json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries)
    (folder / "audit/entries.jsonl").write_text("".join(lines))


async def processed_exchange(w: World) -> str:
    """A -> B, C, signed by the gateway; B acknowledges and processes, C acknowledges."""
    result = await w.send()
    for agency, code in ((w.b, "01"), (w.b, "03"), (w.c, "01")):
        w.clock.tick()
        await w.service.change_status(result.id, agency, code, f"ghi chú {code}")
    return result.id


# -- the package -------------------------------------------------------------------------


async def test_the_package_holds_everything_and_verifies_offline(world, tmp_path, dev_pki):
    w = world
    xid = await processed_exchange(w)
    w.clock.tick()
    cp = await w.checkpoint()
    assert cp is not None
    w.clock.tick()
    data = await w.export(xid)  # an admin's: with the document

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert set(zf.namelist()) == LAYOUT
        assert zf.namelist()[0] == "manifest.json"
    folder = unzip(data, tmp_path / "package")
    manifest = json.loads((folder / "manifest.json").read_text())
    signed = PDF + f"% signed by {w.a} at B-LT\n".encode()
    sha = hashlib.sha256(signed).hexdigest()
    assert manifest["format"] == FORMAT and manifest["exchange_id"] == xid
    assert manifest["generated_at"] == w.clock().isoformat()
    assert manifest["generated_for"] == {"role": "admin", "agency": None}
    assert manifest["document"] == {"file": "document.pdf", "sha256": sha}
    assert set(manifest["files"]) == LAYOUT - {"manifest.json"}
    for name, listed in manifest["files"].items():
        content = (folder / name).read_bytes()
        assert listed == {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
    assert (folder / "document.pdf").read_bytes() == signed
    assert set(CHECKER) == CHECKER_FILES
    source = Path(__file__).parents[2] / "exchange" / "evidence_check"
    for name, content in CHECKER.items():
        assert (folder / name).read_bytes() == content
        assert content == (source / name.removeprefix("verify_evidence/")).read_bytes()

    envelope = json.loads((folder / "envelope.json").read_text())
    assert envelope["from"] == w.a and envelope["to"] == [w.b, w.c]
    verification = json.loads((folder / "verification.json").read_text())
    assert verification["report"] is None and verification["signed_by_gateway"] is True
    assert verification["level"] == "B-LT"
    history = json.loads((folder / "status_history.json").read_text())
    assert [r["agency"] for r in history["recipients"]] == [w.b, w.c]  # as in GET, for admin
    assert [h["code"] for h in history["recipients"][0]["history"]] == ["01", "03"]

    entries = read_entries(folder)
    assert [e["seq"] for e in entries] == list(range(entries[0]["seq"], cp.seq + 1))
    assert entries[0]["subject"] == xid and entries[0]["event"] == "signed"
    assert entries[-1]["hash"] == cp.head_hash
    audit_info = manifest["audit"]
    assert audit_info["anchored"] is True and audit_info["through_seq"] == cp.seq
    assert audit_info["first_seq"] == entries[0]["seq"] and audit_info["entries"] == len(entries)
    checkpoint = json.loads((folder / "audit/checkpoint.json").read_text())
    assert (checkpoint["seq"], checkpoint["head_hash"]) == (cp.seq, cp.head_hash)
    assert (folder / "audit/checkpoint.tsr").read_bytes() == cp.timestamp_token
    assert (folder / "audit/tsa_chain.pem").read_text().count("BEGIN CERTIFICATE") == 3

    code, out = run_checker(folder)
    assert code == 0 and out.startswith(f"OK: exchange {xid}"), out
    assert "SHA-256" in out  # the TSA root's fingerprint, to compare
    code, out = run_checker(folder, "--trust", str(dev_pki.root_cert))
    assert code == 0 and "chains to a certificate in" in out, out
    code, out = run_checker(folder, "--trust", str(dev_pki.ocsp_cert))
    assert code == 1 and "does not chain to a certificate in" in out, out
    zipped = tmp_path / "package.zip"
    zipped.write_bytes(data)
    assert run_checker(folder, str(zipped))[0] == 0  # the ZIP itself, unopened

    # the export is audited, after the package was made (so it is not in it)
    event, subject, payload = w.audited[-1]
    assert (event, subject) == (AuditEvent.DOWNLOADED, xid)
    assert payload == {
        "evidence": True,
        "role": "admin",
        "sha256": sha,
        "document_included": True,
        "package_sha256": hashlib.sha256(data).hexdigest(),
    }


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


async def test_any_change_is_named(world, tmp_path):
    w = world
    xid = await processed_exchange(w)
    cp = await w.checkpoint()
    data = await w.export(xid)
    n = iter(range(100))

    def fresh() -> Path:
        return unzip(data, tmp_path / f"copy{next(n)}")

    def check(folder: Path, expected: str, *args: str) -> None:
        code, out = run_checker(folder, *args)
        assert code == 1 and out.startswith("PROBLEM: ") and expected in out, out

    assert run_checker(fresh())[0] == 0

    def sent_entry(entries: list[dict]) -> dict:
        return next(e for e in entries if e["subject"] == xid and e["event"] == "sent")

    # one byte of an entry, as is and with the manifest rewritten
    folder = fresh()
    entries = read_entries(folder)
    sent = sent_entry(entries)
    sent["actor"] = sent["actor"][:-1] + chr(ord(sent["actor"][-1]) ^ 1)
    write_entries(folder, entries)
    check(folder, "audit/entries.jsonl does not match manifest.json")
    rehash(folder)
    check(folder, f"audit entry {sent['seq']} was altered (hash mismatch)")

    # a forger who recomputes every hash after the change is stopped by the checkpoint
    folder = fresh()
    entries = read_entries(folder)
    sent_entry(entries)["payload"]["to"] = [w.b]
    prev = entries[0]["prev_hash"]
    for e in entries:
        e["prev_hash"] = prev
        document = {k: e[k] for k in ("seq", "created_at", "event", "actor", "subject")}
        document["payload"] = e["payload"]
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        e["hash"] = prev = hashlib.sha256(bytes.fromhex(prev) + canonical.encode()).hexdigest()
    write_entries(folder, entries)
    rehash(folder)
    check(folder, "the checkpoint does not name the last audit entry")
    # ... and without the checkpoint the package is not anchored
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["audit"]["checkpoint"] = None
    (folder / "manifest.json").write_text(json.dumps(manifest))
    check(folder, "NOT ANCHORED")

    # the document
    folder = fresh()
    pdf = folder / "document.pdf"
    pdf.write_bytes(pdf.read_bytes().replace(b"a document", b"A document"))
    check(folder, "document.pdf does not match manifest.json")
    rehash(folder)
    check(folder, "document.pdf (SHA-256 ")
    check(folder, "is not the document the audit chain records")

    # the envelope and a status
    folder = fresh()
    envelope = json.loads((folder / "envelope.json").read_text())
    envelope["to"] = [w.b]
    (folder / "envelope.json").write_text(json.dumps(envelope))
    rehash(folder)
    check(folder, "envelope.json's from/to differ from what the audit chain records")
    folder = fresh()
    history = json.loads((folder / "status_history.json").read_text())
    history["recipients"][0]["history"][1]["code"] = "06"
    (folder / "status_history.json").write_text(json.dumps(history))
    rehash(folder)
    check(folder, "status 06 of")

    # the timestamp token: its signature, its message imprint
    token = (fresh() / "audit/checkpoint.tsr").read_bytes()
    imprint = hashlib.sha256(bytes.fromhex(cp.head_hash)).digest()
    for at, expected in (
        (len(token) - 1, "the timestamp token's signature is invalid"),
        (token.index(imprint) + 5, "message imprint mismatch"),
    ):
        folder = fresh()
        (folder / "audit/checkpoint.tsr").write_bytes(_flip(token, at))
        check(folder, "audit/checkpoint.tsr does not match manifest.json")
        rehash(folder)
        check(folder, expected)

    # without `cryptography` (-S: no site-packages) the signature cannot be checked
    folder = fresh()
    code, out = run_checker(folder, python=("-S",))
    assert code == 1 and "without the 'cryptography' package" in out, out
    code, out = run_checker(folder, "--skip-token-signature", python=("-S",))
    assert code == 0 and "token signature NOT checked" in out, out


async def test_a_package_no_checkpoint_covers_says_so(world, tmp_path):
    w = world
    await w.send()
    await w.checkpoint()  # an older checkpoint does not cover what follows
    w.clock.tick()
    result = await w.send()
    w.clock.tick()
    await w.service.change_status(result.id, w.c, "01", None)
    folder = unzip(await w.export(result.id, Role.AUDITOR), tmp_path / "package")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["audit"]["anchored"] is False and manifest["audit"]["checkpoint"] is None
    assert "NOT ANCHORED" in manifest["audit"]["note"]
    assert not (folder / "audit/checkpoint.tsr").exists()
    async with UnitOfWork(w.db) as uow:
        head = (
            await uow.session.execute(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()))
        ).first()
    assert read_entries(folder)[-1]["seq"] == head[0] - 1  # the head at export (then audited)
    code, out = run_checker(folder)
    assert code == 1 and "NOT ANCHORED" in out, out
    code, out = run_checker(folder, "--allow-unanchored")
    assert code == 0 and out.startswith("OK: ") and "NOT ANCHORED" in out, out


async def test_a_later_mention_extends_the_range(world, tmp_path):
    """A later exchange of the same bytes names the first as duplicate_of: that entry is
    about the first exchange too, so the range runs through it."""
    w = world
    first = await w.send()
    w.clock.tick()
    second = await w.send()
    assert second.duplicate_of == first.id
    cp = await w.checkpoint()
    folder = unzip(await w.export(first.id), tmp_path / "package")
    entries = read_entries(folder)
    assert any(e["subject"] == second.id and e["event"] == "sent" for e in entries)
    assert entries[-1]["seq"] == cp.seq
    assert run_checker(folder)[0] == 0


async def test_verified_and_paper_registrations(world, tmp_path):
    w = world
    verified = await w.send(w.envelope(sign=False))
    paper = await w.send(w.envelope(channel="paper", sign=False), document=None)
    await w.checkpoint()

    folder = unzip(await w.export(verified.id), tmp_path / "verified")
    report = json.loads((folder / "verification.json").read_text())
    assert report["report"]["document"]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert report["signed_by_gateway"] is False and report["level"] == "B-T"
    assert run_checker(folder)[0] == 0
    (folder / "document.pdf").write_bytes(PDF + b"%")
    report["report"]["document"]["sha256"] = hashlib.sha256(PDF + b"%").hexdigest()
    (folder / "verification.json").write_text(json.dumps(report))
    rehash(folder)
    assert "is not the document the audit chain records" in run_checker(folder)[1]

    folder = unzip(await w.export(paper.id, Role.AUDITOR), tmp_path / "paper")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["document"] is None and not (folder / "document.pdf").exists()
    assert run_checker(folder)[0] == 0


FORBIDDEN = (
    "evidence packages are exported by an operator (admin or auditor): the chain proof "
    "discloses other exchanges' metadata"
)


async def test_who_may_export(world):
    """Operators only, as the chain proof shows other exchanges' entries: even the parties
    get 403, before any lookup (so it says nothing about whether the exchange exists)."""
    w = world
    xid = await processed_exchange(w)
    await w.checkpoint()
    assert await w.export(xid, Role.ADMIN)
    assert await w.export(xid, Role.AUDITOR)
    exports = [p for e, s, p in w.audited if e is AuditEvent.DOWNLOADED and s == xid]
    assert [p["role"] for p in exports] == ["admin", "auditor"]
    assert [p["document_included"] for p in exports] == [True, False]
    before = len(w.audited)
    for agency, target in ((w.a, xid), (w.b, xid), (w.c, xid), (w.d, xid), (w.a, "x" * 37)):
        with pytest.raises(ForbiddenError) as denied:
            await w.service.evidence(target, agency, Role.AGENCY)
        assert (denied.value.status, denied.value.code) == (403, "forbidden")
        assert denied.value.detail == FORBIDDEN
    with pytest.raises(NotFoundError):
        await w.service.evidence(str(uuid.uuid4()), None, Role.ADMIN)
    with pytest.raises(NotFoundError):
        await w.service.evidence("x" * 37, None, Role.AUDITOR)
    assert len(w.audited) == before


async def test_an_auditors_package_names_the_document_without_it(world, tmp_path):
    """Auditors may not download documents: the manifest names the SHA-256, the checker
    holds it to the chain and says the file was not checked."""
    w = world
    xid = await processed_exchange(w)
    await w.checkpoint()
    data = await w.export(xid, Role.AUDITOR)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert set(zf.namelist()) == LAYOUT - {"document.pdf"}
    folder = unzip(data, tmp_path / "package")
    manifest = json.loads((folder / "manifest.json").read_text())
    sha = hashlib.sha256(PDF + f"% signed by {w.a} at B-LT\n".encode()).hexdigest()
    assert manifest["generated_for"] == {"role": "auditor", "agency": None}
    assert manifest["document"]["file"] is None and manifest["document"]["sha256"] == sha
    assert "auditor" in manifest["document"]["withheld"]
    assert set(manifest["files"]) == LAYOUT - {"manifest.json", "document.pdf"}
    history = json.loads((folder / "status_history.json").read_text())
    assert [r["agency"] for r in history["recipients"]] == [w.b, w.c]

    code, out = run_checker(folder)
    assert code == 0 and out.startswith(f"OK: exchange {xid}"), out
    assert "the document file is not in the package, so it was NOT checked" in out, out
    assert f"({sha}) is the one the audit chain records" in out, out
    zipped = tmp_path / "package.zip"
    zipped.write_bytes(data)
    assert run_checker(folder, str(zipped)) == (code, out)  # the ZIP itself, unopened

    # the named SHA-256 is still held to the chain
    manifest["document"]["sha256"] = hashlib.sha256(b"another document").hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    code, out = run_checker(folder)
    assert code == 1 and "is not the one the audit chain records" in out, out


async def test_a_damaged_archive_gives_no_package(world):
    w = world
    result = await w.send()
    path = w.blobs.path_of(result.document_sha256)
    path.write_bytes(path.read_bytes().replace(b"document", b"d0cument"))
    with pytest.raises(StoredDocumentCorrupted):
        await w.service.evidence(result.id, None, Role.ADMIN)
    assert AuditEvent.DOWNLOADED not in [e for e, s, _ in w.audited if s == result.id]
    # an auditor's package holds no document, so the archive is not read for it
    assert await w.export(result.id, Role.AUDITOR)


# -- delivery state in GET /v1/exchanges/{id} -------------------------------------------


async def test_get_shows_the_webhook_deliveries(world):
    w = world  # A and B have webhooks, C has none
    result = await w.send()
    detail = await w.service.get(result.id, w.a, Role.AGENCY)
    (to_b,) = detail["delivery"]
    assert to_b["agency"] == w.b and to_b["event"] == "exchange.received"
    assert (to_b["state"], to_b["attempts"], to_b["last_error"]) == ("pending", 0, None)
    assert to_b["next_attempt_at"] == T0.isoformat() and to_b["delivered_at"] is None
    assert (await w.service.get(result.id, w.c, Role.AGENCY))["delivery"] == []
    w.clock.tick()
    await w.service.change_status(result.id, w.b, "01", None)  # notifies the sender A
    error = "ClientConnectorError: Cannot connect to host agency1.example:443"
    async with UnitOfWork(w.db) as uow:
        await uow.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.exchange_id == result.id, OutboxMessage.agency_code == w.b)
            .values(attempts=1, last_error=error)
        )
        await uow.commit()

    as_sender = (await w.service.get(result.id, w.a, Role.AGENCY))["delivery"]
    assert [(d["agency"], d["event"]) for d in as_sender] == [
        (w.a, "exchange.status_changed"),
        (w.b, "exchange.received"),
    ]
    assert as_sender[1]["attempts"] == 1 and as_sender[1]["last_error"] == "withheld"
    as_b = (await w.service.get(result.id, w.b, Role.AGENCY))["delivery"]
    assert [(d["agency"], d["last_error"]) for d in as_b] == [(w.b, error)]
    for role in (Role.ADMIN, Role.AUDITOR):
        everything = (await w.service.get(result.id, None, role))["delivery"]
        assert [d["last_error"] for d in everything] == [None, error]


# -- over HTTP ---------------------------------------------------------------------------


def _cli(service, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGATE_")}
    env["DOCGATE_SERVICE__VAR_DIR"] = str(service.var_dir)
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


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


def test_evidence_over_http(service, tmp_path):
    a_code, b_code = "000.00.00.H41", "000.00.01.H41"
    a, b, c = (service.token(x) for x in (a_code, b_code, "000.00.02.H41"))
    hooked = json.loads(_cli(service, "agency", "webhook", b_code, "http://127.0.0.1:9/hook"))
    assert hooked["agency"] == b_code and hooked["secret"].startswith("whsec_")
    try:
        envelope = raw_envelope(a_code, [b_code])
        envelope["document"]["number"] = str(random.randint(1, 999))
        body, ctype = _multipart(envelope, simple_pdf())
        sent = service.request(
            "POST", "/v1/exchanges", body, {"Content-Type": ctype, "Authorization": f"Bearer {a}"}
        )
        assert sent.status == 201, sent.body
        xid = sent.json()["id"]
        detail = service.request(
            "GET", f"/v1/exchanges/{xid}", None, {"Authorization": f"Bearer {a}"}
        )
        assert [d["agency"] for d in detail.json()["delivery"]] == [b_code]
    finally:
        assert _cli(service, "agency", "webhook", b_code, "--off").strip() == (
            f"webhook of {b_code} removed"
        )
    # (the service's own hourly job may have timestamped the head already)
    made = _cli(service, "audit", "checkpoint")
    assert made.startswith(("checkpoint at entry", "nothing to checkpoint")), made

    path = f"/v1/exchanges/{xid}/evidence"
    for agency in (a, b, c):  # not even the parties: the chain proof shows other exchanges
        denied = service.request("GET", path, None, {"Authorization": f"Bearer {agency}"})
        assert denied.status == 403 and denied.json()["code"] == "forbidden", denied.body
        assert denied.json()["detail"] == FORBIDDEN
    admin = {"Authorization": f"Bearer {service.token()}"}
    got = service.request("GET", path, None, admin)
    assert got.status == 200, got.body
    assert got.headers["content-type"] == "application/zip"
    assert f'filename="docgate-evidence-{xid}.zip"' in got.headers["content-disposition"]
    digest = hashlib.sha256(got.body).digest()
    assert got.headers["repr-digest"] == f"sha-256=:{base64.b64encode(digest).decode()}:"
    folder = unzip(got.body, tmp_path / "package")
    code, out = run_checker(folder, "--trust", str(service.root_pem))
    assert code == 0 and out.startswith(f"OK: exchange {xid}"), out
    pdf = service.request(
        "GET", f"/v1/exchanges/{xid}/document", None, {"Authorization": f"Bearer {b}"}
    )
    assert (folder / "document.pdf").read_bytes() == pdf.body

    # the exports and the download are audited about the exchange: checkpoint them too
    made = _cli(service, "audit", "checkpoint")
    assert made.startswith(("checkpoint at entry", "nothing to checkpoint")), made
    auditor = service.request(
        "GET", path, None, {"Authorization": f"Bearer {service.tokens['auditor']}"}
    )
    assert auditor.status == 200
    folder = unzip(auditor.body, tmp_path / "auditor")
    assert not (folder / "document.pdf").exists()
    code, out = run_checker(folder, "--trust", str(service.root_pem))
    assert code == 0 and out.startswith(f"OK: exchange {xid}"), out
    assert "the document file is not in the package, so it was NOT checked" in out, out
    denied = service.request("GET", path, None, {"Authorization": f"Bearer {c}"})
    assert denied.status == 403 and denied.json()["code"] == "forbidden"
    missing = service.request("GET", f"/v1/exchanges/{uuid.uuid4()}/evidence", None, admin)
    assert missing.status == 404 and missing.json()["code"] == "not_found"
    missing = service.request(  # an agency learns nothing about an id it may not see
        "GET", f"/v1/exchanges/{uuid.uuid4()}/evidence", None, {"Authorization": f"Bearer {b}"}
    )
    assert missing.status == 403 and missing.json()["code"] == "forbidden"
    assert service.request("GET", path).status == 401
