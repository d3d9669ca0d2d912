"""POST /v1/sign: parse, authorise, hand the document to a signing worker, archive the
result, answer with the signed PDF."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from pathlib import Path
from typing import Any

from aiohttp import web

from signing.errors import InvalidOptionsError
from signing.options import Appearance, CopyForm, Level, SignOptions, parse_box

from .auth import Principal
from .body import Upload, read_upload
from .keys import APP_STATE, PRINCIPAL
from .problems import Problem
from .work import spooling, while_connected

__all__ = ["routes"]

routes = web.RouteTableDef()

_KNOWN = {
    "agency",
    "level",
    "appearance",
    "page",
    "box",
    "reason",
    "location",
    "number",
    "copy_form",
}


def _str(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise InvalidOptionsError(f"{name} must be a string")
    return value


def parse_options(raw: dict[str, Any], principal: Principal, default_level: Level) -> SignOptions:
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise InvalidOptionsError(f"unknown option(s): {', '.join(unknown)}")
    agency = principal.signing_agency(_str(raw, "agency"))
    page_raw = _str(raw, "page")
    try:
        page = int(page_raw) if page_raw is not None else None
    except ValueError:
        raise InvalidOptionsError(
            "page must be an integer (1-based, negative from the end)"
        ) from None
    box_raw = raw.get("box")
    if isinstance(box_raw, list):
        box_raw = ",".join(str(v) for v in box_raw)
    level = _str(raw, "level")
    appearance = _str(raw, "appearance")
    copy_form = _str(raw, "copy_form")
    return SignOptions(
        agency=agency,
        level=Level.parse(level) if level else default_level,
        appearance=Appearance.parse(appearance) if appearance else None,
        page=page,
        box=parse_box(box_raw) if box_raw else None,
        reason=_str(raw, "reason"),
        location=_str(raw, "location"),
        number=_str(raw, "number"),
        copy_form=CopyForm.parse(copy_form) if copy_form else None,
    )


def _answer(
    pdf: bytes | Path, sha256_hex: str, level: str, record_id: str, appearance: str
) -> web.StreamResponse:
    """The signed PDF: from memory, or (large documents) sent from its archived file
    by the kernel (sendfile), never read into the gateway's memory."""
    digest = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
    headers = {
        "DocGate-Level": level,
        "DocGate-Record": record_id,
        "DocGate-Appearance": appearance,
        "Repr-Digest": f"sha-256=:{digest}:",
        "Content-Disposition": 'attachment; filename="signed.pdf"',
    }
    if isinstance(pdf, Path):
        headers["Content-Type"] = "application/pdf"
        return web.FileResponse(pdf, headers=headers)
    return web.Response(body=pdf, content_type="application/pdf", headers=headers)


@routes.post("/v1/sign")
async def sign(request: web.Request) -> web.StreamResponse:
    state = request.app[APP_STATE]
    upload = await read_upload(
        request, state.settings.service.max_upload_bytes, spooling=spooling(state)
    )
    try:
        return await _sign(request, state, upload)
    finally:
        await upload.release()


async def _sign(request: web.Request, state, upload: Upload) -> web.StreamResponse:
    principal: Principal = request[PRINCIPAL]
    options = parse_options(upload.options, principal, state.settings.signing.default_level)
    if options.agency not in state.wiring.agencies:
        raise Problem(404, "unknown_agency", f"agency {options.agency} is not configured here")

    requester = principal.label or principal.role.value
    idem_key = request.headers.get("Idempotency-Key")
    fingerprint = None
    if idem_key is not None:
        if not 1 <= len(idem_key) <= 200 or not idem_key.isprintable():
            raise Problem(
                422, "invalid_idempotency_key", "Idempotency-Key must be 1-200 printable characters"
            )
        fingerprint = await asyncio.to_thread(upload.fingerprint)
        async with state.idempotency_lock(requester, idem_key):
            try:
                replay = await state.records.replay(requester, idem_key, fingerprint)
            except state.IdempotencyConflict:
                raise Problem(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                ) from None
            if replay is not None:
                record, pdf = replay
                return _answer(
                    pdf, record.output_sha256, record.level, record.id, record.appearance
                )
            return await _sign_and_record(
                request, state, upload, options, requester, idem_key, fingerprint
            )
    return await _sign_and_record(request, state, upload, options, requester, None, None)


async def _sign_and_record(
    request, state, upload: Upload, options, requester, idem_key, fingerprint
) -> web.StreamResponse:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    started = asyncio.get_running_loop().time()
    signed: bytes | Path
    if upload.path is None:
        result = await while_connected(request, state.pool.sign(upload.data, options, now))
        signed = result.pdf
    else:
        work = state.pool.sign_file(upload.path, options, now)
        result, signed = await while_connected(request, work)
    state.metrics.observe_signature(result.level.value, asyncio.get_running_loop().time() - started)
    record = await asyncio.shield(
        state.records.add(
            agency=options.agency,
            requested_by=requester,
            level=result.level.value,
            appearance=result.appearance.value,
            input_sha256=result.input_sha256,
            output_sha256=result.output_sha256,
            pdf=signed,
            output_size=result.output_size,
            now=now,
            idempotency_key=idem_key,
            request_fingerprint=fingerprint,
        )
    )
    body = state.records.blob_path(record.output_sha256) if upload.path else result.pdf
    return _answer(
        body, record.output_sha256, result.level.value, record.id, result.appearance.value
    )
