"""PKCS#11 key provider: a key on an HSM, a smart card or SoftHSM2.

The module is loaded, the token found, the user logged in and the key and certificate
looked up once, when the provider opens; every signature afterwards is a single
``C_SignInit``/``C_Sign`` on the kept session.

Three properties of PKCS#11 (and of python-pkcs11 on top of it) shape this module:

* **Login is per process and token, not per session.** A second ``C_Login`` on a token
  the process is already logged in to fails (``CKR_USER_ALREADY_LOGGED_IN``), and
  ``C_Logout`` on one session logs out every session. Providers of the same token
  (several agencies' keys on one HSM partition) therefore share one logged-in session,
  reference-counted; the last ``close()`` logs out.
* **No concurrent calls into a module.** python-pkcs11 calls ``C_Initialize(NULL)``, which
  tells the module the application will not call it from several threads at once;
  SoftHSM2 then disables its internal locking, and two threads signing on two sessions
  at the same time crash the process (SIGSEGV/SIGABRT, reproduced with SoftHSM 2.6.1).
  Every call into a module is therefore made under one per-module lock, and the signer
  signs synchronously in ``async_sign_raw`` (as ``CachedKeySigner`` does) instead of
  handing the session to pyHanko's default thread-pool executor. A signature blocks
  the event loop for the duration of one token operation (~0.5 ms on SoftHSM2).
* **Sessions do not survive fork.** A provider opened in a parent process refuses to
  sign in a forked child (open it in each worker instead); opening a provider in a
  forked child re-initialises the module first.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pkcs11
from asn1crypto import x509 as asn1_x509
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import (
    MultipleTokensReturned,
    NoSuchToken,
    PinExpired,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    PKCS11Error,
    TokenNotPresent,
    TokenNotRecognised,
    UserAlreadyLoggedIn,
    UserPinNotInitialized,
)
from pyhanko.sign.pkcs11 import PKCS11Signer

from ..errors import ConfigurationError, KeyUnavailableError
from .base import KeyProvider, KeySpec, resolve_secret
from .certs import load_certificates, order_chain, to_asn1
from .fast_signer import ConstantPartsMixin

__all__ = ["Pkcs11KeyProvider", "TokenSigner"]


# -- process-wide state: loaded modules and shared logged-in sessions ----------------

_PIN_MAC_KEY = secrets.token_bytes(32)  # PINs are compared by HMAC, never kept
_registry_lock = threading.Lock()
_modules: dict[str, _Module] = {}
_forked_paths: set[str] = set()  # modules loaded before a fork: re-initialise in the child


@dataclass(eq=False)
class _Module:
    path: str
    lib: Any
    pid: int
    lock: threading.RLock = field(default_factory=threading.RLock)
    sessions: dict[str, _SharedSession] = field(default_factory=dict)


@dataclass(eq=False)
class _SharedSession:
    module: _Module
    token_label: str
    session: Any
    slot_mechanisms: frozenset
    pin_mac: bytes | None
    refs: int = 0


def _after_fork_in_child() -> None:
    # No PKCS#11 calls here: only forget the parent's sessions (they belong to it) and
    # remember which modules must be re-initialised before this process uses them.
    global _registry_lock
    _registry_lock = threading.Lock()  # another thread may have held it at fork time
    _forked_paths.update(_modules)
    _forked_paths.update(getattr(pkcs11, "_loaded", {}))
    _modules.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _pin_mac(pin: str | None) -> bytes | None:
    if pin is None:
        return None
    return hmac.new(_PIN_MAC_KEY, pin.encode("utf-8"), hashlib.sha256).digest()


def _load_module(path: str) -> _Module:
    """The module at ``path`` (resolved), loaded and initialised in this process."""
    real = os.path.realpath(path)
    module = _modules.get(real)
    if module is not None:
        if module.pid == os.getpid():
            return module
        _forked_paths.add(real)  # inherited without the fork hook having run
    if not os.path.isfile(real):
        raise KeyUnavailableError(f"PKCS#11 module {path} does not exist")
    try:
        lib = pkcs11.lib(real)
        if real in _forked_paths:
            _forked_paths.discard(real)
            _reinitialize(lib)
    except PKCS11Error as exc:
        text = str(exc).removeprefix(f"OS exception while loading {real}: ")
        raise KeyUnavailableError(f"cannot load PKCS#11 module {path}: {text}") from None
    module = _Module(path=real, lib=lib, pid=os.getpid())
    _modules[real] = module
    return module


def _reinitialize(lib: Any) -> None:
    """C_Finalize + C_Initialize in a forked child (C_Finalize may fail there: some
    modules, e.g. SoftHSM2 with ``library.reset_on_fork``, already reset themselves)."""
    try:
        lib.finalize()
    except PKCS11Error:
        pass
    lib.initialize()


def _find_token(module: _Module, label: str) -> Any:
    matches = []
    for slot in module.lib.get_slots(token_present=True):
        try:
            token = slot.get_token()
        except (TokenNotPresent, TokenNotRecognised):
            continue
        if token.label == label:
            matches.append((slot, token))
    if not matches:
        raise NoSuchToken(label)
    if len(matches) > 1:
        raise MultipleTokensReturned(label)
    return matches[0]


def _acquire_session(spec: KeySpec, pin: str | None) -> _SharedSession:
    with _registry_lock:
        module = _load_module(spec.path)
        label = spec.token_label
        with module.lock:
            shared = module.sessions.get(label)
            if shared is not None:
                if not hmac.compare_digest(shared.pin_mac or b"", _pin_mac(pin) or b""):
                    raise KeyUnavailableError(
                        f"token {label!r} is already open in this process with a different PIN"
                    )
            else:
                shared = _open_session(module, label, pin)
                module.sessions[label] = shared
            shared.refs += 1
            return shared


def _open_session(module: _Module, label: str, pin: str | None) -> _SharedSession:
    where = f"token {label!r} of PKCS#11 module {module.path}"
    try:
        slot, token = _find_token(module, label)
        mechanisms = frozenset(slot.get_mechanisms())
        session = token.open(user_pin=pin) if pin is not None else token.open()
    except NoSuchToken:
        raise KeyUnavailableError(f"no {where}") from None
    except MultipleTokensReturned:
        raise KeyUnavailableError(f"more than one {where}") from None
    except (PinIncorrect, PinInvalid, PinLenRange):
        # python-pkcs11 opened a session before the failed C_Login and does not close
        # it; it stays allocated until the process exits.
        raise KeyUnavailableError(f"wrong user PIN for {where}") from None
    except PinLocked:
        raise KeyUnavailableError(f"the user PIN of {where} is locked") from None
    except PinExpired:
        raise KeyUnavailableError(f"the user PIN of {where} has expired") from None
    except UserPinNotInitialized:
        raise KeyUnavailableError(f"the user PIN of {where} is not initialised") from None
    except UserAlreadyLoggedIn:
        raise KeyUnavailableError(
            f"{where} was logged in to outside DocGate's key providers in this process"
        ) from None
    except PKCS11Error as exc:
        raise KeyUnavailableError(f"cannot open a session to {where}: {_describe(exc)}") from None
    return _SharedSession(
        module=module,
        token_label=label,
        session=session,
        slot_mechanisms=mechanisms,
        pin_mac=_pin_mac(pin),
    )


def _release_session(shared: _SharedSession) -> None:
    module = shared.module
    with _registry_lock, module.lock:
        shared.refs -= 1
        if shared.refs > 0:
            return
        if module.sessions.get(shared.token_label) is shared:
            del module.sessions[shared.token_label]
        try:
            shared.session.close()  # C_Logout + C_CloseSession
        except PKCS11Error:
            pass  # the token went away; nothing left to release


def _describe(exc: PKCS11Error) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- the signer ----------------------------------------------------------------------


class TokenSigner(ConstantPartsMixin, PKCS11Signer):
    """pyHanko's PKCS11Signer over objects looked up once, signing synchronously.

    The certificate and the key handle are fetched when the provider opens; signing
    never searches the token again. ``async_sign_raw`` signs in the calling thread,
    under the module lock, instead of in the event loop's default executor (see the
    module docstring).
    """

    def __init__(
        self,
        shared: _SharedSession,
        *,
        key_handle: Any,
        key_label: str,
        cert_label: str,
        signing_cert: asn1_x509.Certificate,
        chain: tuple[asn1_x509.Certificate, ...],
        use_raw_mechanism: bool,
        owner: Pkcs11KeyProvider,
    ) -> None:
        self._shared = shared
        self._key = key_handle
        self._owner = owner
        super().__init__(
            shared.session,
            cert_label=cert_label,
            key_label=key_label,
            signing_cert=signing_cert,
            ca_chain=chain,
            other_certs_to_pull=(),
            use_raw_mechanism=use_raw_mechanism,
        )
        self._load_objects()  # no token I/O: the key handle is the one passed in

    def _pull_signing_key_handle(self):
        return self._key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        self._owner._check_usable()
        spec = self._select_pkcs11_signing_params(
            digest_algorithm, sign_kwargs=self.sign_kwargs(data)
        )
        if spec.pre_sign_transform is not None:
            data = spec.pre_sign_transform(data)
        try:
            with self._shared.module.lock:
                signature = self._key.sign(data, **spec.sign_kwargs)
        except PKCS11Error as exc:
            raise KeyUnavailableError(
                f"signing with key {self.key_label!r} on token {self._shared.token_label!r} "
                f"failed: {_describe(exc)}"
            ) from None
        if spec.post_sign_transform is not None:
            signature = spec.post_sign_transform(signature)
        return signature

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run=False) -> bytes:
        if dry_run:
            return self.estimate_raw_signature_size_bytes() * b"0"
        return self.sign_raw(data, digest_algorithm)


# -- the provider --------------------------------------------------------------------

_HASHED_MECHANISMS = {
    KeyType.RSA: (Mechanism.SHA256_RSA_PKCS, Mechanism.RSA_PKCS),
    KeyType.EC: (Mechanism.ECDSA_SHA256, Mechanism.ECDSA),
}


class Pkcs11KeyProvider(KeyProvider):
    def __init__(self) -> None:  # use open()
        self._shared: _SharedSession | None = None
        self._signer: TokenSigner | None = None
        self._certificate: asn1_x509.Certificate | None = None
        self._chain: tuple[asn1_x509.Certificate, ...] = ()
        self._pid = os.getpid()
        self._closed = False
        self._close_lock = threading.Lock()

    @classmethod
    def open(cls, spec: KeySpec) -> Pkcs11KeyProvider:
        for name in ("path", "token_label", "key_label"):
            if not getattr(spec, name):
                raise ConfigurationError(f"a PKCS#11 key needs {name} in its key spec")
        secret = resolve_secret(spec)
        pin = secret.decode("utf-8") if secret is not None else None
        extra = tuple(c for f in spec.extra_certs for c in load_certificates(Path(f)))

        provider = cls()
        shared = _acquire_session(spec, pin)
        provider._shared = shared
        try:
            provider._load(spec, shared, extra)
        except BaseException:
            provider.close()
            raise
        return provider

    def _load(
        self, spec: KeySpec, shared: _SharedSession, extra: tuple[asn1_x509.Certificate, ...]
    ) -> None:
        key_label = spec.key_label
        cert_label = spec.cert_label or key_label
        where = f"token {spec.token_label!r}"
        session = shared.session
        with shared.module.lock:
            try:
                keys = list(
                    session.get_objects(
                        {
                            Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                            Attribute.SIGN: True,
                            Attribute.LABEL: key_label,
                        }
                    )
                )
                if not keys:
                    hint = "" if shared.pin_mac else " (no PIN configured: private keys are hidden)"
                    raise KeyUnavailableError(
                        f"no private signing key labelled {key_label!r} on {where}{hint}"
                    )
                if len(keys) > 1:
                    raise KeyUnavailableError(
                        f"more than one private key labelled {key_label!r} on {where}"
                    )
                key = keys[0]
                key_type = key[Attribute.KEY_TYPE]
                if key_type not in _HASHED_MECHANISMS:
                    raise KeyUnavailableError("only RSA and ECDSA keys are supported")
                modulus = key[Attribute.MODULUS] if key_type == KeyType.RSA else None
                certs = [
                    (obj[Attribute.LABEL], obj[Attribute.VALUE])
                    for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})
                ]
            except PKCS11Error as exc:
                raise KeyUnavailableError(
                    f"cannot read the objects of {where}: {_describe(exc)}"
                ) from None

        mine = [value for label, value in certs if label == cert_label]
        if not mine:
            raise KeyUnavailableError(f"no certificate labelled {cert_label!r} on {where}")
        if len(mine) > 1:
            raise KeyUnavailableError(
                f"more than one certificate labelled {cert_label!r} on {where}"
            )
        try:
            signing_cert = to_asn1(mine[0])
            on_token = [to_asn1(value) for label, value in certs if label != cert_label]
            cert_key = signing_cert.public_key
        except ValueError:
            raise KeyUnavailableError(f"unreadable certificate on {where}") from None
        if modulus is not None and (
            cert_key.algorithm != "rsa"
            or cert_key["public_key"].parsed["modulus"].native != int.from_bytes(modulus, "big")
        ):
            raise KeyUnavailableError(
                f"certificate {cert_label!r} does not belong to key {key_label!r} on {where}"
            )

        # From the token, only the signer's issuing chain (a token may hold other
        # agencies' certificates); the configured extra certificates all go in.
        chain = _issuing_chain(signing_cert, on_token)
        chain = order_chain(signing_cert, _dedupe(chain + extra, signing_cert))

        hashed, raw = _HASHED_MECHANISMS[key_type]
        use_raw = hashed not in shared.slot_mechanisms and raw in shared.slot_mechanisms

        self._certificate = signing_cert
        self._chain = chain
        self._signer = TokenSigner(
            shared,
            key_handle=key,
            key_label=key_label,
            cert_label=cert_label,
            signing_cert=signing_cert,
            chain=chain,
            use_raw_mechanism=use_raw,
            owner=self,
        )

    @property
    def certificate(self) -> asn1_x509.Certificate:
        assert self._certificate is not None
        return self._certificate

    @property
    def chain(self) -> tuple[asn1_x509.Certificate, ...]:
        return self._chain

    def signer(self) -> TokenSigner:
        self._check_usable()
        assert self._signer is not None
        return self._signer

    def _check_usable(self) -> None:
        if self._closed:
            raise KeyUnavailableError("the PKCS#11 key provider is closed")
        if self._pid != os.getpid():
            raise KeyUnavailableError(
                "the PKCS#11 key provider was opened in another process; "
                "open key providers in each worker process"
            )

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            shared, self._shared = self._shared, None
        # In a forked child the session belongs to the parent: leave it alone.
        if shared is not None and self._pid == os.getpid():
            _release_session(shared)


def _issuing_chain(
    leaf: asn1_x509.Certificate, certs: list[asn1_x509.Certificate]
) -> tuple[asn1_x509.Certificate, ...]:
    by_subject: dict[bytes, asn1_x509.Certificate] = {}
    for cert in certs:
        by_subject.setdefault(cert.subject.dump(), cert)
    chain: list[asn1_x509.Certificate] = []
    current = leaf
    while current.self_signed == "no":
        issuer = by_subject.pop(current.issuer.dump(), None)
        if issuer is None:
            break
        chain.append(issuer)
        current = issuer
    return tuple(chain)


def _dedupe(
    certs: tuple[asn1_x509.Certificate, ...], leaf: asn1_x509.Certificate
) -> tuple[asn1_x509.Certificate, ...]:
    seen = {leaf.dump()}
    out = []
    for cert in certs:
        der = cert.dump()
        if der not in seen:
            seen.add(der)
            out.append(cert)
    return tuple(out)
