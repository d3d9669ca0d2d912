"""Signing one PDF at a PAdES baseline level: the whole signing path, with no I/O of
its own beyond the injected timestamper and validation-data fetchers.

Performance (NOTES 3): keys are parsed once (``CachedKeySigner``), and the signature
container size is computed from the certificates instead of by pyHanko's dry-run
signature, so each document is signed once.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers.pdf_signer import (
    DSSContentSettings,
    PdfSignatureMetadata,
    PdfSigner,
    SigDSSPlacementPreference,
    TimestampDSSContentSettings,
)
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

from .document import PARSE_ERRORS, OpenedPdf, open_pdf, page_box
from .errors import (
    CertificateProblemError,
    DamagedPdfError,
    DocumentNotSignableError,
    SigningError,
    TsaUnavailableError,
    UnknownAgencyError,
)
from .keys.base import KeyProvider
from .mapped import MappedPdf, file_sha256
from .options import Appearance, Level, SignOptions
from .speedups import install as install_speedups
from .stamp import StampContent, build_stamp_style, default_box

__all__ = ["AgencyKey", "SignResult", "SigningContext", "TsaFailurePolicy", "sign_pdf"]

VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")
_DIGEST = "sha256"
_CMS_OVERHEAD = 3_000  # signed attributes, signer info, algorithm identifiers (DER bytes)


class TsaFailurePolicy(enum.Enum):
    FAIL = "fail"  # answer 503 tsa_unavailable
    DOWNGRADE = "downgrade"  # sign at B-B and say so in DocGate-Level


@dataclass(frozen=True)
class AgencyKey:
    code: str
    name: str
    provider: KeyProvider
    seal_png: bytes | None = None


@dataclass
class SigningContext:
    """What a worker holds for the whole of its life."""

    keys: Mapping[str, AgencyKey]
    timestamper: TimeStamper | None
    validation_context: Callable[[], ValidationContext]
    tsa_failure: TsaFailurePolicy = TsaFailurePolicy.FAIL
    font_path: str | None = None

    def agency(self, code: str) -> AgencyKey:
        try:
            return self.keys[code]
        except KeyError:
            raise UnknownAgencyError(
                f"no signing key is configured for agency {code}", agency=code
            ) from None


@dataclass(frozen=True)
class SignResult:
    pdf: bytes  # empty when the caller gave an output stream (the document is there)
    level: Level
    field_name: str
    signing_time: dt.datetime
    input_sha256: str
    output_sha256: str
    appearance: Appearance
    output_size: int = 0


class _ClockedPdfSigner(PdfSigner):
    """A PdfSigner whose signing time is a parameter (the stamp shows the same instant
    as the CMS signingTime attribute)."""

    def __init__(self, *args, now: dt.datetime, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._now = now

    def init_signing_session(self, pdf_out, existing_fields_only=False):
        session = super().init_signing_session(pdf_out, existing_fields_only)
        session.system_time = self._now
        return session


# No VRI (deprecated in PAdES), so the validation data can go into the signature's own
# revision: a B-LT file is then one revision its signature covers entirely (pdfsig:
# "Total document signed"), and a B-LTA file adds just the document timestamp after it.
_DSS_SETTINGS = DSSContentSettings(
    include_vri=False,
    placement=SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE,
    next_ts_settings=TimestampDSSContentSettings(include_vri=False),
)


async def _reserve(provider: KeyProvider, level: Level, ctx: SigningContext) -> int:
    """Bytes (hex digits) to reserve for the signature container: certificates plus
    the CMS structure plus, with a timestamp, the size of a token from this TSA."""
    certs = len(provider.certificate.dump()) + sum(len(c.dump()) for c in provider.chain)
    size = certs + _CMS_OVERHEAD
    if level.needs_timestamp and ctx.timestamper is not None:
        token = await ctx.timestamper.async_dummy_response(_DIGEST)  # cached per worker
        size += len(token.dump()) + 1_024
    return 2 * size


async def _supply_timestamp_validation_data(
    writer, timestamper: TimeStamper, vc: ValidationContext
) -> None:
    """Put the TSA chain and its revocation data into the DSS before signing, so the
    signature's own revision carries everything B-LT needs (ETSI EN 319 142-1 5.4)."""
    paths = [path async for path in timestamper.validation_paths(vc)]
    DocumentSecurityStore.supply_dss_in_writer(writer, None, paths=paths, validation_context=vc)


async def sign_pdf(
    data: bytes | MappedPdf,
    options: SignOptions,
    ctx: SigningContext,
    *,
    now: dt.datetime,
    output: BinaryIO | None = None,
) -> SignResult:
    """Sign ``data`` as ``options`` ask; raise a SigningError subclass on failure.

    With ``output`` (a seekable, readable binary file) the signed document is written
    there and ``SignResult.pdf`` is empty: a large document is never held in memory."""
    install_speedups()
    agency = ctx.agency(options.agency)
    level = options.level
    if level.needs_timestamp and ctx.timestamper is None:
        if ctx.tsa_failure is TsaFailurePolicy.DOWNGRADE:
            level = Level.B_B
        else:
            raise TsaUnavailableError("no timestamp authority is configured")
    try:
        return await _sign_at(data, options, level, agency, ctx, now, output)
    except TsaUnavailableError:
        if ctx.tsa_failure is not TsaFailurePolicy.DOWNGRADE or level is Level.B_B:
            raise
        return await _sign_at(data, options, Level.B_B, agency, ctx, now, output)


