"""The agency registry and bearer tokens (stored as SHA-256 hashes, with expiry and
revocation). Every change is written with its audit entry in one transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select

from .models import Agency, AuditEvent, Role, Token
from .uow import UnitOfWork

__all__ = [
    "AGENCY_CODE",
    "AgencyError",
    "AgencyRegistry",
    "IssuedToken",
    "TokenInfo",
    "WEBHOOK_URL_MAX",
    "hash_token",
    "new_token",
    "new_webhook_secret",
]

AGENCY_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
AuditAppend = Callable[..., Awaitable[object]]
WEBHOOK_URL_MAX = 2000  # agencies.webhook_url and outbox.url are String(2000)


class AgencyError(Exception):
    def __init__(self, status: int, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.field = status, code, detail, field


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "dg_" + secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _webhook_url(url: object) -> str:
    def refuse(detail: str) -> AgencyError:
        return AgencyError(422, "invalid_webhook", detail, "url")

    if not isinstance(url, str) or not url:
        raise refuse("the webhook URL is a non-empty string")
    if len(url) > WEBHOOK_URL_MAX:
        raise refuse(f"the webhook URL has at most {WEBHOOK_URL_MAX} characters")
    if not url.isascii() or not url.isprintable() or any(c.isspace() for c in url):
        raise refuse("the webhook URL is ASCII without spaces (punycode for IDN hosts)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise refuse("the webhook URL is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise refuse("the webhook URL is http:// or https://")
    if not parts.hostname:
        raise refuse("the webhook URL names a host")
    if parts.username is not None or parts.password is not None:
        raise refuse("the webhook URL must not carry credentials (user:password@)")
    if "#" in url:
        raise refuse("the webhook URL has no #fragment")
    return url


@dataclass(frozen=True)
class TokenInfo:
    id: str
    role: Role
    agency: str | None
    label: str
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class IssuedToken:
    info: TokenInfo
    token: str  # shown once; only its hash is stored


async def _no_audit(*args, **kwargs) -> None:
    return None


class AgencyRegistry:
    def __init__(
        self, uow_factory: Callable[[], UnitOfWork], audit_append: AuditAppend | None = None
    ):
        self._uow = uow_factory
        self._audit = audit_append or _no_audit

    async def add_agency(
        self, code: str, name: str, parent: str | None, *, actor: str, now: dt.datetime
    ) -> dict:
        if not isinstance(code, str) or not AGENCY_CODE.match(code):
            raise AgencyError(422, "invalid_agency", "code must look like 000.00.00.H41", "code")
        if not isinstance(name, str) or not name.strip() or len(name) > 300:
            raise AgencyError(
                422, "invalid_agency", "name is required (at most 300 characters)", "name"
            )
        async with self._uow() as uow:
            s = uow.session
            if await s.get(Agency, code) is not None:
                raise AgencyError(409, "agency_exists", f"agency {code} already exists", "code")
            if parent is not None and await s.get(Agency, parent) is None:
                raise AgencyError(
                    422, "unknown_agency", f"parent agency {parent} is unknown", "parent"
                )
            s.add(Agency(code=code, name=name.strip(), parent_code=parent, created_at=now))
            await self._audit(
                s,
                event=AuditEvent.AGENCY_ADDED,
                actor=actor,
                subject=code,
                payload={"name": name.strip(), "parent": parent},
                now=now,
            )
            await uow.commit()
        return {"code": code, "name": name.strip(), "parent": parent}

    async def ensure_agency(self, code: str, name: str, *, now: dt.datetime) -> None:
        """Add the agency if it is missing (development seeding)."""
        async with self._uow() as uow:
            if await uow.session.get(Agency, code) is None:
                uow.session.add(Agency(code=code, name=name, created_at=now))
                await self._audit(
                    uow.session,
                    event=AuditEvent.AGENCY_ADDED,
                    actor="seed",
                    subject=code,
                    payload={"name": name, "parent": None},
                    now=now,
                )
                await uow.commit()

    async def set_webhook(
        self, code: str, url: str | None, *, actor: str, now: dt.datetime
    ) -> str | None:
        """Point the agency's notifications at ``url`` with a new random signing secret
        (returned once; stored, since every delivery is signed with it), or remove the
        webhook with ``url=None``. Setting a URL again rotates the secret. Messages
        already queued keep the URL they were queued with but are signed with the
        current secret. The audit entry records the host and a hash of the URL, never
        the secret (nor the URL's path, which may hold a credential)."""
        url = None if url is None else _webhook_url(url)
        secret = None if url is None else new_webhook_secret()
        async with self._uow() as uow:
            agency = await uow.session.get(Agency, code) if isinstance(code, str) else None
            if agency is None:
                raise AgencyError(422, "unknown_agency", f"agency {code} is unknown", "code")
            if url is None and agency.webhook_url is None and agency.webhook_secret is None:
                return None  # nothing to remove
            agency.webhook_url, agency.webhook_secret = url, secret
            await self._audit(
                uow.session,
                event=AuditEvent.WEBHOOK_CHANGED,
                actor=actor,
                subject=code,
                payload={
                    "enabled": url is not None,
                    "host": urlsplit(url).hostname if url else None,
                    "url_sha256": hashlib.sha256(url.encode()).hexdigest() if url else None,
                },
                now=now,
            )
            await uow.commit()
        return secret

    async def list_agencies(self) -> list[dict]:
        async with self._uow() as uow:
            rows = (await uow.session.execute(select(Agency).order_by(Agency.code))).scalars()
            return [{"code": a.code, "name": a.name, "parent": a.parent_code} for a in rows]

    async def issue_token(
        self,
        role: Role,
        agency: str | None,
        label: str,
        *,
        actor: str,
        now: dt.datetime,
        expires_at: dt.datetime | None = None,
        token: str | None = None,
    ) -> IssuedToken:
        if (role is Role.AGENCY) != (agency is not None):
            raise AgencyError(
                422, "invalid_token", "agency tokens, and only they, name an agency", "agency"
            )
        token = token or new_token()
        async with self._uow() as uow:
            s = uow.session
            if agency is not None and await s.get(Agency, agency) is None:
                raise AgencyError(422, "unknown_agency", f"agency {agency} is unknown", "agency")
            existing = (
                await s.execute(select(Token).where(Token.sha256 == hash_token(token)))
            ).scalar_one_or_none()
            if existing is not None:  # seeding the same token again
                return IssuedToken(_info(existing), token)
            row = Token(
                sha256=hash_token(token),
                role=role.value,
                agency_code=agency,
                label=label,
                created_at=now,
                expires_at=expires_at,
            )
            s.add(row)
            await s.flush()
            await self._audit(
                s,
                event=AuditEvent.TOKEN_ISSUED,
                actor=actor,
                subject=row.id,
                payload={
                    "role": role.value,
                    "agency": agency,
                    "label": label,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
                now=now,
            )
            await uow.commit()
            return IssuedToken(_info(row), token)

    async def revoke_token(self, token_id: str, *, actor: str, now: dt.datetime) -> bool:
        async with self._uow() as uow:
            row = await uow.session.get(Token, token_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = now
            await self._audit(
                uow.session,
                event=AuditEvent.TOKEN_REVOKED,
                actor=actor,
                subject=token_id,
                payload={"label": row.label},
                now=now,
            )
            await uow.commit()
            return True

    async def authenticate(self, token: str, *, now: dt.datetime) -> TokenInfo | None:
        async with self._uow() as uow:  # read everything before the session closes
            row = (
                await uow.session.execute(select(Token).where(Token.sha256 == hash_token(token)))
            ).scalar_one_or_none()
            if row is None or row.revoked_at is not None:
                return None
            if row.expires_at is not None and _aware(row.expires_at) <= now:
                return None
            return _info(row)


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC


def _info(row: Token) -> TokenInfo:
    expires = _aware(row.expires_at) if row.expires_at is not None else None
    return TokenInfo(row.id, Role(row.role), row.agency_code, row.label, expires)
