"""Exchanges between agencies (API.md "Exchanges"): thin handlers over
``exchange.exchanges.ExchangeService``; errors become problem+json in the middleware."""

from __future__ import annotations

import asyncio
import base64
import json

from aiohttp import web

from exchange.exchanges import parse_envelope
from exchange.models import Role

from .auth import Principal
from .body import read_upload
from .keys import APP_STATE, PRINCIPAL
from .problems import Problem
from .work import spooling

__all__ = ["routes"]

routes = web.RouteTableDef()


def _json(value, status: int = 200) -> web.Response:
    return web.json_response(
        value, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False, default=str)
    )


def _agency_only(principal: Principal) -> str:
    if principal.role is not Role.AGENCY or principal.agency is None:
        raise Problem(403, "forbidden", "inbox and outbox belong to an agency token")
    return principal.agency


@routes.post("/v1/exchanges")
async def create_exchange(request: web.Request) -> web.Response:
    state = request.app[APP_STATE]
    principal: Principal = request[PRINCIPAL]
    upload = await read_upload(
        request,
        state.settings.service.max_upload_bytes,
        require_file=False,
        with_query=False,
        spooling=spooling(state),
    )
    try:
        envelope = parse_envelope(upload.options)
        idempotency = None
        key = request.headers.get("Idempotency-Key")
        if key is not None:
            idempotency = (key, await asyncio.to_thread(upload.fingerprint))
        result = await state.exchanges.create(
            principal.agency,
            principal.role is Role.ADMIN,
            envelope,
            upload.path or upload.data or None,  # a large document stays a file
            idempotency,
        )
    finally:  # moved into the archive, or left over: gone either way
        await upload.release()
    return _json(result.to_json(), status=200 if result.replayed else 201)


async def _page(request: web.Request, outgoing: bool) -> web.Response:
    state = request.app[APP_STATE]
    agency = _agency_only(request[PRINCIPAL])
    q = request.query
    fetch = state.exchanges.outbox if outgoing else state.exchanges.inbox
    page = await fetch(
        agency,
        status=q.get("status"),
        since=q.get("since"),
        limit=q.get("limit", 50),
        cursor=q.get("cursor"),
    )
    return _json(page.to_json())


@routes.get("/v1/inbox")
async def inbox(request: web.Request) -> web.Response:
    return await _page(request, outgoing=False)


@routes.get("/v1/outbox")
async def outbox(request: web.Request) -> web.Response:
    return await _page(request, outgoing=True)


@routes.get("/v1/exchanges/{id}")
async def get_exchange(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    body = await request.app[APP_STATE].exchanges.get(
        request.match_info["id"], principal.agency, principal.role
    )
    return _json(body)


@routes.get("/v1/exchanges/{id}/document")
async def get_document(request: web.Request) -> web.StreamResponse:
    """The archived file, checked against its SHA-256 in chunks and sent by sendfile:
    a 100 MB scan is never read into the gateway's memory."""
    principal: Principal = request[PRINCIPAL]
    path, sha = await request.app[APP_STATE].exchanges.document_file(
        request.match_info["id"], principal.agency, principal.role
    )
    digest = base64.b64encode(bytes.fromhex(sha)).decode()
    return web.FileResponse(
        path,
        headers={"Content-Type": "application/pdf", "Repr-Digest": f"sha-256=:{digest}:"},
    )


@routes.get("/v1/exchanges/{id}/evidence")
async def get_evidence(request: web.Request) -> web.StreamResponse:
    """The evidence ZIP (exchange/evidence.py), streamed from its spooled file. Admin and
    auditor only (the service answers 403 to agencies); the document only for an admin."""
    principal: Principal = request[PRINCIPAL]
    package = await request.app[APP_STATE].exchanges.evidence(
        request.match_info["id"], principal.agency, principal.role
    )
    try:
        digest = base64.b64encode(bytes.fromhex(package.sha256)).decode()
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="{package.filename}"',
                "Repr-Digest": f"sha-256=:{digest}:",
            }
        )
        response.content_length = package.size
        await response.prepare(request)
        while chunk := await asyncio.to_thread(package.file.read, 1 << 20):
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        package.close()


@routes.post("/v1/exchanges/{id}/status")
async def post_status(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    if principal.role is not Role.AGENCY or principal.agency is None:
        raise Problem(403, "forbidden", "statuses are posted by the agencies party to it")
    if request.content_length is not None and request.content_length > 16 * 1024:
        raise Problem(413, "too_large", "the body is larger than 16 KiB")
    try:
        body = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Problem(422, "invalid_status", 'the body must be JSON: {"code", "note"}') from None
    if not isinstance(body, dict) or set(body) - {"code", "note"}:
        raise Problem(422, "invalid_status", 'send {"code": "03", "note": "..."} only')
    result = await request.app[APP_STATE].exchanges.change_status(
        request.match_info["id"], principal.agency, body.get("code"), body.get("note")
    )
    return _json(result)
