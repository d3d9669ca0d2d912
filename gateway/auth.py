"""Bearer tokens, checked against the database (hashes only, expiry, revocation): one
agency per ``agency`` token, or a role ``admin``/``auditor``. 401 without a valid token,
403 when the token may not act.

A token found valid is remembered for ``cache_seconds`` (setting ``auth.token_cache_seconds``,
default 5; 0 turns it off), never past its own expiry: under load the database lookup was
a third of the gateway process's CPU per request. The price: a token revoked with
``docgate token revoke`` keeps working for at most that many seconds. Unknown or
invalid tokens are never cached."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from exchange.agencies import AgencyRegistry, TokenInfo, hash_token
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
    def __init__(
        self, registry: AgencyRegistry, cache_seconds: float = 5.0, max_cached: int = 10_000
    ) -> None:
        self._registry = registry
        self._ttl = cache_seconds
        self._max = max_cached
        self._cache: dict[str, tuple[TokenInfo, float]] = {}  # token hash -> info, until

    async def _lookup(self, token: str, now: dt.datetime) -> TokenInfo | None:
        if self._ttl <= 0:
            return await self._registry.authenticate(token, now=now)
        key = hash_token(token)
        hit = self._cache.get(key)
        if hit is not None:
            info, until = hit
            if until > time.monotonic() and (info.expires_at is None or info.expires_at > now):
                return info
            del self._cache[key]
        info = await self._registry.authenticate(token, now=now)
        if info is not None:
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[key] = (info, time.monotonic() + self._ttl)
        return info

    async def authenticate(
        self, header: str | None, *, now: dt.datetime | None = None
    ) -> Principal:
        if not header:
            raise Problem(401, "unauthorized", "an Authorization: Bearer token is required")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 512:
            raise Problem(401, "unauthorized", "the Authorization header must be 'Bearer <token>'")
        info = await self._lookup(token, now or dt.datetime.now(dt.UTC))
        if info is None:
            raise Problem(
                401, "unauthorized", "the token is not valid (unknown, expired or revoked)"
            )
        return Principal(info.role, info.agency, info.label, info.id)
