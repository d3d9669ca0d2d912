"""Bearer tokens, checked against the database (hashes only, expiry, revocation): one
agency per ``agency`` token, or a role ``admin``/``auditor``. 401 without a valid token,
403 when the token may not act."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from exchange.agencies import AgencyRegistry
from exchange.models import Role

from .problems import Problem

__all__ = ["Authenticator", "Principal", "Role"]


@dataclass(frozen=True)
class Principal:
    role: Role
    agency: str | None
    label: str
    token_id: str = ""

    def signing_agency(self, requested: str | None) -> str:
        """Which agency's key this principal may sign with, given the request."""
        if self.role is Role.AGENCY:
            if requested and requested != self.agency:
                raise Problem(
                    403, "forbidden", f"this token may sign only for agency {self.agency}"
                )
            assert self.agency is not None
            return self.agency
        if self.role is Role.ADMIN:
            if not requested:
                raise Problem(422, "invalid_options", "an admin must name the agency to sign for")
            return requested
        raise Problem(403, "forbidden", "auditor tokens cannot sign")

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Problem(403, "forbidden", "this token may not do this")


class Authenticator:
    def __init__(self, registry: AgencyRegistry) -> None:
        self._registry = registry

    async def authenticate(
        self, header: str | None, *, now: dt.datetime | None = None
    ) -> Principal:
        if not header:
            raise Problem(401, "unauthorized", "an Authorization: Bearer token is required")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 512:
            raise Problem(401, "unauthorized", "the Authorization header must be 'Bearer <token>'")
        info = await self._registry.authenticate(token, now=now or dt.datetime.now(dt.UTC))
        if info is None:
            raise Problem(
                401, "unauthorized", "the token is not valid (unknown, expired or revoked)"
            )
        return Principal(info.role, info.agency, info.label, info.id)
