"""Evidence packages (exchange/evidence.py) on both databases: building one and what it
holds (the ZIP's layout, the manifest, the document, the envelope, the status history, the
audit range and its checkpoint); who may export (operators only; the document only for an
admin); an archive that no longer matches gives no package; and the delivery state in
``ExchangeService.get``.

The world is in tests/fixtures/exchange_world.py, the helpers in tests/fixtures/evidence.py;
the checker's verdicts on changed packages are in test_evidence_checker.py, the whole path
over HTTP in tests/e2e/test_evidence_http.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import update

from exchange.evidence import CHECKER, FORMAT
from exchange.exchanges import ForbiddenError, NotFoundError, StoredDocumentCorrupted
from exchange.models import AuditEvent, OutboxMessage, Role
from exchange.uow import UnitOfWork
from tests.fixtures.evidence import (
    CHECKER_FILES,
    FORBIDDEN,
    LAYOUT,
    processed_exchange,
    read_entries,
    run_checker,
    unzip,
)
from tests.fixtures.exchange_world import PDF, T0

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
