"""RFC 3161 timestamp clients: an HTTP client with per-attempt timeouts and retries,
and the in-process development TSA.

``HttpTimeStamper`` plugs into pyHanko through ``TimeStamper.async_timestamp`` (the
method pyHanko's signers call) and ``async_request_tsa_response`` (one HTTP exchange).
Every response is checked against the request it answers: status granted, nonce
echoed, message imprint (algorithm and digest) equal to what was sent. pyHanko's own
``handle_tsp_response`` checks only the nonce, so the checks are done here.

Failures the caller can see are ``TsaUnavailableError`` with a one-line detail naming
the TSA host, what failed and how many attempts were made; never the full URL (it may
carry credentials), never a header, never a traceback.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import aiohttp
from asn1crypto import cms, core, tsp
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pyhanko.sign.general import as_signing_certificate, simple_cms_attribute
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError, set_tsp_headers
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.util import get_pyca_cryptography_hash
from yarl import URL

from .errors import ConfigurationError, TsaUnavailableError
from .keys.certs import load_certificates

__all__ = [
    "HttpTimeStamper",
    "TsaAttemptError",
    "MAX_RESPONSE_BYTES",
    "dev_timestamper",
    "load_dev_timestamper",
]

MAX_RESPONSE_BYTES = 1024 * 1024
_REPLY_TYPE = "application/timestamp-reply"


class TsaAttemptError(TimestampRequestError):
    """One failed exchange with the TSA; ``retryable`` says whether another try may help."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class HttpTimeStamper(TimeStamper):
    """RFC 3161 over HTTP POST through an injected ``aiohttp.ClientSession``.

    Each attempt has its own total ``timeout``; connection errors, timeouts, HTTP 5xx,
    a wrong content type, an oversized, unparseable, refused or mismatching response
    are retried ``retries`` times with exponential backoff (``backoff``, ``2 x
    backoff``, ...). HTTP 4xx is not retried: the request itself is at fault.
    """

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.25,
        headers: dict | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigurationError("timestamp authority URL must be an http(s) URL")
        if parsed.user is not None and any(k.lower() == "authorization" for k in headers or {}):
            raise ConfigurationError(
                "TSA URL credentials and an Authorization header exclude each other"
            )
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise ConfigurationError("TSA timeout must be > 0, retries and backoff >= 0")
        super().__init__(include_nonce=True)
        self.url = url
        self.session = session
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.headers = dict(headers or {})
        self.max_response_bytes = max_response_bytes
        port = f":{parsed.explicit_port}" if parsed.explicit_port else ""
        self._where = f"{parsed.host}{port}"  # no userinfo, path or query: may hold secrets

    def __repr__(self) -> str:
        return f"HttpTimeStamper({self._where!r}, timeout={self.timeout}, retries={self.retries})"

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """One POST of ``req``; raises ``TsaAttemptError`` on any failure."""
        headers = set_tsp_headers(dict(self.headers))
        try:
            async with self.session.post(
                self.url,
                data=req.dump(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as response:
                if response.status >= 500:
                    raise TsaAttemptError(f"HTTP {response.status}")
                if response.status != 200:
                    raise TsaAttemptError(f"HTTP {response.status}", retryable=False)
                if response.content_type != _REPLY_TYPE:
                    raise TsaAttemptError(f"unexpected content type {response.content_type!r}")
                body = await self._read_capped(response)
        except TimeoutError:
            raise TsaAttemptError(f"no complete answer within {self.timeout:g} s") from None
        except aiohttp.ClientConnectionError as exc:
            raise TsaAttemptError(f"connection failed ({_describe(exc)})") from None
        except aiohttp.ClientError as exc:
            raise TsaAttemptError(f"HTTP exchange failed ({type(exc).__name__})") from None
        try:
            resp = tsp.TimeStampResp.load(body, strict=True)
            resp["status"]["status"].native  # noqa: B018 - force parsing now
        except (ValueError, TypeError, KeyError):
            raise TsaAttemptError("unparseable TimeStampResp") from None
        return resp

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self.max_response_bytes
        if response.content_length is not None and response.content_length > limit:
            raise TsaAttemptError(f"response larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise TsaAttemptError(f"response larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str):
        """A timestamp token (``cms.ContentInfo``) over ``message_digest``."""
        attempts = self.retries + 1
        reason = "no attempt made"
        for attempt in range(1, attempts + 1):
            nonce, req = self.request_cms(message_digest, md_algorithm)
            try:
                resp = await self.async_request_tsa_response(req)
                return _checked_token(resp, nonce, message_digest, md_algorithm)
            except TsaAttemptError as exc:
                reason = exc.reason
                if not exc.retryable:
                    raise TsaUnavailableError(
                        f"timestamp authority {self._where} answered {reason}"
                        f" (not retried, {attempt} attempt{'s' if attempt > 1 else ''})",
                        tsa=self._where,
                        attempts=attempt,
                    ) from None
            if attempt < attempts:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        raise TsaUnavailableError(
            f"timestamp authority {self._where} unavailable after {attempts} "
            f"attempt{'s' if attempts > 1 else ''}: {reason}",
            tsa=self._where,
            attempts=attempts,
        )


def _describe(exc: BaseException) -> str:
    """Short cause of a connection error: the OS error text, or the class name."""
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, OSError) and os_error.errno:
        return os.strerror(os_error.errno)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection"
    return type(exc).__name__


def _checked_token(resp: tsp.TimeStampResp, nonce, message_digest: bytes, md_algorithm: str):
    """The response's token, if it is granted and answers exactly this request."""
    try:
        status = resp["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            raise TsaAttemptError(f"request refused (PKIStatus {status})")
        token = resp["time_stamp_token"]
        if token["content_type"].native != "signed_data":
            raise TsaAttemptError("granted response without a SignedData token")
        encap = token["content"]["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise TsaAttemptError("token does not hold a TSTInfo")
        tst_info = encap["content"].parsed
        imprint = tst_info["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        hashed = imprint["hashed_message"].native
        received_nonce = tst_info["nonce"].native
    except (ValueError, TypeError, KeyError, AttributeError):
        raise TsaAttemptError("malformed timestamp token") from None
    if nonce is not None and received_nonce != nonce:
        raise TsaAttemptError("response does not match the request (nonce mismatch)")
    if algorithm != md_algorithm.lower() or hashed != message_digest:
        raise TsaAttemptError("response does not match the request (message imprint mismatch)")
    return token


class _DevTimeStamper(DummyTimeStamper):
    """pyHanko's DummyTimeStamper with its key parsed once (it re-parses the DER key on
    every token, ~30 ms for RSA-2048) and the constant signing-certificate attribute
    encoded once. Same signed attributes, same token structure."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        key = serialization.load_der_private_key(self.tsa_key.dump(), password=None)
        if not isinstance(key, RSAPrivateKey):
            raise ConfigurationError("the development TSA key must be RSA")
        self._key = key
        self._signing_cert_attr = simple_cms_attribute(
            "signing_certificate", as_signing_certificate(self.tsa_cert)
        ).dump()

    def _sign_tst_info(self, tst_info_data: bytes, md_algorithm: str, dt):
        digest = hashlib.new(md_algorithm, tst_info_data).digest()
        signed_attrs = cms.CMSAttributes(
            [
                simple_cms_attribute("content_type", "tst_info"),
                simple_cms_attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
                cms.CMSAttribute.load(self._signing_cert_attr),
                simple_cms_attribute("message_digest", digest),
            ]
        )
        signature = self._key.sign(
            signed_attrs.dump(), PKCS1v15(), get_pyca_cryptography_hash(md_algorithm.upper())
        )
        return signature, signed_attrs


def dev_timestamper(
    tsa_cert: asn1_x509.Certificate,
    tsa_key: asn1_keys.PrivateKeyInfo,
    chain: Iterable[asn1_x509.Certificate],
) -> TimeStamper:
    """The in-process development TSA; ``chain`` is embedded in every token."""
    return _DevTimeStamper(tsa_cert=tsa_cert, tsa_key=tsa_key, certs_to_embed=list(chain))


def load_dev_timestamper(
    cert_path: str | Path,
    key_path: str | Path,
    chain_paths: Iterable[str | Path] = (),
    *,
    password: bytes | None = None,
) -> TimeStamper:
    """``dev_timestamper`` from PEM/DER files (key: PKCS#8 or traditional PEM)."""
    certs = load_certificates(Path(cert_path))
    if len(certs) != 1:
        raise ConfigurationError(f"{cert_path} must hold exactly one TSA certificate")
    try:
        data = Path(key_path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read TSA key file {key_path}: {exc.strerror}") from None
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=password)
        else:
            key = serialization.load_der_private_key(data, password=password)
    except (ValueError, TypeError):
        raise ConfigurationError(f"{key_path} holds no readable private key") from None
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    chain = [c for p in chain_paths for c in load_certificates(Path(p))]
    return dev_timestamper(certs[0], asn1_keys.PrivateKeyInfo.load(der), chain)
