"""From settings to the pieces the app runs: the signing spec for the worker pool, the
token store and the trust anchors. Development mode first creates what it needs under
``var/`` (PKI, seals, tokens); production mode reads only what it is given."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from exchange.agencies import AgencyRegistry, new_token
from exchange.db import sqlite_url
from exchange.models import Role
from signing.devpki import DevPki, ensure_dev_pki
from signing.runtime import AgencySpec, SigningSpec, TrustSpec, TsaSpec, development_spec
from signing.stamp import make_dev_seal
from signing.verify.policy import (
    AlgorithmPolicy,
    RevocationPolicy,
    VerificationSpec,
    development_verification_spec,
)

from .settings import Settings

__all__ = ["Wiring", "database_url", "init_development", "seed_development", "wire"]

log = logging.getLogger("docgate.wiring")


@dataclass(frozen=True)
class Wiring:
    signing: SigningSpec
    trust_roots: tuple[Path, ...]
    agencies: dict[str, str]  # code -> name (those with signing keys here)
    database_url: str
    dev_tokens: dict | None  # development: the plaintext tokens to seed (var/dev-tokens.json)


@dataclass(frozen=True)
class DevState:
    pki: DevPki
    dev_tokens_file: Path
    dev_tokens: dict
    seals: dict[str, Path]


def init_development(settings: Settings, now: dt.datetime) -> DevState:
    """Create (or reuse) the development PKI, seals and tokens under var/. The tokens are
    seeded into the database (hashed) by ``seed_development``; var/dev-tokens.json keeps
    the plaintext for the developer."""
    var = settings.service.var_dir
    var.mkdir(parents=True, exist_ok=True)
    var.chmod(0o700)
    agencies = list(settings.development.agencies)
    crl_base = f"http://{settings.service.host}:{settings.service.port}/dev/pki"
    pki = ensure_dev_pki(var / "pki", agencies, now=now, crl_base=crl_base)
    seals = {}
    for agency in agencies:
        seal = var / "seals" / f"{agency.code}.png"
        if not seal.exists():
            seal.parent.mkdir(parents=True, exist_ok=True)
            seal.write_bytes(make_dev_seal(agency.name))
        seals[agency.code] = seal
    dev_tokens = var / "dev-tokens.json"
    if dev_tokens.exists():
        plain = json.loads(dev_tokens.read_text())
    else:
        plain = {
            "admin": new_token(),
            "auditor": new_token(),
            "agencies": {a.code: new_token() for a in agencies},
        }
        dev_tokens.write_text(json.dumps(plain, indent=2))
        dev_tokens.chmod(0o600)
        log.info("development tokens written to %s", dev_tokens)
    return DevState(pki, dev_tokens, plain, seals)


async def seed_development(registry: AgencyRegistry, settings: Settings, tokens: dict, now) -> None:
    """Put the demo agencies and the development tokens into the database (idempotent)."""
    for agency in settings.development.agencies:
        await registry.ensure_agency(agency.code, agency.name, now=now)
    await registry.issue_token(
        Role.ADMIN, None, "dev-admin", actor="seed", now=now, token=tokens["admin"]
    )
    await registry.issue_token(
        Role.AUDITOR, None, "dev-auditor", actor="seed", now=now, token=tokens["auditor"]
    )
    for code, token in tokens.get("agencies", {}).items():
        await registry.issue_token(
            Role.AGENCY, code, f"dev-{code}", actor="seed", now=now, token=token
        )


def _tsa_spec(settings: Settings) -> TsaSpec:
    sig = settings.signing
    return TsaSpec(
        url=sig.tsa_url,
        timeout=sig.tsa_timeout_s,
        retries=sig.tsa_retries,
        auth_header=sig.tsa_auth_header.reveal(),
    )


def _trust_spec(settings: Settings) -> TrustSpec:
    trust = settings.trust
    return TrustSpec(
        roots=trust.roots,
        intermediates=trust.intermediates,
        crls=trust.crls,
        ocsps=trust.ocsps,
        allow_fetching=trust.allow_fetching,
        fetch_timeout=settings.signing.revocation_fetch_timeout_s,
    )


def _development_spec(settings: Settings, dev: DevState) -> SigningSpec:
    sig = settings.signing
    return development_spec(  # its own CRLs/OCSP answers; fetching stays off
        dev.pki,
        settings.development.agencies,
        seals=dev.seals,
        tsa=_tsa_spec(settings),
        trust=_trust_spec(settings),
        tsa_failure=sig.tsa_failure,
        font_path=sig.stamp_font,
        verification=_verification_spec(settings, development_verification_spec(dev.pki)),
    )


def _verification_spec(settings: Settings, base: VerificationSpec) -> VerificationSpec:
    v = settings.verification
    trust = settings.trust
    return VerificationSpec(
        roots=(*base.roots, *trust.roots),
        intermediates=(*base.intermediates, *trust.intermediates),
        crls=(*base.crls, *trust.crls),
        ocsps=(*base.ocsps, *trust.ocsps),
        algorithms=AlgorithmPolicy(
            allowed_digests=frozenset(d.lower() for d in v.allowed_digests),
            min_rsa_bits=v.min_rsa_bits,
            min_ec_bits=v.min_ec_bits,
        ),
        revocation=RevocationPolicy(
            allow_fetching=v.allow_fetching,
            allowed_hosts=frozenset(h.lower() for h in v.allowed_hosts),
            timeout_s=v.fetch_timeout_s,
            max_response_bytes=v.max_response_kib * 1024,
        ),
    )


def _production_spec(settings: Settings) -> SigningSpec:
    sig = settings.signing
    return SigningSpec(
        agencies=tuple(
            AgencySpec(code=a.code, name=a.name, key=a.key, seal_path=a.seal)
            for a in settings.agencies
        ),
        tsa=_tsa_spec(settings),
        trust=_trust_spec(settings),
        tsa_failure=sig.tsa_failure,
        font_path=sig.stamp_font,
        refuse_development_keys=True,
        verification=_verification_spec(settings, VerificationSpec()),
    )


def database_url(settings: Settings) -> str:
    if settings.database.url:
        return settings.database.url.reveal()
    return sqlite_url(str(settings.var_path("docgate.db").resolve()))


def wire(settings: Settings, now: dt.datetime) -> Wiring:
    dev_tokens = None
    if settings.development_mode:
        dev = init_development(settings, now)
        spec = _development_spec(settings, dev)
        names = {a.code: a.name for a in settings.development.agencies}
        dev_tokens = dev.dev_tokens
    else:
        spec = _production_spec(settings)
        names = {a.code: a.name for a in settings.agencies}
    return Wiring(
        signing=spec,
        trust_roots=tuple(Path(p) for p in spec.verification.roots),
        agencies=names,
        database_url=database_url(settings),
        dev_tokens=dev_tokens,
    )
