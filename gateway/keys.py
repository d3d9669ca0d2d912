"""Typed keys for what the app and each request carry."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exchange.agencies import AgencyRegistry
from exchange.db import Database
from exchange.records import IdempotencyConflict, RecordStore
from signing.pool import SigningPool

from .auth import Authenticator
from .metrics import Metrics
from .ratelimit import RateLimiter
from .settings import Settings
from .wiring import Wiring

__all__ = ["APP_STATE", "PRINCIPAL", "AppState"]


@dataclass
class AppState:
    settings: Settings
    wiring: Wiring
    pool: SigningPool
    records: RecordStore
    metrics: Metrics
    limiter: RateLimiter
    trust_pem: bytes
    db: Database
    registry: AgencyRegistry
    auth: Authenticator
    tsa_certificates: list | None = None
    checkpoints: Any = None  # gateway.checkpoints.CheckpointJob, set once the app starts
    exchanges: Any = None  # exchange.exchanges.ExchangeService, set once the app starts
    IdempotencyConflict: type[Exception] = IdempotencyConflict
    _locks: dict[tuple[str, str], list] = field(default_factory=dict)
    large_uploads: asyncio.Semaphore | None = None  # set by the app; gateway.body.Spooling.gate

    @contextlib.asynccontextmanager
    async def idempotency_lock(self, requester: str, key: str):
        """Serialise requests that share an Idempotency-Key (the second waits and then
        replays the first answer); the lock is dropped when nobody holds or waits."""
        entry = self._locks.setdefault((requester, key), [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self._locks.pop((requester, key), None)


APP_STATE = web.AppKey("docgate_state", AppState)
PRINCIPAL = "docgate.principal"  # request key: the authenticated Principal
