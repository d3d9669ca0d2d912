"""Bearer tokens: stored as SHA-256 hashes, one agency per ``agency`` token, or a role
``admin``/``auditor``. 401 without a valid token, 403 when the token may not act."""

from __future__ import annotations

import enum
import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from .problems import Problem

__all__ = ["Principal", "Role", "TokenStore", "hash_token", "new_token"]


class Role(enum.Enum):
    AGENCY = "agency"
    ADMIN = "admin"
    AUDITOR = "auditor"


@dataclass(frozen=True)
class Principal:
    role: Role
    agency: str | None
    label: str

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


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "dg_" + secrets.token_urlsafe(32)


class TokenStore:
    """Hashed tokens from a JSON file: ``{"tokens": [{"sha256", "role", "agency", "label"}]}``."""

    def __init__(self, entries: dict[str, Principal]) -> None:
        self._entries = entries

    @classmethod
    def load(cls, path: Path) -> TokenStore:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = {}
        for row in data.get("tokens", []):
            role = Role(row["role"])
            agency = row.get("agency")
            if (role is Role.AGENCY) != bool(agency):
                raise ValueError(f"token {row.get('label')!r}: agency tokens need an agency")
            entries[row["sha256"]] = Principal(role, agency, row.get("label", ""))
        return cls(entries)

    @staticmethod
    def write(path: Path, rows: list[dict]) -> None:
        path.write_text(json.dumps({"tokens": rows}, indent=2, ensure_ascii=False))
        path.chmod(0o600)

    def authenticate(self, header: str | None) -> Principal:
        if not header:
            raise Problem(401, "unauthorized", "an Authorization: Bearer token is required")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 512:
            raise Problem(401, "unauthorized", "the Authorization header must be 'Bearer <token>'")
        principal = self._entries.get(hash_token(token))
        if principal is None:
            raise Problem(401, "unauthorized", "the token is not valid")
        return principal
