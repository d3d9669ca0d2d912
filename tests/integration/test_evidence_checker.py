"""The bundled ``verify_evidence/`` checker of an evidence package (exchange/evidence.py),
run as a third party would (``python verify_evidence``, a subprocess on the unzipped
folder), on both databases: naming the problem once an entry, the document, the envelope,
a status or the checkpoint token is changed; a package no checkpoint covers; a range a
later exchange extends; verified and paper registrations.

The world is in tests/fixtures/exchange_world.py, the helpers in tests/fixtures/evidence.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import select

from exchange.models import AuditEntry, Role
from exchange.uow import UnitOfWork
from tests.fixtures.evidence import (
    processed_exchange,
    read_entries,
    rehash,
    run_checker,
    unzip,
    write_entries,
)
from tests.fixtures.exchange_world import PDF

# -- changes the checker names -----------------------------------------------------------


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
