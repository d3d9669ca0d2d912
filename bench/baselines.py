"""What people use today instead of DocGate, measured in the same run as DocGate:

- the command line once per file: ``pyhanko sign addsig --use-pades pemder`` (a script
  that loops over a folder), timed as whole processes;
- pyHanko called naively in-process: ``signers.sign_pdf`` with a ``SimpleSigner`` loaded
  once (PAdES subfilter, SHA-256), and ``validate_pdf_signature`` for verification.

The in-process baselines run in a fresh spawned process that never imports DocGate's
``signing`` package, so none of DocGate's speed-ups (``signing.speedups``) reach them.
"""

from __future__ import annotations

import concurrent.futures
import io
import multiprocessing
import shutil
import subprocess
from pathlib import Path

from bench.common import Figures, measure

__all__ = ["cli_sign", "in_fresh_process", "naive_sign", "naive_verify", "pem_files"]


def pem_files(p12: Path, password: bytes, folder: Path) -> tuple[Path, Path, Path]:
    """The key (unencrypted PEM, in a private temporary folder), the certificate and
    the chain of a PKCS#12 file, as the pemder command line wants them."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    key, cert, chain = pkcs12.load_key_and_certificates(p12.read_bytes(), password)
    assert key is not None and cert is not None
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_pem = folder / "key.pem"
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_pem.chmod(0o600)
    cert_pem = folder / "cert.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    chain_pem = folder / "chain.pem"
    chain_pem.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    return key_pem, cert_pem, chain_pem


def cli_sign(key: Path, cert: Path, chain: Path, pdf: Path, runs: int, folder: Path) -> Figures:
    """``pyhanko sign addsig`` once per file, as a shell loop would run it."""
    pyhanko = shutil.which("pyhanko") or str(
        Path(__import__("sys").executable).with_name("pyhanko")
    )
    outputs = iter(range(10**9))

    def once() -> None:
        out = folder / f"cli-{next(outputs)}.pdf"
        subprocess.run(
            [
                pyhanko, "sign", "addsig", "--field", "Sig1", "--use-pades",
                "pemder", "--key", str(key), "--cert", str(cert), "--chain", str(chain),
                "--no-pass", str(pdf), str(out),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        out.unlink()

    return measure("baseline (a): pyhanko CLI, one process per file", once, runs, warmup=1)


def naive_sign(p12: str, password: bytes, pdf: bytes, runs: int) -> Figures:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata

    signer = signers.SimpleSigner.load_pkcs12(p12, passphrase=password)
    meta = PdfSignatureMetadata(
        field_name="Sig1", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )

    def once() -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        return signers.sign_pdf(writer, meta, signer=signer).getvalue()

    return measure("baseline (b): pyhanko sign_pdf in-process", once, runs)


def naive_verify(pdf: bytes, roots: list[bytes], other: list[bytes], crls, ocsps, runs: int):
    """``validate_pdf_signature`` with the same trust and revocation data DocGate has."""
    from asn1crypto import crl, ocsp, x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    def once() -> None:
        vc = ValidationContext(
            trust_roots=[x509.Certificate.load(c) for c in roots],
            other_certs=[x509.Certificate.load(c) for c in other],
            crls=[crl.CertificateList.load(c) for c in crls],
            ocsps=[ocsp.OCSPResponse.load(o) for o in ocsps],
            allow_fetching=False,
            revocation_mode="hard-fail",
        )
        sig = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
        assert validate_pdf_signature(sig, signer_validation_context=vc).bottom_line

    return measure("baseline: pyhanko validate_pdf_signature in-process", once, runs)


def in_fresh_process(fn, *args):
    """``fn(*args)`` in a new spawned interpreter (nothing of this process's imports)."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()
