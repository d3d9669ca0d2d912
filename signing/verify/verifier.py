"""Verifying every signature of a PDF and building the report.

Per signature: the byte-level checks of ``structure``; pyHanko's integrity, signature
and trust validation against DocGate's trust store, with revocation data taken from the
document's DSS first and fetched online only where the policy allows; re-validation at
the time proven by a signature timestamp when the certificate is revoked or expired
now; the algorithm policy; and what changed after the signed revision (pyHanko's diff
analysis plus the widget checks pyHanko lets pass). Everything is mapped onto ETSI EN
319 102-1 indications. Malformed signatures become TOTAL_FAILED/FORMAT_FAILURE entries,
never exceptions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.misc import PdfReadError, PdfStrictReadError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESIndeterminate
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from ..document import PARSE_ERRORS
from ..errors import DamagedPdfError, EncryptedPdfError, NotAPdfError
from ..mapped import MappedPdf, pdf_stream
from ..speedups import install as install_speedups
from .docfacts import DocFacts, DssData
from .policy import VerifyContext
from .report import (
    Coverage,
    DocumentInfo,
    Indication,
    Modification,
    SignatureReport,
    SignerInfo,
    SubIndication,
    VerificationReport,
)
from .structure import byte_range_problems, trailing_garbage
from .widgets import widget_changes_after

__all__ = ["verify_pdf"]

log = logging.getLogger(__name__)

_PADES = "/ETSI.CAdES.detached"
_KNOWN_SUBFILTERS = {_PADES, "/adbe.pkcs7.detached", "/ETSI.RFC3161"}
_PERMITTED = {ModificationLevel.NONE: True, ModificationLevel.LTA_UPDATES: True}
_MOD = {
    ModificationLevel.NONE: Modification.NONE,
    ModificationLevel.LTA_UPDATES: Modification.LTA_UPDATES,
    ModificationLevel.FORM_FILLING: Modification.FORM_FILLING,
    ModificationLevel.ANNOTATIONS: Modification.ANNOTATIONS,
    ModificationLevel.OTHER: Modification.OTHER,
}
_COVERAGE = {
    SignatureCoverageLevel.ENTIRE_FILE: Coverage.ENTIRE_FILE,
    SignatureCoverageLevel.ENTIRE_REVISION: Coverage.ENTIRE_REVISION,
}
# trust problems that a timestamp proving earlier existence can resolve (EN 319 102-1 5.5)
_NEEDS_POE = {
    AdESIndeterminate.REVOKED_NO_POE,
    AdESIndeterminate.REVOKED_CA_NO_POE,
    AdESIndeterminate.OUT_OF_BOUNDS_NO_POE,
    AdESIndeterminate.OUT_OF_BOUNDS_NOT_REVOKED,
    AdESIndeterminate.EXPIRED,
    AdESIndeterminate.TRY_LATER,
}


def _open(data: bytes | MappedPdf) -> tuple[PdfFileReader, list[str]]:
    if b"%PDF-" not in data[:1024]:
        raise NotAPdfError("the body is not a PDF document (no %PDF- header)")
    notes: list[str] = []
    try:
        try:
            reader = PdfFileReader(pdf_stream(data), strict=True)
            reader.root  # noqa: B018 - force the trailer and catalog now
        except PdfStrictReadError:
            reader = PdfFileReader(pdf_stream(data), strict=False)
            reader.root  # noqa: B018
            notes.append("the file needed lenient parsing (it breaks the PDF syntax rules)")
    except PdfReadError as exc:
        raise DamagedPdfError(f"the PDF cannot be read: {str(exc)[:200]}") from None
    except PARSE_ERRORS as exc:
        raise DamagedPdfError(f"the PDF is damaged beyond repair: {type(exc).__name__}") from None
    if reader.encrypted:
        raise EncryptedPdfError("the PDF is encrypted; its signatures cannot be checked")
    return reader, notes


def _signer(cert: asn1_x509.Certificate | None) -> SignerInfo | None:
    if cert is None:
        return None
    subject = cert.subject.native
    return SignerInfo(
        common_name=subject.get("common_name"),
        organization=subject.get("organization_name"),
        serial=format(cert.serial_number, "x"),
        sha256=hashlib.sha256(cert.dump()).hexdigest(),
    )


def _failed(
    field: str, sub: SubIndication, message: str, kind: str = "signature"
) -> SignatureReport:
    return SignatureReport(
        field=str(field),
        indication=Indication.TOTAL_FAILED,
        subindication=sub,
        intact=False,
        trusted=False,
        coverage=Coverage.PARTIAL,
        modifications=Modification.OTHER,
        modifications_permitted=False,
        level=None,
        signer=None,
        signing_time=None,
        timestamp_time=None,
        kind=kind,
        messages=[message],
    )


def _context(
    ctx: VerifyContext, dss: DssData, moment: dt.datetime | None, revocation_mode: str = "hard-fail"
) -> ValidationContext:
    trust = ctx.trust
    fetching = ctx.session is not None and ctx.revocation.allow_fetching
    return ValidationContext(
        trust_roots=list(trust.roots),
        other_certs=list(trust.intermediates) + dss.certs,
        crls=list(trust.crls) + dss.crls,
        ocsps=list(trust.ocsps) + dss.ocsps,
        allow_fetching=fetching,
        fetcher_backend=AIOHttpFetcherBackend(
            ctx.session, per_request_timeout=ctx.revocation.timeout_s
        )
        if fetching
        else None,
        revocation_mode=revocation_mode,
        moment=moment,
        retroactive_revinfo=moment is not None,
    )


def _crypto_problem(ctx: VerifyContext, md: str, cert: asn1_x509.Certificate) -> str | None:
    pol = ctx.algorithms
    if md.lower() not in pol.allowed_digests:
        return f"digest algorithm {md} is not allowed (SHA-256 or stronger required)"
    key = cert.public_key
    if key.algorithm == "rsa" and key.bit_size < pol.min_rsa_bits:
        return f"RSA key of {key.bit_size} bits is below the required {pol.min_rsa_bits}"
    if key.algorithm == "ec" and key.bit_size < pol.min_ec_bits:
        return f"EC key of {key.bit_size} bits is below the required {pol.min_ec_bits}"
    return None


def _trust_subindication(status) -> SubIndication:
    indic = status.trust_problem_indic
    if indic is not None:
        try:
            return SubIndication(indic.name)
        except ValueError:
            return SubIndication.GENERIC
    if status.revoked:
        return SubIndication.REVOKED_NO_POE
    return SubIndication.NO_CERTIFICATE_CHAIN_FOUND


async def _validate(
    emb, ctx: VerifyContext, dss: DssData, moment: dt.datetime | None, revocation_mode="hard-fail"
):
    vc = _context(ctx, dss, moment, revocation_mode)
    if emb.sig_object_type == "/DocTimeStamp":
        return await async_validate_pdf_timestamp(emb, validation_context=vc)
    return await async_validate_pdf_signature(
        emb,
        signer_validation_context=vc,
        ts_validation_context=_context(ctx, dss, None),
        key_usage_settings=KeyUsageConstraints(
            key_usage=set(ctx.algorithms.signer_key_usage), match_all_key_usages=False
        ),
    )


def _form_filling_permitted(status, doc: DocFacts) -> bool:
    """API.md: later signatures and document timestamps are permitted; other form
    filling only where a certification signature's DocMDP allows it (P >= 2)."""
    changed = getattr(status.diff_result, "changed_form_fields", None)
    if changed is not None and set(changed) <= doc.signed_fields:
        return True
    return doc.docmdp_p is not None and doc.docmdp_p >= 2 and bool(status.docmdp_ok)


