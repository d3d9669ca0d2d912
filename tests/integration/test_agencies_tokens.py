"""The agency registry and bearer tokens on both databases: hashes only, expiry,
revocation, code validation, and the HTTP authenticator on top."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import select

from exchange.agencies import AgencyError, AgencyRegistry, hash_token
from exchange.models import Role, Token
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
    auth = Authenticator(registry)
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


async def test_token_roles_must_fit(registry):
    with pytest.raises(AgencyError):
        await registry.issue_token(Role.AGENCY, None, "x", actor="t", now=NOW)
    with pytest.raises(AgencyError):
        await registry.issue_token(Role.ADMIN, _code(), "x", actor="t", now=NOW)
    with pytest.raises(AgencyError):
        await registry.issue_token(Role.AGENCY, "999.99.99.Z98", "x", actor="t", now=NOW)
