"""What the verifier trusts and requires: trust anchors and extra intermediates, the
algorithm policy, and the revocation policy (embedded data first; online fetching only
where configured, from allow-listed hosts, with timeouts and a response-size cap)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from asn1crypto import x509 as asn1_x509

from ..devpki import DevPki
from ..errors import ConfigurationError
from ..keys.certs import load_certificates

__all__ = [
    "AlgorithmPolicy",
    "RevocationPolicy",
    "TrustStore",
    "VerificationSpec",
    "VerifyContext",
    "restricted_session",
]


@dataclass(frozen=True)
class AlgorithmPolicy:
    """Per-deployment crypto constraints (Circular 15/2025: RSA >= 2048, ECDSA >= 256,
    SHA-256 or stronger)."""

    allowed_digests: frozenset[str] = frozenset(
        {"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512"}
    )
    min_rsa_bits: int = 2048
    min_ec_bits: int = 256
    # the signer's certificate must allow signing: digitalSignature or nonRepudiation
    signer_key_usage: frozenset[str] = frozenset({"digital_signature", "non_repudiation"})


@dataclass(frozen=True)
class RevocationPolicy:
    allow_fetching: bool = False
    allowed_hosts: frozenset[str] = frozenset()  # empty with fetching on: no host allowed
    timeout_s: float = 10.0
    max_response_bytes: int = 2 * 1024 * 1024


@dataclass(frozen=True)
class VerificationSpec:
    """Picklable description of the verifier's configuration (files and settings)."""

    roots: tuple[str, ...] = ()
    intermediates: tuple[str, ...] = ()
    crls: tuple[str, ...] = ()
    ocsps: tuple[str, ...] = ()
    algorithms: AlgorithmPolicy = field(default_factory=AlgorithmPolicy)
    revocation: RevocationPolicy = field(default_factory=RevocationPolicy)


@dataclass(frozen=True)
class TrustStore:
    roots: tuple[asn1_x509.Certificate, ...]
    intermediates: tuple[asn1_x509.Certificate, ...] = ()
    crls: tuple[bytes, ...] = ()
    ocsps: tuple[bytes, ...] = ()

    @classmethod
    def from_paths(
        cls,
        roots: Iterable[str],
        intermediates: Iterable[str] = (),
        crls: Iterable[str] = (),
        ocsps: Iterable[str] = (),
    ) -> TrustStore:
        def read(paths: Iterable[str]) -> tuple[bytes, ...]:
            try:
                return tuple(Path(p).read_bytes() for p in paths)
            except OSError as exc:
                raise ConfigurationError(f"cannot read {exc.filename}: {exc.strerror}") from None

        return cls(
            roots=tuple(c for p in roots for c in load_certificates(Path(p))),
            intermediates=tuple(c for p in intermediates for c in load_certificates(Path(p))),
            crls=read(crls),
            ocsps=read(ocsps),
        )


def restricted_session(policy: RevocationPolicy) -> aiohttp.ClientSession:
    """An HTTP session for revocation fetching: only allow-listed hosts, plain
    GET/POST, a per-request timeout and a cap on the response size. URLs come from
    certificates inside untrusted documents, so nothing else may be reached."""

    async def guard(request: aiohttp.ClientRequest, handler):
        host = (request.url.host or "").lower()
        if host not in policy.allowed_hosts:
            raise aiohttp.ClientConnectionError(f"revocation host {host!r} is not allow-listed")
        response = await handler(request)
        length = response.content_length
        if length is not None and length > policy.max_response_bytes:
            response.release()
            raise aiohttp.ClientPayloadError("revocation response larger than the cap")
        body = await response.content.read(policy.max_response_bytes + 1)
        if len(body) > policy.max_response_bytes:
            response.release()
            raise aiohttp.ClientPayloadError("revocation response larger than the cap")
        response._body = body  # read() now answers the capped body  # noqa: SLF001
        return response

    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=policy.timeout_s),
        middlewares=(guard,),
    )


@dataclass
class VerifyContext:
    trust: TrustStore
    algorithms: AlgorithmPolicy = field(default_factory=AlgorithmPolicy)
    revocation: RevocationPolicy = field(default_factory=RevocationPolicy)
    session: aiohttp.ClientSession | None = None  # from restricted_session(), when fetching

    @classmethod
    def from_spec(cls, spec: VerificationSpec, session: aiohttp.ClientSession | None = None):
        return cls(
            trust=TrustStore.from_paths(spec.roots, spec.intermediates, spec.crls, spec.ocsps),
            algorithms=spec.algorithms,
            revocation=spec.revocation,
            session=session if spec.revocation.allow_fetching else None,
        )

    @classmethod
    def for_development(cls, pki: DevPki, **changes) -> VerifyContext:
        return dataclasses.replace(cls.from_spec(development_verification_spec(pki)), **changes)


def development_verification_spec(pki: DevPki) -> VerificationSpec:
    """Development mode trusts the development root and knows its CRLs/OCSP answers."""
    return VerificationSpec(
        roots=(str(pki.root_cert),),
        intermediates=(str(pki.intermediate_cert),),
        crls=tuple(str(p) for p in pki.crls),
        ocsps=tuple(str(p) for p in sorted(pki.ocsp_dir.glob("*.ocsp"))),
    )


__all__ += ["development_verification_spec"]
