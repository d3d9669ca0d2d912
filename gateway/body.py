"""Reading a PDF and its options from a request: raw ``application/pdf`` with query
options, or ``multipart/form-data`` with parts ``file`` and ``options``/``envelope``.
Bodies are streamed and cut off at the configured limit (413 ``too_large``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from .problems import Problem

__all__ = ["Upload", "read_upload"]

_JSON_PART_LIMIT = 64 * 1024
_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Upload:
    data: bytes
    options: dict[str, Any]


def _too_large(limit: int) -> Problem:
    return Problem(413, "too_large", f"the document is larger than the limit of {limit} bytes")


async def _read_limited(stream, limit: int) -> bytes:
    parts = []
    size = 0
    async for chunk in stream.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


async def _read_part(part: BodyPartReader, limit: int) -> bytes:
    out = bytearray()
    while True:
        chunk = await part.read_chunk(_CHUNK)
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > limit:
            raise _too_large(limit)


def _json_object(raw: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Problem(422, "invalid_options", f"the {name} part is not valid UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise Problem(422, "invalid_options", f"the {name} part must be a JSON object")
    return value


async def read_upload(
    request: web.Request, limit: int, *, require_file: bool = True, with_query: bool = True
) -> Upload:
    """The PDF and its JSON options. ``require_file=False``: a multipart body may come
    without a ``file`` part (paper registrations); ``with_query=False``: the options are
    only the JSON part (the exchange envelope)."""
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise _too_large(limit)
    ctype = request.content_type
    if ctype == "multipart/form-data":
        try:
            reader = await request.multipart()
        except (ValueError, AssertionError):
            raise Problem(400, "bad_request", "the multipart body cannot be parsed") from None
        data: bytes | None = None
        options: dict[str, Any] = {}
        try:
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise Problem(
                        422, "invalid_options", "nested multipart bodies are not accepted"
                    )
                if part.name == "file":
                    if data is not None:
                        raise Problem(422, "invalid_options", "send exactly one file part")
                    data = await _read_part(part, limit)
                elif part.name in ("options", "envelope"):
                    raw = await _read_part(part, _JSON_PART_LIMIT)
                    options.update(_json_object(raw, part.name))
                else:
                    await part.release()
        except (ValueError, AssertionError, UnicodeDecodeError):
            raise Problem(400, "bad_request", "the multipart body is malformed") from None
        if data is None and require_file:
            raise Problem(422, "invalid_options", "the multipart body has no 'file' part")
        query = dict(request.query) if with_query else {}
        return Upload(data or b"", {**query, **options})
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
    data = await _read_limited(request.content, limit)
    if not data:
        raise Problem(422, "not_a_pdf", "the request body is empty")
    return Upload(data, dict(request.query))
