"""The agency registry and bearer tokens on both databases: hashes only, expiry,
revocation, code validation, the HTTP authenticator on top, and webhook settings."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import random

import pytest
from sqlalchemy import select

from exchange import audit
from exchange.agencies import AgencyError, AgencyRegistry, hash_token
from exchange.models import Agency, AuditEntry, Role, Token
from exchange.uow import UnitOfWork
from gateway.auth import Authenticator
from gateway.problems import Problem

NOW = dt.datetime(2026, 11, 29, 4, 0, tzinfo=dt.UTC)


def _code() -> str:
    return f"{random.randint(100, 999)}.{random.randint(10, 99)}.00.H41"


@pytest.fixture
def registry(db):
    return AgencyRegistry(lambda: UnitOfWork(db))


async def test_agencies_are_validated_and_listed(registry):
    code = _code()
    await registry.add_agency(code, "Sở Tài chính", None, actor="t", now=NOW)
    assert {"code": code, "name": "Sở Tài chính", "parent": None} in await registry.list_agencies()
    for bad, field in (("H41", "code"), ("000.00.00.h41", "code")):
        with pytest.raises(AgencyError) as exc:
            await registry.add_agency(bad, "x", None, actor="t", now=NOW)
        assert exc.value.field == field and exc.value.status == 422
    with pytest.raises(AgencyError) as exc:
        await registry.add_agency(code, "again", None, actor="t", now=NOW)
    assert exc.value.status == 409
    with pytest.raises(AgencyError) as exc:
        await registry.add_agency(_code(), "x", "999.99.99.Z99", actor="t", now=NOW)
    assert exc.value.field == "parent"


async def test_tokens_are_hashed_expire_and_revoke(registry, db):
    code = _code()
    await registry.add_agency(code, "Sở Xây dựng", None, actor="t", now=NOW)
    issued = await registry.issue_token(
        Role.AGENCY, code, "dms", actor="t", now=NOW, expires_at=NOW + dt.timedelta(days=1)
    )
    async with UnitOfWork(db) as uow:
        stored = (await uow.session.execute(select(Token.sha256))).scalars().all()
    assert hash_token(issued.token) in stored and issued.token not in stored
    auth = Authenticator(registry, cache_seconds=0)  # every call asks the database
    principal = await auth.authenticate(f"Bearer {issued.token}", now=NOW)
    assert (principal.role, principal.agency) == (Role.AGENCY, code)
    with pytest.raises(Problem) as exc:  # expired
        await auth.authenticate(f"Bearer {issued.token}", now=NOW + dt.timedelta(days=2))
    assert exc.value.status == 401
    assert await registry.revoke_token(issued.info.id, actor="t", now=NOW)
    with pytest.raises(Problem):
        await auth.authenticate(f"Bearer {issued.token}", now=NOW)
    for header in (None, "", "Basic x", "Bearer", "Bearer nope"):
        with pytest.raises(Problem) as exc:
            await auth.authenticate(header, now=NOW)
        assert exc.value.status == 401


async def test_valid_tokens_are_remembered_briefly_and_never_past_expiry(registry):
    code = _code()
    await registry.add_agency(code, "Sở Công Thương", None, actor="t", now=NOW)
    issued = await registry.issue_token(
        Role.AGENCY, code, "dms", actor="t", now=NOW, expires_at=NOW + dt.timedelta(hours=1)
    )
    auth = Authenticator(registry, cache_seconds=0.5)
    header = f"Bearer {issued.token}"
    assert (await auth.authenticate(header, now=NOW)).agency == code
    assert await registry.revoke_token(issued.info.id, actor="t", now=NOW)
    # within the cache time the revoked token still passes (the documented bound) ...
    assert (await auth.authenticate(header, now=NOW)).agency == code
    await asyncio.sleep(0.6)
    with pytest.raises(Problem) as exc:  # ... after it, the database says revoked
        await auth.authenticate(header, now=NOW)
    assert exc.value.status == 401
    # a cached token never outlives its own expiry
    other = await registry.issue_token(
        Role.AGENCY, code, "dms2", actor="t", now=NOW, expires_at=NOW + dt.timedelta(hours=1)
    )
    assert (await auth.authenticate(f"Bearer {other.token}", now=NOW)).agency == code
    with pytest.raises(Problem):
        await auth.authenticate(f"Bearer {other.token}", now=NOW + dt.timedelta(hours=2))


async def test_token_roles_must_fit(registry):
    with pytest.raises(AgencyError):
        await registry.issue_token(Role.AGENCY, None, "x", actor="t", now=NOW)
    with pytest.raises(AgencyError):
        await registry.issue_token(Role.ADMIN, _code(), "x", actor="t", now=NOW)
    with pytest.raises(AgencyError):
        await registry.issue_token(Role.AGENCY, "999.99.99.Z98", "x", actor="t", now=NOW)


# -- webhooks ------------------------------------------------------------------------------


async def _webhook_audit(db, code: str) -> list[dict]:
    async with UnitOfWork(db) as uow:
        rows = await uow.session.execute(
            select(AuditEntry.event, AuditEntry.actor, AuditEntry.payload_json)
            .where(AuditEntry.subject == code, AuditEntry.event == "webhook_changed")
            .order_by(AuditEntry.seq)
        )
        return [{"actor": actor, **json.loads(payload)} for _, actor, payload in rows]


async def _stored_webhook(db, code: str) -> tuple[str | None, str | None]:
    async with UnitOfWork(db) as uow:
        agency = await uow.session.get(Agency, code)
        return agency.webhook_url, agency.webhook_secret


async def test_webhooks_are_set_rotated_and_removed(db):
    registry = AgencyRegistry(lambda: UnitOfWork(db), audit.append)
    code = _code()
    await registry.add_agency(code, "Sở Tư pháp", None, actor="t", now=NOW)
    assert await registry.set_webhook(code, None, actor="t", now=NOW) is None  # none yet
    url = "https://dms.sotuphap.example/hooks/docgate?tenant=7"
    first = await registry.set_webhook(code, url, actor="cli", now=NOW)
    assert first.startswith("whsec_") and len(first) > 40
    assert await _stored_webhook(db, code) == (url, first)
    second = await registry.set_webhook(code, url, actor="cli", now=NOW)  # rotates
    assert second != first and await _stored_webhook(db, code) == (url, second)
    assert await registry.set_webhook(code, None, actor="cli", now=NOW) is None
    assert await _stored_webhook(db, code) == (None, None)
    assert await registry.set_webhook(code, None, actor="cli", now=NOW) is None

    entries = await _webhook_audit(db, code)
    host_and_hash = {
        "host": "dms.sotuphap.example",
        "url_sha256": hashlib.sha256(url.encode()).hexdigest(),
    }
    assert entries == [
        {"actor": "cli", "enabled": True, **host_and_hash},
        {"actor": "cli", "enabled": True, **host_and_hash},
        {"actor": "cli", "enabled": False, "host": None, "url_sha256": None},
    ]  # removing nothing is not recorded; the secrets and the URL's path never are


@pytest.mark.parametrize(
    "url",
    [
        "",
        "dms.example/hook",
        "ftp://dms.example/hook",
        "javascript:alert(1)",
        "https://",
        "https:///path",
        "https://user:pw@dms.example/hook",
        "https://dms.example/hook#part",
        "https://dms.example/a hook",
        "https://dms.example/\nhook",
        "https://bộtưpháp.vn/hook",
        "https://dms.example:99999/hook",
        "https://dms.example/" + "x" * 2000,
        42,
    ],
)
async def test_webhook_urls_are_validated(registry, db, url):
    code = _code()
    await registry.add_agency(code, "Sở Nội vụ", None, actor="t", now=NOW)
    with pytest.raises(AgencyError) as exc:
        await registry.set_webhook(code, url, actor="t", now=NOW)
    assert (exc.value.status, exc.value.code, exc.value.field) == (422, "invalid_webhook", "url")
    assert await _stored_webhook(db, code) == (None, None)


async def test_webhook_of_an_unknown_agency(registry):
    with pytest.raises(AgencyError) as exc:
        await registry.set_webhook("999.99.99.Z97", "https://x.example/", actor="t", now=NOW)
    assert (exc.value.status, exc.value.code, exc.value.field) == (422, "unknown_agency", "code")
    with pytest.raises(AgencyError):
        await registry.set_webhook("999.99.99.Z97", None, actor="t", now=NOW)
