"""Conformance suite: every key provider (PKCS#12 file, PKCS#11 token) behaves the same.

Each test runs once per provider kind through the ``case`` fixture; PKCS#11 runs are
marked ``pkcs11`` and use the SoftHSM2 token of ``tests.fixtures.pkcs11``.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from signing.errors import KeyUnavailableError
from signing.keys import KeyProvider, KeySpec, open_key_provider
from signing.keys.base import ProviderKind
from tests.fixtures.pkcs11 import SoftHsmToken, TestPki, make_test_pki

PKCS12 = "pkcs12"
PKCS11 = pytest.param("pkcs11", marks=pytest.mark.pkcs11)
DIGEST = hashlib.sha256(b"DocGate").digest()  # a SHA-256-digest-sized input


# -- the cases ----------------------------------------------------------------------


@dataclass
class Case:
    kind: str
    spec: KeySpec
    secret: str  # the right password / PIN (must never show up in an error)
    root: x509.Certificate
    leaf: x509.Certificate
    broken: dict[str, Callable[[], KeySpec]]  # specs that must not open
    wrong_secret: Callable[[str], KeySpec]  # spec whose password variable holds the arg
    forbid_reload: Callable[[pytest.MonkeyPatch, KeyProvider], None]

    def open(self) -> KeyProvider:
        return open_key_provider(self.spec)


@pytest.fixture(scope="module")
def p12_pki() -> TestPki:
    return make_test_pki()


def _pkcs12_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pki: TestPki) -> Case:
    password = "p12-" + secrets.token_hex(8)
    key, leaf = pki.leaves[0]
    data = pkcs12.serialize_key_and_certificates(
        b"docgate-test",
        key,
        leaf,
        [pki.root_cert],
        serialization.BestAvailableEncryption(password.encode()),
    )
    path = tmp_path / "agency.p12"
    path.write_bytes(data)
    monkeypatch.setenv("DOCGATE_TEST_P12_PASSWORD", password)
    spec = KeySpec(
        provider=ProviderKind.PKCS12, path=str(path), password_env="DOCGATE_TEST_P12_PASSWORD"
    )
    damaged = tmp_path / "damaged.p12"
    damaged.write_bytes(data[: len(data) // 2])
    cert_only = tmp_path / "cert-only.p12"
    cert_only.write_bytes(
        pkcs12.serialize_key_and_certificates(
            None, None, None, [leaf], serialization.BestAvailableEncryption(password.encode())
        )
    )

    def wrong_secret(value: str) -> KeySpec:
        monkeypatch.setenv("DOCGATE_TEST_P12_WRONG", value)
        return replace(spec, password_env="DOCGATE_TEST_P12_WRONG")

    def forbid_reload(mp: pytest.MonkeyPatch, provider: KeyProvider) -> None:
        def boom(*args, **kwargs):
            raise AssertionError("the key was parsed again after the provider opened")

        mp.setattr(pkcs12, "load_key_and_certificates", boom)
        mp.setattr(serialization, "load_der_private_key", boom)
        mp.setattr(serialization, "load_pem_private_key", boom)
        mp.setattr(Path, "read_bytes", boom)

    return Case(
        kind="pkcs12",
        spec=spec,
        secret=password,
        root=pki.root_cert,
        leaf=leaf,
        broken={
            "missing file": lambda: replace(spec, path=str(tmp_path / "missing.p12")),
            "damaged file": lambda: replace(spec, path=str(damaged)),
            "no private key": lambda: replace(spec, path=str(cert_only)),
        },
        wrong_secret=wrong_secret,
        forbid_reload=forbid_reload,
    )


def _pkcs11_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: SoftHsmToken) -> Case:
    import pkcs11

    import signing.keys.pkcs11 as p11_provider

    spec = token.spec
    not_a_module = tmp_path / "not-a-module.so"
    not_a_module.write_text("not an ELF file\n")

    def wrong_secret(value: str) -> KeySpec:
        monkeypatch.setenv("DOCGATE_TEST_PKCS11_WRONG", value)
        return replace(spec, password_env="DOCGATE_TEST_PKCS11_WRONG")

    def forbid_reload(mp: pytest.MonkeyPatch, provider: KeyProvider) -> None:
        def boom(*args, **kwargs):
            raise AssertionError("the token was searched / opened again after open()")

        signer = provider.signer()
        mp.setattr(signer, "pkcs11_session", _NoSearchSession(signer.pkcs11_session))
        mp.setattr(pkcs11, "lib", boom)
        mp.setattr(p11_provider, "_open_session", boom)
        mp.setattr(p11_provider, "_load_module", boom)
        for name in ("_pull_signing_key_handle", "_pull_single_cert", "_load_other_certs"):
            mp.setattr(signer, name, boom)

    return Case(
        kind="pkcs11",
        spec=spec,
        secret=token.pin,
        root=token.root_cert,
        leaf=token.leaf_cert,
        broken={
            "missing module": lambda: replace(spec, path=str(tmp_path / "missing.so")),
            "not a module": lambda: replace(spec, path=str(not_a_module)),
            "unknown token label": lambda: replace(spec, token_label="no-such-token"),
            "unknown key label": lambda: replace(spec, key_label="no-such-key", cert_label=""),
            "unknown certificate label": lambda: replace(spec, cert_label="no-such-cert"),
            "certificate of another key": lambda: replace(spec, cert_label=token.second_key_label),
        },
        wrong_secret=wrong_secret,
        forbid_reload=forbid_reload,
    )


class _NoSearchSession:
    """A PKCS#11 session that refuses object searches (python-pkcs11's Session is an
    extension type, so its methods cannot be patched in place)."""

    def __init__(self, session) -> None:
        self._session = session

    def get_objects(self, *args, **kwargs):
        raise AssertionError("the token was searched again after open()")

    def __getattr__(self, name: str):
        return getattr(self._session, name)


@pytest.fixture
def case(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Case:
    if request.param == "pkcs12":
        return _pkcs12_case(tmp_path, monkeypatch, request.getfixturevalue("p12_pki"))
    return _pkcs11_case(tmp_path, monkeypatch, request.getfixturevalue("softhsm_token"))


@pytest.fixture
def provider(case: Case) -> Iterator[KeyProvider]:
    with case.open() as opened:
        yield opened


ALL = pytest.mark.parametrize("case", [PKCS12, PKCS11], indirect=True)


def _verify(cert: asn1_x509.Certificate | x509.Certificate, signature: bytes, data: bytes) -> None:
    if isinstance(cert, asn1_x509.Certificate):
        cert = x509.load_der_x509_certificate(cert.dump())
    cert.public_key().verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def _one_page_pdf() -> bytes:
    writer = PdfFileWriter()
    contents = writer.add_object(generic.StreamObject(stream_data=b"BT ET"))
    writer.insert_page(PageObject(contents=contents, media_box=(0, 0, 595, 842)))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


# -- the conformance tests -----------------------------------------------------------


@ALL
def test_certificate_and_chain(case: Case, provider: KeyProvider) -> None:
    der = case.leaf.public_bytes(serialization.Encoding.DER)
    assert provider.certificate.dump() == der
    assert [c.dump() for c in provider.chain] == [
        case.root.public_bytes(serialization.Encoding.DER)
    ]


@ALL
def test_signature_verifies_with_the_certificate_key(case: Case, provider: KeyProvider) -> None:
    signer = provider.signer()
    signature = signer.sign_raw(DIGEST, "sha256")
    _verify(provider.certificate, signature, DIGEST)
    with pytest.raises(Exception):  # noqa: B017 - any verification error
        _verify(provider.certificate, signature, DIGEST[::-1])


@ALL
async def test_async_signature_verifies_with_the_certificate_key(
    case: Case, provider: KeyProvider
) -> None:
    signature = await provider.signer().async_sign_raw(DIGEST, "sha256")
    _verify(case.leaf, signature, DIGEST)


@ALL
def test_signer_is_built_once_and_key_never_reloaded(
    case: Case, provider: KeyProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = provider.signer()
    assert provider.signer() is signer
    case.forbid_reload(monkeypatch, provider)
    for _ in range(2):
        assert provider.signer() is signer
        _verify(provider.certificate, signer.sign_raw(DIGEST, "sha256"), DIGEST)


@ALL
async def test_pdf_signature_validates(case: Case, provider: KeyProvider) -> None:
    pdf_signer = PdfSigner(
        PdfSignatureMetadata(
            field_name="Sig1", subfilter=SigSeedSubFilter.PADES, md_algorithm="sha256"
        ),
        signer=provider.signer(),
    )
    out = await pdf_signer.async_sign_pdf(
        IncrementalPdfFileWriter(BytesIO(_one_page_pdf())), output=BytesIO()
    )
    reader = PdfFileReader(BytesIO(out.getvalue()))
    (embedded,) = reader.embedded_signatures
    root = asn1_x509.Certificate.load(case.root.public_bytes(serialization.Encoding.DER))
    status = await async_validate_pdf_signature(
        embedded, signer_validation_context=ValidationContext(trust_roots=[root])
    )
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.bottom_line
    assert status.signing_cert.dump() == provider.certificate.dump()
    # the issuing chain is embedded in the CMS
    embedded_certs = {c.chosen.dump() for c in embedded.signed_data["certificates"]}
    assert root.dump() in embedded_certs


@ALL
def test_wrong_secret_is_refused_without_revealing_it(case: Case) -> None:
    wrong = "wrong-" + secrets.token_hex(8)
    with pytest.raises(KeyUnavailableError) as info:
        open_key_provider(case.wrong_secret(wrong))
    text = f"{info.value} {info.value.detail} {info.value.fields!r}"
    assert wrong not in text
    assert case.secret not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


BROKEN = [
    *[(PKCS12, b) for b in ("missing file", "damaged file", "no private key")],
    *[
        pytest.param("pkcs11", b, marks=pytest.mark.pkcs11)
        for b in (
            "missing module",
            "not a module",
            "unknown token label",
            "unknown key label",
            "unknown certificate label",
            "certificate of another key",
        )
    ],
]


@pytest.mark.parametrize("case, breakage", BROKEN, indirect=["case"])
def test_unusable_spec_raises_key_unavailable(case: Case, breakage: str) -> None:
    with pytest.raises(KeyUnavailableError) as info:
        open_key_provider(case.broken[breakage]())
    assert info.value.code == "key_unavailable"
    assert case.secret not in str(info.value)


@ALL
def test_close_is_idempotent(case: Case) -> None:
    provider = case.open()
    provider.close()
    provider.close()
    with provider:
        pass  # __exit__ closes a third time
    # a closed provider never signs with a released key: it either still can (nothing
    # to release) or says the key is unavailable
    try:
        signature = provider.signer().sign_raw(DIGEST, "sha256")
    except KeyUnavailableError:
        pass
    else:
        _verify(case.leaf, signature, DIGEST)
    # and the key opens again afterwards
    with case.open() as again:
        _verify(again.certificate, again.signer().sign_raw(DIGEST, "sha256"), DIGEST)


# -- PKCS#11 only: one login per token and process, threads, fork ---------------------


@pytest.mark.pkcs11
def test_providers_of_one_token_share_its_login(softhsm_token: SoftHsmToken) -> None:
    first = open_key_provider(softhsm_token.spec)
    second = open_key_provider(softhsm_token.spec_for(softhsm_token.second_key_label))
    try:
        assert first.certificate.dump() != second.certificate.dump()
        for p in (first, second):
            _verify(p.certificate, p.signer().sign_raw(DIGEST, "sha256"), DIGEST)
        first.close()  # must not log the second provider out
        _verify(second.certificate, second.signer().sign_raw(DIGEST, "sha256"), DIGEST)
    finally:
        first.close()
        second.close()
    with open_key_provider(softhsm_token.spec) as again:  # logs in again
        _verify(again.certificate, again.signer().sign_raw(DIGEST, "sha256"), DIGEST)


@pytest.mark.pkcs11
def test_a_different_pin_for_an_open_token_is_refused(
    softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The token is already logged in, so C_Login cannot check the PIN any more.
    wrong = "wrong-" + secrets.token_hex(8)
    monkeypatch.setenv("DOCGATE_TEST_PKCS11_WRONG", wrong)
    with open_key_provider(softhsm_token.spec):
        with pytest.raises(KeyUnavailableError) as info:
            open_key_provider(
                softhsm_token.spec_for(
                    softhsm_token.second_key_label, password_env="DOCGATE_TEST_PKCS11_WRONG"
                )
            )
        assert wrong not in str(info.value) and softhsm_token.pin not in str(info.value)


def _in_forked_child(target: Callable[[], str]) -> tuple[int | None, str]:
    """Run ``target`` in a forked child; its exit code and message. A crash of the
    PKCS#11 module (SIGSEGV) shows as a negative exit code instead of killing pytest."""
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)

    def run() -> None:
        try:
            sender.send(target())
        except BaseException as exc:  # report everything to the parent
            sender.send(f"FAILED: {type(exc).__name__}: {exc}")

    process = ctx.Process(target=run)
    process.start()
    sender.close()
    process.join(60)
    if process.is_alive():  # pragma: no cover - hung child
        process.kill()
        process.join()
    try:
        message = receiver.recv() if receiver.poll() else ""
    except EOFError:  # the child died before reporting
        message = ""
    return process.exitcode, message