async def _verify_one(
    data: bytes,
    reader: PdfFileReader,
    emb: EmbeddedPdfSignature,
    name: str,
    ctx: VerifyContext,
    doc: DocFacts,
) -> SignatureReport:
    dss = doc.dss
    doc_ts_revisions = doc.doc_ts_revisions
    is_ts = emb.sig_object_type == "/DocTimeStamp"
    kind = "document_timestamp" if is_ts else "signature"
    problems = byte_range_problems(data, emb.sig_object)
    if problems:
        return _failed(name, SubIndication.FORMAT_FAILURE, "; ".join(problems), kind)
    status = await _validate(emb, ctx, dss, None)
    messages: list[str] = []
    cert = status.signing_cert
    ts_status = None if is_ts else status.timestamp_validity
    ts_time = status.timestamp if is_ts else (ts_status.timestamp if ts_status else None)
    ts_ok = ts_status is not None and ts_status.intact and ts_status.valid and ts_status.trusted

    # Revoked or expired now: a trusted signature timestamp proves the signature existed
    # earlier; validate again at that time with the embedded validation data.
    if (
        not is_ts
        and status.intact
        and status.valid
        and not status.trusted
        and ts_ok
        and status.trust_problem_indic in _NEEDS_POE
    ):
        at_ts = await _validate(emb, ctx, dss, ts_time)
        if at_ts.trusted:
            messages.append(
                f"the certificate was checked at the signature timestamp ({ts_time.isoformat()}): "
                f"{status.trust_problem_indic.name} now"
            )
            status = at_ts
        elif at_ts.revoked:
            status = at_ts
            messages.append(
                "the certificate was already revoked when the signature was timestamped"
            )

    indication, sub = Indication.TOTAL_PASSED, None
    crypto = _crypto_problem(ctx, status.md_algorithm, cert)
    if not status.intact:
        indication, sub = Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE
        messages.append("the signed bytes were changed: the document digest does not match")
    elif crypto:
        indication, sub = Indication.INDETERMINATE, SubIndication.CRYPTO_CONSTRAINTS_FAILURE
        messages.append(crypto)
    elif not status.valid:
        indication, sub = Indication.TOTAL_FAILED, SubIndication.SIG_CRYPTO_FAILURE
        messages.append("the signature value does not verify with the signer's public key")
    elif not status.trusted:
        sub = _trust_subindication(status)
        if sub is SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE and not is_ts:
            # pyHanko files "revocation data could not be obtained" under the general
            # failure; if the chain holds once revocation may be skipped, that was it.
            lenient = await _validate(emb, ctx, dss, None, revocation_mode="soft-fail")
            if lenient.trusted:
                sub = SubIndication.TRY_LATER
        revoked_before = (
            status.revocation_details is not None
            and ts_time is not None
            and status.revocation_details.revocation_date <= ts_time
        )
        if revoked_before:
            indication, sub = Indication.TOTAL_FAILED, SubIndication.REVOKED
        else:
            indication = Indication.INDETERMINATE
        messages.append(_trust_message(sub))
    if not is_ts and ts_status is not None and not ts_ok:
        if indication is Indication.TOTAL_PASSED:
            indication, sub = Indication.INDETERMINATE, SubIndication.TIMESTAMP_ORDER_FAILURE
        messages.append("the signature timestamp does not validate")

    level_mod = status.modification_level
    modifications = _MOD.get(level_mod, Modification.OTHER) if level_mod else Modification.OTHER
    permitted = _PERMITTED.get(level_mod, False) if level_mod else False
    if level_mod is ModificationLevel.FORM_FILLING:
        permitted = _form_filling_permitted(status, doc)
    if level_mod is None:
        messages.append("the changes after this signature could not be analysed")
    diff = status.diff_result
    if diff is not None and not hasattr(diff, "modification_level"):
        messages.append(f"suspicious change after signing: {str(diff)[:200]}")
    if emb.signed_revision < reader.xrefs.total_revisions - 1:
        try:
            widget_problems = widget_changes_after(reader, emb.signed_revision)
        except PARSE_ERRORS + (PdfReadError,) as exc:
            widget_problems = [
                f"the form fields changed after signing cannot be analysed ({type(exc).__name__})"
            ]
        if widget_problems:
            permitted = False
            modifications = Modification.OTHER
            messages.extend(widget_problems)

    return SignatureReport(
        field=str(name),
        indication=indication,
        subindication=sub,
        intact=bool(status.intact),
        trusted=bool(status.trusted),
        coverage=_COVERAGE.get(status.coverage, Coverage.PARTIAL),
        modifications=modifications,
        modifications_permitted=permitted,
        level=None if is_ts else _level(emb, status, dss, doc_ts_revisions),
        signer=_signer(cert),
        signing_time=None if is_ts else (emb.self_reported_timestamp or status.signer_reported_dt),
        timestamp_time=ts_time,
        kind=kind,
        messages=messages,
    )


