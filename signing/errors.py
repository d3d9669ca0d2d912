"""Exceptions raised by the signing package.

Every error a caller can cause carries a stable ``code`` (the problem+json ``code``
the gateway answers with) and a human ``detail``; the gateway maps them to HTTP in
one place. Nothing here knows about HTTP beyond the suggested status.
"""

from __future__ import annotations

__all__ = [
    "SigningError",
    "NotAPdfError",
    "EncryptedPdfError",
    "DamagedPdfError",
    "DocumentNotSignableError",
    "InvalidOptionsError",
    "UnknownAgencyError",
    "KeyUnavailableError",
    "TsaUnavailableError",
    "RevocationUnavailableError",
    "ConfigurationError",
    "CertificateProblemError",
]


class SigningError(Exception):
    """Base of every error of the signing package."""

    code = "signing_failed"
    status = 422
    title = "Signing failed"

    def __init__(self, detail: str, **fields: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields

    def __reduce__(self):  # keep fields across process boundaries
        return (_rebuild, (type(self), self.detail, self.fields))


def _rebuild(cls: type[SigningError], detail: str, fields: dict) -> SigningError:
    return cls(detail, **fields)


class NotAPdfError(SigningError):
    code = "not_a_pdf"
    title = "Not a PDF document"


class EncryptedPdfError(SigningError):
    code = "encrypted_pdf"
    title = "Encrypted PDF"


class DamagedPdfError(SigningError):
    code = "damaged_pdf"
    title = "Damaged PDF"


class DocumentNotSignableError(SigningError):
    code = "document_not_signable"
    title = "The document cannot be signed"


class InvalidOptionsError(SigningError):
    code = "invalid_options"
    title = "Invalid signing options"


class UnknownAgencyError(SigningError):
    code = "unknown_agency"
    status = 404
    title = "Unknown agency"


class KeyUnavailableError(SigningError):
    code = "key_unavailable"
    status = 503
    title = "Signing key unavailable"


class TsaUnavailableError(SigningError):
    code = "tsa_unavailable"
    status = 503
    title = "Timestamp authority unavailable"


class RevocationUnavailableError(SigningError):
    code = "revocation_unavailable"
    status = 503
    title = "Revocation information unavailable"


class ConfigurationError(SigningError):
    code = "configuration_error"
    status = 500
    title = "Configuration error"


class CertificateProblemError(SigningError):
    code = "certificate_invalid"
    status = 503
    title = "The signing certificate cannot be validated"
