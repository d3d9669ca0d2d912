"""Blob store: the exact bytes of every signed or received document, addressed by their
SHA-256.

``BlobStore`` is the interface (an object store can replace the filesystem);
``FileBlobStore`` keeps ``root/<sha[:2]>/<sha>``. A ``put`` is durable before it returns
(temporary file, fsync, rename, fsync of the directory), so the database transaction that
refers to the blob may commit right after it. Equal bytes are stored once. ``get`` checks
the hash of what it read. File I/O and hashing run in a thread, never on the event loop.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from signing.mapped import file_sha256

__all__ = [
    "BlobCorrupted",
    "BlobError",
    "BlobMissing",
    "BlobRef",
    "BlobStore",
    "FileBlobStore",
    "InvalidBlobId",
    "validate_sha256",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobError(Exception):
    """Base of the blob store's errors; ``sha256`` names the blob."""

    def __init__(self, sha256: str, message: str) -> None:
        super().__init__(message)
        self.sha256 = sha256


class InvalidBlobId(BlobError, ValueError):
    """Not 64 lowercase hexadecimal digits (refused before any path is built)."""

    def __init__(self, sha256: str) -> None:
        super().__init__(sha256, f"not a SHA-256 hex digest: {sha256[:80]!r}")


class BlobMissing(BlobError):
    def __init__(self, sha256: str) -> None:
        super().__init__(sha256, f"blob {sha256} is not in the store")


class BlobCorrupted(BlobError):
    """The stored bytes no longer hash to their name."""

    def __init__(self, sha256: str, actual: str) -> None:
        super().__init__(sha256, f"blob {sha256} is corrupted (its bytes hash to {actual})")
        self.actual = actual


@dataclass(frozen=True)
class BlobRef:
    sha256: str
    size: int


def validate_sha256(sha256: str) -> str:
    """``sha256`` itself when it is 64 lowercase hex digits, else ``InvalidBlobId``."""
    if not isinstance(sha256, str) or _SHA256.fullmatch(sha256) is None:
        raise InvalidBlobId(str(sha256))
    return sha256


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore(abc.ABC):
    """Content-addressed, write-once storage of document bytes."""

    @abc.abstractmethod
    async def put(self, data: bytes) -> BlobRef:
        """Store ``data``; durable when this returns. Storing equal bytes again is a no-op."""

    @abc.abstractmethod
    async def get(self, sha256: str) -> bytes:
        """The bytes named ``sha256``; ``BlobMissing``, ``BlobCorrupted``, ``InvalidBlobId``."""

    @abc.abstractmethod
    async def exists(self, sha256: str) -> bool:
        """Whether the blob is stored (without reading or checking it)."""

    @abc.abstractmethod
    async def put_file(self, source: Path) -> BlobRef:
        """Store the file ``source`` (a large document, never read into memory); it is
        consumed (moved or deleted) either way. Durable when this returns."""

    @abc.abstractmethod
    async def get_file(self, sha256: str) -> Path:
        """A file holding the bytes named ``sha256``, checked against it in chunks (to be
        sent without reading it into memory); the errors of ``get``."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobStore(BlobStore):
    """Blobs as files ``root/<sha[:2]>/<sha>`` on a local (POSIX) filesystem."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    @property
    def root(self) -> Path:
        return self._root

    def path_of(self, sha256: str) -> Path:
        sha256 = validate_sha256(sha256)
        return self._root / sha256[:2] / sha256

    async def put(self, data: bytes) -> BlobRef:
        return await asyncio.to_thread(self.put_sync, bytes(data))

    async def get(self, sha256: str) -> bytes:
        return await asyncio.to_thread(self.get_sync, sha256)

    async def exists(self, sha256: str) -> bool:
        path = self.path_of(sha256)
        return await asyncio.to_thread(path.is_file)

    async def put_file(self, source: Path) -> BlobRef:
        return await asyncio.to_thread(self.put_file_sync, source)

    async def get_file(self, sha256: str) -> Path:
        return await asyncio.to_thread(self.get_file_sync, sha256)

    # The blocking forms, for callers already on a worker thread.

    def put_sync(self, data: bytes) -> BlobRef:
        ref = BlobRef(_sha256(data), len(data))
        path = self.path_of(ref.sha256)
        shard = path.parent
        if not shard.is_dir():
            self._root.mkdir(parents=True, exist_ok=True)
            shard.mkdir(exist_ok=True)
            _fsync_dir(self._root)  # the shard's own name must survive a crash too
        try:
            if path.stat().st_size == ref.size:
                # Stored before (maybe by a concurrent put whose rename is not yet synced):
                # make sure the name is durable before the caller commits a reference to it.
                _fsync_dir(shard)
                return ref
        except FileNotFoundError:
            pass
        # Absent, or the wrong size (truncated): write it (again).
        tmp = shard / f".{ref.sha256}.tmp-{uuid.uuid4().hex}"
        try:
            with tmp.open("xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(shard)
        return ref

    def put_file_sync(self, source: Path) -> BlobRef:
        try:
            sha256, size = file_sha256(source)
        except BaseException:
            source.unlink(missing_ok=True)
            raise
        return self.adopt_sync(source, sha256, size)

    def get_file_sync(self, sha256: str) -> Path:
        path = self.path_of(sha256)
        try:
            actual, _ = file_sha256(path)
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        if actual != sha256:
            raise BlobCorrupted(sha256, actual)
        return path

    def adopt_sync(self, source: Path, sha256: str, size: int) -> BlobRef:
        """Store the file ``source`` (whose SHA-256 the caller computed while writing
        it) by renaming it into place: no copy of a large document. The file is gone
        from ``source`` afterwards either way. Must be on the same filesystem."""
        ref = BlobRef(validate_sha256(sha256), size)
        path = self.path_of(ref.sha256)
        shard = path.parent
        if not shard.is_dir():
            self._root.mkdir(parents=True, exist_ok=True)
            shard.mkdir(exist_ok=True)
            _fsync_dir(self._root)
        try:
            if path.stat().st_size == ref.size:
                source.unlink(missing_ok=True)
                _fsync_dir(shard)
                return ref
        except FileNotFoundError:
            pass
        try:
            fd = os.open(source, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(source, path)
        except BaseException:
            source.unlink(missing_ok=True)
            raise
        _fsync_dir(shard)
        return ref

    def get_sync(self, sha256: str) -> bytes:
        path = self.path_of(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        actual = _sha256(data)
        if actual != sha256:
            raise BlobCorrupted(sha256, actual)
        return data