async def _sign_at(
    data: bytes | MappedPdf,
    options: SignOptions,
    level: Level,
    agency: AgencyKey,
    ctx: SigningContext,
    now: dt.datetime,
    output: BinaryIO | None,
) -> SignResult:
    reserve = await _reserve(agency.provider, level, ctx)
    for _attempt in range(3):
        opened = open_pdf(data)
        out = output if output is not None else io.BytesIO()
        out.seek(0)
        out.truncate()
        try:
            appearance = await _sign_once(opened, options, level, agency, ctx, now, reserve, out)
        except _ReserveTooSmall as exc:
            reserve = exc.needed + 4_096
            continue
        if output is None:
            pdf = out.getvalue()
            out_sha256, out_size = hashlib.sha256(pdf).hexdigest(), len(pdf)
        else:
            pdf = b""
            out_sha256, out_size = file_sha256(output)
        return SignResult(
            pdf,
            level,
            opened.next_field_name(),
            now,
            hashlib.sha256(data).hexdigest(),
            out_sha256,
            appearance,
            out_size,
        )
    raise SigningError("the signature container did not fit its reservation")  # pragma: no cover


class _ReserveTooSmall(Exception):
    def __init__(self, needed: int) -> None:
        self.needed = needed


# The smallest page on which the default (agency) stamp is drawn when the caller did
# not ask for an appearance: below this a stamp could not be read, so the signature is
# invisible and the answer says so (DocGate-Appearance: none).
_MIN_PAGE_FOR_DEFAULT_STAMP = (200.0, 150.0)


def _choose_appearance(
    opened: OpenedPdf, options: SignOptions
) -> tuple[Appearance, int | None, tuple[float, float, float, float] | None]:
    """The appearance actually drawn, the 0-based page and the page's box."""
    appearance = options.appearance or Appearance.AGENCY
    if appearance is Appearance.NONE:
        return appearance, None, None
    default_page = -1 if appearance is Appearance.AGENCY else 1
    index = opened.resolve_page(options.page if options.page is not None else default_page)
    pbox = page_box(opened, index)
    min_w, min_h = _MIN_PAGE_FOR_DEFAULT_STAMP
    too_small = pbox[2] - pbox[0] < min_w or pbox[3] - pbox[1] < min_h
    if options.appearance is None and options.box is None and too_small:
        return Appearance.NONE, None, None
    return appearance, index, pbox


def _visible_setup(
    opened: OpenedPdf,
    options: SignOptions,
    agency: AgencyKey,
    ctx: SigningContext,
    now: dt.datetime,
):
    field_name = opened.next_field_name()
    appearance, index, pbox = _choose_appearance(opened, options)
    if appearance is Appearance.NONE or index is None or pbox is None:
        return fields.SigFieldSpec(field_name), None, Appearance.NONE
    box = options.box or default_box(appearance.value, pbox)
    content = StampContent(
        kind=appearance.value,
        agency_name=agency.name,
        signing_time=now,
        seal_png=agency.seal_png if appearance is Appearance.AGENCY else None,
        copy_form=options.copy_form.value if options.copy_form else None,
        number=options.number,
    )
    spec = fields.SigFieldSpec(field_name, on_page=index, box=tuple(int(round(v)) for v in box))
    return spec, build_stamp_style(content, ctx.font_path), appearance


async def _sign_once(
    opened: OpenedPdf,
    options: SignOptions,
    level: Level,
    agency: AgencyKey,
    ctx: SigningContext,
    now: dt.datetime,
    reserve: int,
    output: BinaryIO,
) -> Appearance:
    field_spec, style, appearance = _visible_setup(opened, options, agency, ctx, now)
    vc = ctx.validation_context() if level.needs_revocation else None
    try:
        if vc is not None and ctx.timestamper is not None:
            await _supply_timestamp_validation_data(opened.writer, ctx.timestamper, vc)
        meta = PdfSignatureMetadata(
            field_name=field_spec.sig_field_name,
            md_algorithm=_DIGEST,
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=options.reason,
            location=options.location,
            embed_validation_info=level.needs_revocation,
            use_pades_lta=level is Level.B_LTA,
            validation_context=vc,
            dss_settings=_DSS_SETTINGS,
        )
        signer = _ClockedPdfSigner(
            meta,
            signer=agency.provider.signer(),
            timestamper=ctx.timestamper if level.needs_timestamp else None,
            stamp_style=style,
            new_field_spec=field_spec,
            now=now,
        )
        await signer.async_sign_pdf(opened.writer, bytes_reserved=reserve, output=output)
    except SigningError:
        raise
    except (PathBuildingError, PathValidationError) as exc:
        raise CertificateProblemError(
            f"the certificate of agency {agency.code} does not validate: {exc}"
        ) from None
    except PyHankoSigningError as exc:  # before PARSE_ERRORS: it is a ValueError
        message = str(exc)
        if "larger than expected" in message:
            needed = int(message.rsplit("required", 1)[1].split()[0])
            raise _ReserveTooSmall(needed) from None
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, (PathBuildingError, PathValidationError)):
            raise CertificateProblemError(
                f"the certificate of agency {agency.code} does not validate: {cause}"
            ) from None
        # the rest are refusals about the document: hybrid xrefs, certification locks...
        raise DocumentNotSignableError(f"the document cannot be signed: {message[:200]}") from None
    except PdfError as exc:
        # pyHanko's own errors for structures it could not read while signing
        raise DamagedPdfError(f"the PDF is damaged: {str(exc)[:200]}") from None
    except PARSE_ERRORS as exc:
        # pyHanko reads objects lazily: damage can surface only now, as a low-level error
        raise DamagedPdfError(
            f"the PDF is damaged ({type(exc).__name__}: {str(exc)[:160]})"
        ) from None
    return appearance
