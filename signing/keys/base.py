"""One interface for every place a signing key can live.

A provider is opened once per worker process and reused for every signature: the
private key is parsed (or the token session opened) at open time, never per request.
Every implementation passes the same conformance suite (tests/unit/test_key_providers.py).
"""

from __future__ import annotations

import abc
import enum
import os
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from pyhanko.sign.signers.pdf_cms import Signer

from ..errors import ConfigurationError, KeyUnavailableError

__all__ = ["KeyProvider", "KeySpec", "ProviderKind", "open_key_provider", "resolve_secret"]


class ProviderKind(enum.Enum):
    PKCS12 = "pkcs12"
    PKCS11 = "pkcs11"


@dataclass(frozen=True)
class KeySpec:
    """Where one agency's key is, and how to unlock it.

    Secrets are never stored here: only the name of the environment variable or the
    path of the file that holds them.
    """

    provider: ProviderKind
    path: str = ""  # PKCS#12 file, or the PKCS#11 module (.so)
    password_env: str = ""  # PKCS#12 password or PKCS#11 user PIN, from this variable
    password_file: str = ""  # ... or from this file (first line)
    token_label: str = ""  # PKCS#11
    key_label: str = ""  # PKCS#11 private key label
    cert_label: str = ""  # PKCS#11 certificate label (defaults to key_label)
    extra_certs: tuple[str, ...] = field(default=())  # PEM/DER files: the issuing chain


def resolve_secret(spec: KeySpec) -> bytes | None:
    """Read the password/PIN the spec points to; None when it names none."""
    if spec.password_env:
        value = os.environ.get(spec.password_env)
        if value is None:
            raise ConfigurationError(
                f"environment variable {spec.password_env} (key password) is not set"
            )
        return value.encode("utf-8")
    if spec.password_file:
        try:
            text = Path(spec.password_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read key password file {spec.password_file}: {exc.strerror}"
            ) from None
        return text.splitlines()[0].encode("utf-8") if text else b""
    return None


class KeyProvider(abc.ABC):
    """A signing key with its certificate and issuing chain."""

    @property
    @abc.abstractmethod
    def certificate(self) -> asn1_x509.Certificate:
        """The signer's certificate."""

    @property
    @abc.abstractmethod
    def chain(self) -> tuple[asn1_x509.Certificate, ...]:
        """Issuing certificates to embed (may be empty), signer's issuer first."""

    @abc.abstractmethod
    def signer(self) -> Signer:
        """A pyHanko signer bound to the key; the same object on every call."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions and handles."""

    def __enter__(self) -> KeyProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_key_provider(spec: KeySpec) -> KeyProvider:
    """Open the provider a spec describes (parses keys / opens sessions now)."""
    if spec.provider is ProviderKind.PKCS12:
        from .pkcs12 import Pkcs12KeyProvider

        return Pkcs12KeyProvider.open(spec)
    if spec.provider is ProviderKind.PKCS11:
        from .pkcs11 import Pkcs11KeyProvider

        return Pkcs11KeyProvider.open(spec)
    raise KeyUnavailableError(f"unknown key provider {spec.provider!r}")  # pragma: no cover
