"""Verification of signed PDFs: ETSI EN 319 102-1 indications, tamper checks, report."""

from .policy import (
    AlgorithmPolicy,
    RevocationPolicy,
    TrustStore,
    VerificationSpec,
    VerifyContext,
    development_verification_spec,
    restricted_session,
)
from .report import (
    Coverage,
    Indication,
    Modification,
    SignatureReport,
    SubIndication,
    VerificationReport,
)
from .verifier import verify_pdf

__all__ = [
    "AlgorithmPolicy",
    "Coverage",
    "Indication",
    "Modification",
    "RevocationPolicy",
    "SignatureReport",
    "SubIndication",
    "TrustStore",
    "VerificationReport",
    "VerificationSpec",
    "VerifyContext",
    "development_verification_spec",
    "restricted_session",
    "verify_pdf",
]
