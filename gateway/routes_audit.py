"""GET /v1/audit/verify (admin, auditor): re-compute the audit chain and its checkpoints."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from exchange.audit import render_verdict, verify_chain
from exchange.models import Role
from exchange.uow import UnitOfWork

from .keys import APP_STATE, PRINCIPAL

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/v1/audit/verify")
async def audit_verify(request: web.Request) -> web.Response:
    request[PRINCIPAL].require(Role.ADMIN, Role.AUDITOR)
    state = request.app[APP_STATE]
    async with UnitOfWork(state.db) as uow:
        verdict = await verify_chain(uow.session, tsa_certificates=state.tsa_certificates)
    return web.json_response({**dataclasses.asdict(verdict), "summary": render_verdict(verdict)})
