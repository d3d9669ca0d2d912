"""The checkpoint that closes the audit range and its RFC 3161 timestamp token: the
message imprint, the message-digest attribute and (with the optional ``cryptography``
package) the signature, the TSA certificate's purpose and validity, and its chain."""

# ruff: noqa: UP017, UP031
# (the checker runs on Python 3.8+, away from DocGate: no 3.10+ idioms)

from __future__ import annotations

import datetime as dt
import hashlib

from checks import Problem
from der import DIGESTS, OID_RSASSA_PSS, OID_TST_INFO, der_oid, parse_gen_time, parse_token


def check_checkpoint(pkg, manifest, entries, args):
    audit = manifest.get("audit") or {}
    if not audit.get("checkpoint"):
        if args.allow_unanchored:
            return "NOT ANCHORED (no checkpoint covers entry %d yet)" % entries[-1]["seq"]
        raise Problem(
            "NOT ANCHORED: no checkpoint covers these entries yet, so the chain is "
            "consistent only with itself; export the package again after the next "
            "checkpoint (or pass --allow-unanchored)"
        )
    cp = pkg.json("audit/checkpoint.json")
    last = entries[-1]
    if cp.get("seq") != last["seq"] or cp.get("head_hash") != last["hash"]:
        raise Problem(
            "the checkpoint does not name the last audit entry (%s, %s)"
            % (last["seq"], last["hash"])
        )
    try:
        token = parse_token(pkg.read("audit/checkpoint.tsr"))
        when = parse_gen_time(token["gen_time"])
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise Problem("the checkpoint's timestamp token is unreadable (%s)" % exc) from None
    expected = hashlib.sha256(bytes.fromhex(cp["head_hash"])).digest()
    if (
        token["imprint_algorithm"] != der_oid("2.16.840.1.101.3.4.2.1")
        or token["imprint"] != expected
    ):
        raise Problem(
            "the timestamp token does not cover the checkpoint's head_hash "
            "(message imprint mismatch)"
        )
    md = DIGESTS.get(token["digest_algorithm"])
    if md is None:
        raise Problem("the timestamp token uses an unsupported digest algorithm")
    content_type, digest = token["content_type"], token["message_digest"]
    if content_type is None or content_type.body != OID_TST_INFO:
        raise Problem("the timestamp token's content-type attribute is not TSTInfo")
    if digest is None or digest.body != hashlib.new(md, token["tst_der"]).digest():
        raise Problem("the timestamp token's TSTInfo was altered (message-digest mismatch)")
    if args.skip_token_signature:
        return "token signature NOT checked (--skip-token-signature), time " + when.isoformat()
    return check_token_signature(token, md, when, args.trust)


def load_pem_certificates(path):
    from cryptography import x509

    with open(path, "rb") as fh:
        data = fh.read()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def check_token_signature(token, md, when, trust_path):
    try:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
        from cryptography.x509.oid import ExtendedKeyUsageOID
    except ImportError:
        raise Problem(
            "the timestamp token's signature cannot be checked without the "
            "'cryptography' package (pip install cryptography); everything before "
            "it checked out (--skip-token-signature accepts that)"
        ) from None
    trusted = load_pem_certificates(trust_path) if trust_path else []
    pool = []
    for raw in token["certificates"]:
        try:
            pool.append(x509.load_der_x509_certificate(raw))
        except ValueError:
            continue
    pool += trusted
    signer = find_signer(token["sid"], pool)
    if signer is None:
        raise Problem(
            "the timestamp token does not contain its TSA's certificate (give it with --trust)"
        )
    algorithm = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[md]()
    key = signer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            pad = padding.PKCS1v15()
            if token["signature_algorithm"] == OID_RSASSA_PSS:
                pad = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
            key.verify(token["signature"], token["signed_attrs"], pad, algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(token["signature"], token["signed_attrs"], ec.ECDSA(algorithm))
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(token["signature"], token["signed_attrs"])
        else:
            raise Problem("the TSA's key type is not supported")
    except InvalidSignature:
        raise Problem("the timestamp token's signature is invalid") from None
    try:
        usages = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = []
    if ExtendedKeyUsageOID.TIME_STAMPING not in usages:
        raise Problem("the timestamp token is signed by a certificate not meant for timestamping")
    if not validity(signer, "before") <= when <= validity(signer, "after"):
        raise Problem("the TSA certificate was not valid at the token's time " + when.isoformat())
    path = chain_of(signer, pool)
    fingerprint = path[-1].fingerprint(hashes.SHA256()).hex()
    if trusted:
        anchors = {c.fingerprint(hashes.SHA256()) for c in trusted}
        if not any(c.fingerprint(hashes.SHA256()) in anchors for c in path):
            raise Problem(
                "the TSA certificate (%s) does not chain to a certificate in %s"
                % (signer.subject.rfc4514_string(), trust_path)
            )
        trust_note = "chains to a certificate in " + trust_path
    else:
        trust_note = (
            "chain root %s, SHA-256 %s: compare it with the TSA's published "
            "fingerprint or pass --trust ROOT.pem"
            % (path[-1].subject.rfc4514_string(), fingerprint)
        )
    return "timestamped %s by %s (%s)" % (
        when.isoformat(),
        signer.subject.rfc4514_string(),
        trust_note,
    )


def validity(cert, end):
    value = getattr(cert, "not_valid_%s_utc" % end, None)  # cryptography >= 42
    if value is None:
        value = getattr(cert, "not_valid_" + end).replace(tzinfo=dt.timezone.utc)
    return value


def find_signer(sid, pool):
    from cryptography import x509

    for cert in pool:
        if sid.tag == 0x30:  # issuerAndSerialNumber
            issuer, serial = sid.children()[:2]
            number = int.from_bytes(serial.body, "big", signed=True)
            if cert.issuer.public_bytes() == issuer.raw and cert.serial_number == number:
                return cert
        elif sid.tag == 0x80:  # subjectKeyIdentifier
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == sid.body:
                return cert
    return None


def chain_of(cert, pool):
    path = [cert]
    while len(path) < 10 and path[-1].issuer != path[-1].subject:
        for candidate in pool:
            if candidate.subject != path[-1].issuer or candidate in path:
                continue
            try:
                path[-1].verify_directly_issued_by(candidate)
            except Exception:  # noqa: BLE001 - any failure: not its issuer
                continue
            path.append(candidate)
            break
        else:
            break
    return path
