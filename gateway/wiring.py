"""From settings to the pieces the app runs: the signing spec for the worker pool, the
token store and the trust anchors. Development mode first creates what it needs under
``var/`` (PKI, seals, tokens); production mode reads only what it is given."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from signing.devpki import DevPki, ensure_dev_pki
from signing.runtime import AgencySpec, SigningSpec, TrustSpec, TsaSpec, development_spec
from signing.stamp import make_dev_seal
from signing.verify.policy import (
    AlgorithmPolicy,
    RevocationPolicy,
    VerificationSpec,
    development_verification_spec,
)

from .auth import Role, TokenStore, hash_token, new_token
from .settings import Settings

__all__ = ["Wiring", "init_development", "wire"]

log = logging.getLogger("docgate.wiring")


@dataclass(frozen=True)
class Wiring:
    signing: SigningSpec
    tokens: TokenStore
    trust_roots: tuple[Path, ...]
    agencies: dict[str, str]  # code -> name


@dataclass(frozen=True)
class DevState:
    pki: DevPki
    tokens_file: Path
    dev_tokens_file: Path
    seals: dict[str, Path]


def init_development(settings: Settings, now: dt.datetime) -> DevState:
    """Create (or reuse) the development PKI, seals and tokens under var/."""
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
    tokens_file = var / "tokens.json"
    if not dev_tokens.exists() or not tokens_file.exists():
        plain = {
            "admin": new_token(),
            "auditor": new_token(),
            "agencies": {a.code: new_token() for a in agencies},
        }
        rows = [
            {"sha256": hash_token(plain["admin"]), "role": Role.ADMIN.value, "label": "dev-admin"},
            {
                "sha256": hash_token(plain["auditor"]),
                "role": Role.AUDITOR.value,
                "label": "dev-auditor",
            },
        ] + [
            {
                "sha256": hash_token(tok),
                "role": Role.AGENCY.value,
                "agency": code,
                "label": f"dev-{code}",
            }
            for code, tok in plain["agencies"].items()
        ]
        TokenStore.write(tokens_file, rows)
        dev_tokens.write_text(json.dumps(plain, indent=2))
        dev_tokens.chmod(0o600)
        log.info("development tokens written to %s", dev_tokens)
    return DevState(pki, tokens_file, dev_tokens, seals)


def _development_spec(settings: Settings, dev: DevState) -> SigningSpec:
    sig = settings.signing
    return development_spec(
        dev.pki,
        settings.development.agencies,
        seals=dev.seals,
        tsa=TsaSpec(
            url=sig.tsa_url,
            timeout=sig.tsa_timeout_s,
            retries=sig.tsa_retries,
            auth_header=sig.tsa_auth_header.reveal(),
        ),
        trust=TrustSpec(
            roots=settings.trust.roots,
            intermediates=settings.trust.intermediates,
            crls=settings.trust.crls,
            ocsps=settings.trust.ocsps,
            fetch_timeout=sig.revocation_fetch_timeout_s,
        ),
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
        tsa=TsaSpec(
            url=sig.tsa_url,
            timeout=sig.tsa_timeout_s,
            retries=sig.tsa_retries,
            auth_header=sig.tsa_auth_header.reveal(),
        ),
        trust=TrustSpec(
            roots=settings.trust.roots,
            intermediates=settings.trust.intermediates,
            crls=settings.trust.crls,
            ocsps=settings.trust.ocsps,
            allow_fetching=settings.trust.allow_fetching,
            fetch_timeout=sig.revocation_fetch_timeout_s,
        ),
        tsa_failure=sig.tsa_failure,
        font_path=sig.stamp_font,
        refuse_development_keys=True,
        verification=_verification_spec(settings, VerificationSpec()),
    )


def wire(settings: Settings, now: dt.datetime) -> Wiring:
    if settings.development_mode:
        dev = init_development(settings, now)
        spec = _development_spec(settings, dev)
        tokens_file = (
            Path(settings.auth.tokens_file) if settings.auth.tokens_file else dev.tokens_file
        )
        names = {a.code: a.name for a in settings.development.agencies}
    else:
        spec = _production_spec(settings)
        tokens_file = Path(settings.auth.tokens_file)
        names = {a.code: a.name for a in settings.agencies}
    return Wiring(
        signing=spec,
        tokens=TokenStore.load(tokens_file),
        trust_roots=tuple(Path(p) for p in spec.verification.roots),
        agencies=names,
    )
