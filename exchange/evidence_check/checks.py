"""The package, its manifest, the audit chain and what the chain says about the exchange.
Standard library only."""

# ruff: noqa: B905, UP031
# (the checker runs on Python 3.8+, away from DocGate: no 3.10+ idioms)

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import zipfile

FORMAT = "docgate-evidence/1"
GENESIS = "0" * 64


class Problem(Exception):
    pass


# -- the package -----------------------------------------------------------------------


class Package:
    def __init__(self, path):
        self.path = path
        self.zip = zipfile.ZipFile(path) if os.path.isfile(path) else None

    def has(self, name):
        if self.zip is not None:
            return name in self.zip.namelist()
        return os.path.isfile(os.path.join(self.path, *name.split("/")))

    def read(self, name):
        if not self.has(name):
            raise Problem(name + " is missing from the package")
        if self.zip is not None:
            return self.zip.read(name)
        with open(os.path.join(self.path, *name.split("/")), "rb") as fh:
            return fh.read()

    def json(self, name):
        try:
            return json.loads(self.read(name).decode("utf-8"))
        except ValueError:
            raise Problem(name + " is not valid JSON") from None


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def check_manifest(pkg):
    manifest = pkg.json("manifest.json")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise Problem("manifest.json is not a " + FORMAT + " manifest")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise Problem("manifest.json lists no files")
    for name in sorted(files):
        if name.startswith("/") or ".." in name.split("/"):
            raise Problem("manifest.json names a file outside the package: " + name)
        expected = files[name].get("sha256") if isinstance(files[name], dict) else None
        actual = sha256_hex(pkg.read(name))
        if actual != expected:
            raise Problem(
                "%s does not match manifest.json (SHA-256 %s, listed %s)" % (name, actual, expected)
            )
    for name in ("envelope.json", "status_history.json", "audit/entries.jsonl"):
        if name not in files:
            raise Problem("manifest.json does not list " + name)
    return manifest


# -- the chain -------------------------------------------------------------------------


def canonical(value):
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def entry_hash(prev_hash, entry):
    document = {k: entry[k] for k in ("seq", "created_at", "event", "actor", "subject", "payload")}
    digest = hashlib.sha256(bytes.fromhex(prev_hash))
    digest.update(canonical(document).encode("utf-8"))
    return digest.hexdigest()


def is_hex64(value):
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def check_chain(pkg, manifest):
    audit = manifest.get("audit") or {}
    entries = []
    raw = pkg.read("audit/entries.jsonl")
    lines = raw[:-1].split(b"\n") if raw.endswith(b"\n") else raw.split(b"\n")
    for number, line in enumerate(lines if raw else [], 1):  # "\n" only: JSON escapes it
        try:
            entry = json.loads(line.decode("utf-8"))
        except ValueError:
            raise Problem("audit/entries.jsonl line %d is not JSON" % number) from None
        fields = ("seq", "created_at", "event", "actor", "subject", "payload", "prev_hash", "hash")
        if not isinstance(entry, dict) or any(k not in entry for k in fields):
            raise Problem("audit/entries.jsonl line %d is not an audit entry" % number)
        entries.append(entry)
    if not entries:
        raise Problem(
            "the package holds no audit entries about exchange " + str(manifest.get("exchange_id"))
        )
    if entries[0]["seq"] != audit.get("first_seq"):
        raise Problem(
            "audit/entries.jsonl does not start at entry %s as manifest.json says"
            % audit.get("first_seq")
        )
    prev = entries[0]["prev_hash"]
    for i, entry in enumerate(entries):
        seq = entry["seq"]
        if not isinstance(seq, int) or (i and seq != entries[i - 1]["seq"] + 1):
            raise Problem("audit entry %r is out of sequence" % (seq,))
        if not is_hex64(entry["prev_hash"]) or not is_hex64(entry["hash"]):
            raise Problem("audit entry %d has a malformed hash" % seq)
        if entry["prev_hash"] != prev:
            raise Problem(
                "audit entry %d does not link to entry %d (prev_hash mismatch)" % (seq, seq - 1)
            )
        try:
            recomputed = entry_hash(prev, entry)
        except (TypeError, ValueError):
            recomputed = None
        if recomputed != entry["hash"]:
            raise Problem("audit entry %d was altered (hash mismatch)" % seq)
        prev = entry["hash"]
    if entries[-1]["seq"] != audit.get("through_seq"):
        raise Problem(
            "audit/entries.jsonl does not end at entry %s as manifest.json says"
            % audit.get("through_seq")
        )
    return entries


# -- what the chain says about the exchange ------------------------------------------


def same_time(a, b):
    try:
        return dt.datetime.fromisoformat(a) == dt.datetime.fromisoformat(b)
    except (TypeError, ValueError):
        return False


def check_exchange(pkg, manifest, entries):
    """None, or a note on what was not checked (a document the package does not hold)."""
    exchange_id = manifest.get("exchange_id")
    about = [e for e in entries if e["subject"] == exchange_id]
    created = [e for e in about if e["event"] in ("sent", "registered")]
    if not created:
        raise Problem(
            "the audit entries do not record the creation of exchange " + str(exchange_id)
        )
    recorded = {
        e["payload"].get("document_sha256")
        for e in about
        if isinstance(e["payload"], dict) and "document_sha256" in e["payload"]
    }
    document = manifest.get("document")
    note = None
    if document and document.get("file") is None:  # withheld (a package for an auditor)
        listed = document.get("sha256")
        if recorded != {listed}:
            raise Problem(
                "the document manifest.json names (SHA-256 %s) is not the one the audit "
                "chain records (%s)" % (listed, ", ".join(sorted(map(str, recorded))))
            )
        note = (
            "the document file is not in the package, so it was NOT checked; the SHA-256 "
            "manifest.json names for it (%s) is the one the audit chain records" % listed
        )
    elif document:
        actual = sha256_hex(pkg.read(document["file"]))
        if recorded != {actual}:
            raise Problem(
                "%s (SHA-256 %s) is not the document the audit chain records (%s)"
                % (document["file"], actual, ", ".join(sorted(map(str, recorded))))
            )
    elif recorded != {None}:
        raise Problem("the audit chain records a document that the package does not hold")

    envelope = pkg.json("envelope.json")
    first = created[0]["payload"]
    if envelope.get("from") != first.get("from") or envelope.get("to") != first.get("to"):
        raise Problem("envelope.json's from/to differ from what the audit chain records")

    changes = [e for e in about if e["event"] == "status_changed"]
    history = pkg.json("status_history.json")
    for recipient in history.get("recipients") or ():
        agency = recipient.get("agency")
        mine = [e for e in changes if e["payload"].get("agency") == agency]
        items = recipient.get("history") or []
        if len(items) > len(mine):
            raise Problem(
                "status_history.json lists statuses of %s that the audit chain does "
                "not record" % agency
            )
        for item, entry in zip(items, mine):
            p = entry["payload"]
            if (item.get("code"), item.get("note"), item.get("actor")) != (
                p.get("code"),
                p.get("note"),
                entry["actor"],
            ) or not same_time(item.get("at"), entry["created_at"]):
                raise Problem(
                    "status %s of %s in status_history.json differs from audit entry "
                    "%d" % (item.get("code"), agency, entry["seq"])
                )

    verification = pkg.json("verification.json")
    report = verification.get("report") if isinstance(verification, dict) else None
    reported = ((report or {}).get("document") or {}).get("sha256")
    if document and reported and reported != document["sha256"]:
        raise Problem("verification.json reports on a different document (%s)" % reported)
    return note