# Python >= 3.12 warns when forking a process that has threads (pytest may have some);
# the children here only touch the PKCS#11 module and exit.
FORK_WARNING = pytest.mark.filterwarnings(
    r"ignore:This process \(pid=\d+\) is multi-threaded:DeprecationWarning"
)


@pytest.mark.pkcs11
@FORK_WARNING
def test_fork_needs_a_provider_per_process(softhsm_token: SoftHsmToken) -> None:
    parent = open_key_provider(softhsm_token.spec)
    try:

        def child() -> str:
            try:
                parent.signer().sign_raw(DIGEST, "sha256")
                return "FAILED: the parent's provider signed in the child"
            except KeyUnavailableError:
                pass
            parent.close()  # must not touch the parent's session
            with open_key_provider(softhsm_token.spec) as own:
                _verify(own.certificate, own.signer().sign_raw(DIGEST, "sha256"), DIGEST)
            return "ok"

        assert _in_forked_child(child) == (0, "ok")
        # the parent's session survived the child
        _verify(parent.certificate, parent.signer().sign_raw(DIGEST, "sha256"), DIGEST)
    finally:
        parent.close()


@pytest.mark.pkcs11
@FORK_WARNING
def test_concurrent_signing_from_threads(softhsm_token: SoftHsmToken) -> None:
    # Two tokens of one module, several threads each: without the per-module lock
    # SoftHSM2 (initialised without locking) crashes. Run in a child process so a
    # crash fails this test rather than the whole run.
    specs = [
        softhsm_token.spec,
        softhsm_token.spec_for(softhsm_token.key_label, token_label=softhsm_token.second_token),
    ]

    def child() -> str:
        providers = [open_key_provider(s) for s in specs]
        errors: list[str] = []

        def work(p: KeyProvider) -> None:
            try:
                for _ in range(40):
                    _verify(p.certificate, p.signer().sign_raw(DIGEST, "sha256"), DIGEST)
            except BaseException as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=work, args=(p,)) for p in providers for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p in providers:
            p.close()
        return "ok" if not errors else f"FAILED: {errors[:3]}"

    assert _in_forked_child(child) == (0, "ok")
