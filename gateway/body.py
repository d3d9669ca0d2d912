"""Reading a PDF and its options from a request: raw ``application/pdf`` with query
options, or ``multipart/form-data`` with parts ``file`` and ``options``/``envelope``.
Bodies are streamed and cut off at the configured limit (413 ``too_large``).

With a ``spool`` folder, a document larger than ``spool_over`` bytes goes to a file
there as it arrives (written by a thread, never by the event loop), and the ``Upload``
holds its path instead of its bytes: a 100 MB scan costs the gateway process no more
memory than a 1-page letter. The caller removes the file (``Upload.release``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from .problems import Problem

__all__ = ["Spooling", "Upload", "read_upload"]

_JSON_PART_LIMIT = 64 * 1024
_CHUNK = 256 * 1024
_WRITE_BATCH = 1024 * 1024
_IDLE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Spooling:
    folder: Path  # where large bodies go
    over: int  # bytes kept in memory at most
    # bodies larger than ``over`` are read at most this many at a time: the event loop
    # copies a bounded amount per turn (health checks stay fast) and the memory buffered
    # before spooling is bounded; the other senders wait, throttled by TCP
    gate: asyncio.Semaphore | None = None
    idle_timeout: float = 60.0  # seconds without a byte from the client: 408


@dataclass(frozen=True)
class Upload:
    data: bytes  # empty when the document was spooled to ``path``
    options: dict[str, Any]
    path: Path | None = None
    size: int = 0

    async def release(self) -> None:
        """Remove the spooled file, if any (it may have been moved on already); runs to
        the end even when the request is being cancelled."""
        if self.path is not None:
            await asyncio.shield(asyncio.to_thread(self.path.unlink, missing_ok=True))

    def fingerprint(self) -> str:
        """SHA-256 of the document and the canonical JSON of the options: what an
        Idempotency-Key is bound to (blocking: call it in a thread)."""
        if self.path is not None:
            with self.path.open("rb") as fh:
                digest = hashlib.file_digest(fh, "sha256")
        else:
            digest = hashlib.sha256(self.data)
        digest.update(json.dumps(self.options, sort_keys=True, default=str).encode())
        return digest.hexdigest()


def _too_large(limit: int) -> Problem:
    return Problem(413, "too_large", f"the document is larger than the limit of {limit} bytes")


class _Body:
    """Chunks of one body: in memory up to ``spooling.over``, then in a file."""

    def __init__(self, limit: int, spooling: Spooling | None) -> None:
        self._limit, self._spooling = limit, spooling
        self._memory = bytearray()
        self._file = None
        self._path: Path | None = None
        self.size = 0

    async def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._limit:
            raise _too_large(self._limit)
        self._memory += chunk
        if self._file is None:
            if self._spooling is None or len(self._memory) <= self._spooling.over:
                return
            self._file = await asyncio.to_thread(self._open_file)
        if len(self._memory) >= _WRITE_BATCH:  # one thread hop per MiB, not per chunk
            await self._flush()

    async def _flush(self) -> None:
        pending, self._memory = self._memory, bytearray()
        await asyncio.to_thread(self._file.write, pending)

    def _open_file(self):
        assert self._spooling is not None
        self._spooling.folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".pdf", dir=self._spooling.folder)
        self._path = Path(name)
        return os.fdopen(fd, "wb")

    async def finish(self) -> tuple[bytes, Path | None]:
        if self._file is None:
            return bytes(self._memory), None
        if self._memory:
            await self._flush()
        await asyncio.to_thread(self._file.close)
        return b"", self._path

    async def abandon(self) -> None:
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
        if self._path is not None:
            self._path.unlink(missing_ok=True)


async def _read_body(read, limit: int, spooling: Spooling | None) -> _Body:
    """Chunks from ``read(n)`` until it returns b"", each within the idle timeout."""
    body = _Body(limit, spooling)
    idle = spooling.idle_timeout if spooling is not None else _IDLE_TIMEOUT
    try:
        while True:
            try:
                async with asyncio.timeout(idle):
                    chunk = await read(_CHUNK)
            except TimeoutError:
                raise Problem(
                    408, "request_timeout", f"no part of the body arrived for {idle:g} s"
                ) from None
            if not chunk:
                return body
            await body.add(chunk)
    except BaseException:  # too large, client gone, cancelled: leave no file behind
        await asyncio.shield(body.abandon())
        raise


def _gate(request: web.Request, spooling: Spooling | None):
    """The large-body gate when this body may be large (or its size is unknown)."""
    if spooling is None or spooling.gate is None:
        return contextlib.nullcontext()
    size = request.content_length
    return spooling.gate if size is None or size > spooling.over else contextlib.nullcontext()


def _json_object(raw: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Problem(422, "invalid_options", f"the {name} part is not valid UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise Problem(422, "invalid_options", f"the {name} part must be a JSON object")
    return value


async def read_upload(
    request: web.Request,
    limit: int,
    *,
    require_file: bool = True,
    with_query: bool = True,
    spooling: Spooling | None = None,
) -> Upload:
    """The PDF and its JSON options. ``require_file=False``: a multipart body may come
    without a ``file`` part (paper registrations); ``with_query=False``: the options are
    only the JSON part (the exchange envelope); ``spooling``: see the module notes."""
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise _too_large(limit)
    ctype = request.content_type
    if ctype == "multipart/form-data":
        try:
            reader = await request.multipart()
        except (ValueError, AssertionError):
            raise Problem(400, "bad_request", "the multipart body cannot be parsed") from None
        document: _Body | None = None
        options: dict[str, Any] = {}
        try:
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise Problem(
                        422, "invalid_options", "nested multipart bodies are not accepted"
                    )
                if part.name == "file":
                    if document is not None:
                        raise Problem(422, "invalid_options", "send exactly one file part")
                    async with _gate(request, spooling):
                        document = await _read_body(part.read_chunk, limit, spooling)
                elif part.name in ("options", "envelope"):
                    json_part = await _read_body(part.read_chunk, _JSON_PART_LIMIT, None)
                    raw, _ = await json_part.finish()
                    options.update(_json_object(raw, part.name))
                else:
                    await part.release()
        except (ValueError, AssertionError, UnicodeDecodeError):
            if document is not None:
                await document.abandon()
            raise Problem(400, "bad_request", "the multipart body is malformed") from None
        except BaseException:
            if document is not None:
                await asyncio.shield(document.abandon())
            raise
        if document is None:
            if require_file:
                raise Problem(422, "invalid_options", "the multipart body has no 'file' part")
            document = _Body(limit, None)
        query = dict(request.query) if with_query else {}
        data, path = await document.finish()
        return Upload(data, {**query, **options}, path, document.size)
    if not with_query:
        raise Problem(
            415, "unsupported_media_type", "send multipart/form-data with an 'envelope' part"
        )
    if ctype not in ("application/pdf", "application/octet-stream", ""):
        raise Problem(
            415,
            "unsupported_media_type",
            "send the PDF as application/pdf or as multipart/form-data with a 'file' part",
        )
    async with _gate(request, spooling):
        body = await _read_body(request.content.read, limit, spooling)
    if not body.size:
        raise Problem(422, "not_a_pdf", "the request body is empty")
    data, path = await body.finish()
    return Upload(data, dict(request.query), path, body.size)
