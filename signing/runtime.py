"""Building a worker's SigningContext from a picklable spec.

The spec names files and settings only; keys are opened, certificates parsed and the
TSA client created here, once per worker process (or once per CLI run).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from .devpki import DevAgency, DevPki, is_development_certificate
from .engine import AgencyKey, SigningContext, TsaFailurePolicy
from .errors import ConfigurationError
from .keys.base import KeySpec, ProviderKind, open_key_provider
from .keys.certs import load_certificates
from .stamp import load_font
from .timestamps import HttpTimeStamper, load_dev_timestamper
from .verify.policy import VerificationSpec, development_verification_spec

__all__ = ["AgencySpec", "SigningSpec", "TrustSpec", "TsaSpec", "open_context"]


@dataclass(frozen=True)
class AgencySpec:
    code: str
    name: str
    key: KeySpec
    seal_path: str = ""


@dataclass(frozen=True)
class TsaSpec:
    url: str = ""  # an RFC 3161 service; empty: the in-process development TSA, if given
    timeout: float = 10.0
    retries: int = 2
    auth_header: str = field(default="", repr=False)  # secret
    dev_cert: str = ""
    dev_key: str = ""
    dev_chain: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrustSpec:
    """Validation data for B-LT: anchors, intermediates, and either fetching over
    HTTP (production) or fixed CRLs/OCSP responses (development)."""

    roots: tuple[str, ...] = ()
    intermediates: tuple[str, ...] = ()
    crls: tuple[str, ...] = ()
    ocsps: tuple[str, ...] = ()
    allow_fetching: bool = True
    fetch_timeout: float = 10.0


@dataclass(frozen=True)
class SigningSpec:
    agencies: tuple[AgencySpec, ...]
    tsa: TsaSpec = field(default_factory=TsaSpec)
    trust: TrustSpec = field(default_factory=TrustSpec)
    tsa_failure: TsaFailurePolicy = TsaFailurePolicy.FAIL
    font_path: str = ""
    refuse_development_keys: bool = True  # production: DEVELOPMENT-marked certificates fail
    verification: VerificationSpec = field(default_factory=VerificationSpec)


def _read_all(paths: tuple[str, ...]) -> list[bytes]:
    out = []
    for p in paths:
        try:
            out.append(Path(p).read_bytes())
        except OSError as exc:
            raise ConfigurationError(f"cannot read {p}: {exc.strerror}") from None
    return out


def _validation_context_factory(
    trust: TrustSpec, session: aiohttp.ClientSession | None
) -> Callable[[], ValidationContext]:
    roots = [c for p in trust.roots for c in load_certificates(Path(p))]
    others = [c for p in trust.intermediates for c in load_certificates(Path(p))]
    crls = _read_all(trust.crls)
    ocsps = _read_all(trust.ocsps)
    backend = (
        AIOHttpFetcherBackend(session, per_request_timeout=trust.fetch_timeout)
        if trust.allow_fetching and session is not None
        else None
    )

    def make() -> ValidationContext:
        return ValidationContext(
            trust_roots=roots,
            other_certs=others,
            crls=crls,
            ocsps=ocsps,
            allow_fetching=backend is not None,
            fetcher_backend=backend,
            revocation_mode="hard-fail",
        )

    return make


async def open_context(spec: SigningSpec, session: aiohttp.ClientSession | None) -> SigningContext:
    """Open every agency's key and build the TSA client and validation-data source.
    ``session`` is used for the TSA and revocation fetching (None: no network)."""
    keys: dict[str, AgencyKey] = {}
    try:
        for agency in spec.agencies:
            seal = Path(agency.seal_path).read_bytes() if agency.seal_path else None
            provider = open_key_provider(agency.key)
            keys[agency.code] = AgencyKey(agency.code, agency.name, provider, seal)
            subject = provider.certificate.subject.human_friendly
            if spec.refuse_development_keys and is_development_certificate(subject):
                raise ConfigurationError(
                    f"agency {agency.code}: a development certificate is refused outside "
                    "development mode"
                )
    except BaseException:
        for opened in keys.values():
            with contextlib.suppress(Exception):
                opened.provider.close()
        raise
    # Build the stamp font now (about a second, once per process), not on the first request.
    load_font(spec.font_path or None)
    tsa = spec.tsa
    if tsa.url:
        if session is None:
            raise ConfigurationError("a TSA URL is configured but no HTTP session is available")
        headers = {"Authorization": tsa.auth_header} if tsa.auth_header else None
        timestamper = HttpTimeStamper(
            tsa.url, session, timeout=tsa.timeout, retries=tsa.retries, headers=headers
        )
    elif tsa.dev_cert:
        timestamper = load_dev_timestamper(tsa.dev_cert, tsa.dev_key, tsa.dev_chain)
    else:
        timestamper = None
    return SigningContext(
        keys=keys,
        timestamper=timestamper,
        validation_context=_validation_context_factory(spec.trust, session),
        tsa_failure=spec.tsa_failure,
        font_path=spec.font_path or None,
    )


def close_context(ctx: SigningContext) -> None:
    for agency in ctx.keys.values():
        with contextlib.suppress(Exception):
            agency.provider.close()


__all__ += ["close_context"]


def development_spec(
    pki: DevPki,
    agencies: Iterable[DevAgency],
    *,
    seals: Mapping[str, Path] | None = None,
    tsa: TsaSpec | None = None,
    trust: TrustSpec | None = None,
    tsa_failure: TsaFailurePolicy = TsaFailurePolicy.FAIL,
    font_path: str = "",
    verification: VerificationSpec | None = None,
) -> SigningSpec:
    """The signing spec of development mode: the development PKI's PKCS#12 keys, its
    in-process TSA (unless ``tsa`` names a URL) and its fixed CRLs/OCSP answers; the
    ``tsa``/``trust`` given add to them (URL, timeouts, extra anchors)."""
    tsa = tsa or TsaSpec()
    trust = trust or TrustSpec()
    seals = seals or {}
    return SigningSpec(
        agencies=tuple(
            AgencySpec(
                code=a.code,
                name=a.name,
                key=KeySpec(
                    provider=ProviderKind.PKCS12,
                    path=str(pki.agency_p12(a.code)),
                    password_file=str(pki.password_file),
                ),
                seal_path=str(seals[a.code]) if a.code in seals else "",
            )
            for a in agencies
        ),
        tsa=dataclasses.replace(
            tsa,
            dev_cert=str(pki.tsa_cert),
            dev_key=str(pki.tsa_key),
            dev_chain=(str(pki.intermediate_cert), str(pki.root_cert)),
        ),
        trust=dataclasses.replace(
            trust,
            roots=(str(pki.root_cert), *trust.roots),
            intermediates=(str(pki.intermediate_cert), *trust.intermediates),
            crls=(*(str(p) for p in pki.crls), *trust.crls),
            ocsps=(*(str(p) for p in sorted(pki.ocsp_dir.glob("*.ocsp"))), *trust.ocsps),
            allow_fetching=False,
        ),
        tsa_failure=tsa_failure,
        font_path=font_path,
        refuse_development_keys=False,
        verification=verification or development_verification_spec(pki),
    )


__all__ += ["development_spec"]