def _level(emb, status, dss: DssData, doc_ts_revisions: list[int]) -> str | None:
    if emb.sig_object.get("/SubFilter") != _PADES:
        return None
    if status.timestamp_validity is None:
        return "B-B"
    if not dss.has_revocation_data:
        return "B-T"
    if any(rev > emb.signed_revision for rev in doc_ts_revisions):
        return "B-LTA"
    return "B-LT"


_TRUST_MESSAGES = {
    SubIndication.NO_CERTIFICATE_CHAIN_FOUND: "the signer's certificate does not chain to a trusted root",
    SubIndication.REVOKED_NO_POE: "the signer's certificate is revoked",
    SubIndication.REVOKED_CA_NO_POE: "a CA certificate in the chain is revoked",
    SubIndication.TRY_LATER: "no revocation information is available for the signer's certificate",
    SubIndication.OUT_OF_BOUNDS_NO_POE: "the signer's certificate is expired or not yet valid",
    SubIndication.OUT_OF_BOUNDS_NOT_REVOKED: "the signer's certificate is expired or not yet valid",
    SubIndication.EXPIRED: "the signer's certificate is expired",
    SubIndication.REVOKED: "the signer's certificate was revoked before the signing time",
}


def _trust_message(sub: SubIndication) -> str:
    return _TRUST_MESSAGES.get(sub, f"the signer's certificate cannot be trusted ({sub.value})")


