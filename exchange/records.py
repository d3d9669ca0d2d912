"""Signing records: every document DocGate signs is kept, byte for byte, with who asked
for it and what was produced.

This is the file-backed first form of the archive (content-addressed blobs plus an
append-only JSON-lines journal); the exchange issue moves the journal into the
database behind the same interface. The bytes live in a ``FileBlobStore`` under
``root/blobs`` (``root/blobs/<sha[:2]>/<sha>``), written durably before the journal line
that names them. File I/O runs in a thread, never on the loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import os
import threading
import uuid
from pathlib import Path

from .blobs import FileBlobStore

__all__ = ["IdempotencyConflict", "RecordStore", "SigningRecord"]

_log = logging.getLogger(__name__)


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before for a different request."""


@dataclasses.dataclass(frozen=True)
class SigningRecord:
    id: str
    agency: str
    requested_by: str
    level: str
    appearance: str
    input_sha256: str
    output_sha256: str
    output_size: int
    created_at: str
    idempotency_key: str | None = None
    request_fingerprint: str | None = None


class RecordStore:
    """Content-addressed blob store plus journal under one folder."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._blobs = root / "blobs"
        self._blob_store = FileBlobStore(self._blobs)
        self._journal = root / "journal.jsonl"
        self._lock = threading.Lock()
        self._by_idempotency: dict[tuple[str, str], SigningRecord] = {}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._blobs.mkdir(parents=True, exist_ok=True)
        if self._journal.exists():
            with self._journal.open(encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    record = SigningRecord(**json.loads(line))
                    if record.idempotency_key:
                        self._by_idempotency[(record.requested_by, record.idempotency_key)] = record
        self._loaded = True

    def _add(
        self,
        *,
        agency: str,
        requested_by: str,
        level: str,
        appearance: str,
        input_sha256: str,
        output_sha256: str,
        pdf: bytes | Path,
        now: dt.datetime,
        idempotency_key: str | None,
        request_fingerprint: str | None,
        output_size: int = 0,
    ) -> SigningRecord:
        # the blob first: a record never points nowhere. A large document arrives as a
        # file (hashed by the worker that wrote it) and is moved into the store.
        if isinstance(pdf, Path):
            ref = self._blob_store.adopt_sync(pdf, output_sha256, output_size)
        else:
            ref = self._blob_store.put_sync(pdf)
        if ref.sha256 != output_sha256:
            # The store's own hash names the bytes; the record keeps that name.
            _log.warning("output_sha256 %s is not the hash of the bytes", output_sha256)
        with self._lock:
            self._load()
            record = SigningRecord(
                id=str(uuid.uuid4()),
                agency=agency,
                requested_by=requested_by,
                level=level,
                appearance=appearance,
                input_sha256=input_sha256,
                output_sha256=ref.sha256,
                output_size=ref.size,
                created_at=now.isoformat(),
                idempotency_key=idempotency_key,
                request_fingerprint=request_fingerprint,
            )
            with self._journal.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(dataclasses.asdict(record), ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            if idempotency_key:
                self._by_idempotency[(requested_by, idempotency_key)] = record
            return record

    def _replay(
        self, requested_by: str, key: str, fingerprint: str
    ) -> tuple[SigningRecord, bytes] | None:
        with self._lock:
            self._load()
            record = self._by_idempotency.get((requested_by, key))
        if record is None:
            return None
        if record.request_fingerprint != fingerprint:
            raise IdempotencyConflict(key)
        return record, self._blob_store.get_sync(record.output_sha256)  # hash-checked

    def check_writable(self) -> str:
        """'ok', or why records cannot be written (for readiness probes)."""
        try:
            self._blobs.mkdir(parents=True, exist_ok=True)
            probe = self._root / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            return f"archive folder is not writable: {exc.strerror}"
        return "ok"

    async def add(self, **kwargs) -> SigningRecord:
        return await asyncio.to_thread(lambda: self._add(**kwargs))

    def blob_path(self, sha256: str) -> Path:
        return self._blob_store.path_of(sha256)

    async def replay(
        self, requested_by: str, key: str, fingerprint: str
    ) -> tuple[SigningRecord, bytes] | None:
        """The earlier answer to the same Idempotency-Key, or None."""
        return await asyncio.to_thread(self._replay, requested_by, key, fingerprint)