async def verify_pdf(
    data: bytes | MappedPdf, ctx: VerifyContext, *, now: dt.datetime
) -> VerificationReport:
    """Verify every signature in ``data``. Raises NotAPdf/Encrypted/DamagedPdfError
    only when the file cannot be read as a PDF at all."""
    install_speedups()
    reader, notes = _open(data)
    document = DocumentInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        revisions=reader.xrefs.total_revisions,
    )
    try:
        fields = list(enumerate_sig_fields(reader, filled_status=True))
    except PARSE_ERRORS + (PdfReadError,) as exc:
        raise DamagedPdfError(f"the form fields cannot be read ({type(exc).__name__})") from None
    dss = DssData(reader)
    embedded: list[tuple[str, EmbeddedPdfSignature]] = []
    reports: list[SignatureReport] = []
    for name, value, field_ref in fields:
        if value is None:
            continue  # an empty signature field, not a signature
        try:
            sub_filter = value.get_object().get("/SubFilter")
            if sub_filter not in _KNOWN_SUBFILTERS:
                reports.append(
                    _failed(
                        name,
                        SubIndication.FORMAT_FAILURE,
                        f"unsupported signature type {sub_filter}",
                    )
                )
                continue
            embedded.append((name, EmbeddedPdfSignature(reader, field_ref, name)))
        except PARSE_ERRORS + (PdfReadError,) as exc:
            reports.append(
                _failed(
                    name,
                    SubIndication.FORMAT_FAILURE,
                    f"the signature is malformed ({type(exc).__name__}: {str(exc)[:120]})",
                )
            )
    doc = DocFacts(reader, {name for name, value, _ in fields if value is not None}, dss)
    for _, emb in embedded:
        try:
            if emb.sig_object_type == "/DocTimeStamp":
                doc.doc_ts_revisions.append(emb.signed_revision)
        except PARSE_ERRORS + (PdfReadError,):
            pass
    for name, emb in embedded:
        try:
            reports.append(await _verify_one(data, reader, emb, name, ctx, doc))
        except PARSE_ERRORS + (PdfReadError,) as exc:
            reports.append(
                _failed(
                    name,
                    SubIndication.FORMAT_FAILURE,
                    f"the signature cannot be processed ({type(exc).__name__}: {str(exc)[:120]})",
                )
            )
    doc_messages = []
    if trailing_garbage(data, reader):
        doc_messages.append(
            "bytes after the end of the document (after the last revision's %%EOF) are not "
            "covered by any signature"
        )
    if dss.problem:
        doc_messages.append(dss.problem)
        for r in reports:  # validation data was tampered with after these signatures
            r.modifications, r.modifications_permitted = Modification.OTHER, False
            r.messages.append(dss.problem)
    for r in reports:
        r.messages.extend(notes)
    report = VerificationReport(document, reports, doc_messages)
    return report
