"""The verification report: ETSI EN 319 102-1 indications per signature, integrity,
trust, coverage, modifications, level, signer, times, and a summary a clerk can read
in Vietnamese and English (Circular 15/2025: signer, signing time, integrity)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Coverage",
    "DocumentInfo",
    "Indication",
    "Modification",
    "SignatureReport",
    "SignerInfo",
    "SubIndication",
    "VerificationReport",
]

VIETNAM = dt.timezone(dt.timedelta(hours=7))


class Indication(enum.Enum):
    TOTAL_PASSED = "TOTAL_PASSED"
    INDETERMINATE = "INDETERMINATE"
    TOTAL_FAILED = "TOTAL_FAILED"


class SubIndication(enum.Enum):
    # TOTAL_FAILED
    FORMAT_FAILURE = "FORMAT_FAILURE"
    HASH_FAILURE = "HASH_FAILURE"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    REVOKED = "REVOKED"
    NOT_YET_VALID = "NOT_YET_VALID"
    # INDETERMINATE
    SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
    CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
    CERTIFICATE_CHAIN_GENERAL_FAILURE = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE_NO_POE = "CRYPTO_CONSTRAINTS_FAILURE_NO_POE"
    EXPIRED = "EXPIRED"
    NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
    NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
    REVOKED_NO_POE = "REVOKED_NO_POE"
    REVOKED_CA_NO_POE = "REVOKED_CA_NO_POE"
    OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
    OUT_OF_BOUNDS_NOT_REVOKED = "OUT_OF_BOUNDS_NOT_REVOKED"
    NO_POE = "NO_POE"
    TRY_LATER = "TRY_LATER"
    TIMESTAMP_ORDER_FAILURE = "TIMESTAMP_ORDER_FAILURE"
    GENERIC = "GENERIC"


class Coverage(enum.Enum):
    ENTIRE_FILE = "ENTIRE_FILE"
    ENTIRE_REVISION = "ENTIRE_REVISION"
    PARTIAL = "PARTIAL"


class Modification(enum.Enum):
    """What changed after the signed revision (in increasing order of concern)."""

    NONE = "NONE"
    LTA_UPDATES = "LTA_UPDATES"
    FORM_FILLING = "FORM_FILLING"
    ANNOTATIONS = "ANNOTATIONS"
    OTHER = "OTHER"


@dataclass(frozen=True)
class SignerInfo:
    common_name: str | None
    organization: str | None
    serial: str | None
    sha256: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "common_name": self.common_name,
            "organization": self.organization,
            "serial": self.serial,
            "sha256": self.sha256,
        }


def _iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(VIETNAM).isoformat(timespec="seconds") if t else None


@dataclass
class SignatureReport:
    field: str
    indication: Indication
    subindication: SubIndication | None
    intact: bool
    trusted: bool
    coverage: Coverage
    modifications: Modification
    modifications_permitted: bool
    level: str | None
    signer: SignerInfo | None
    signing_time: dt.datetime | None
    timestamp_time: dt.datetime | None
    kind: str = "signature"  # or "document_timestamp"
    messages: list[str] = field(default_factory=list)

    @property
    def acceptable(self) -> bool:
        return self.indication is Indication.TOTAL_PASSED and self.modifications_permitted

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "kind": self.kind,
            "indication": self.indication.value,
            "subindication": self.subindication.value if self.subindication else None,
            "intact": self.intact,
            "trusted": self.trusted,
            "coverage": self.coverage.value,
            "modifications": self.modifications.value,
            "level": self.level,
            "signer": self.signer.as_dict() if self.signer else None,
            "signing_time": _iso(self.signing_time),
            "timestamp_time": _iso(self.timestamp_time),
            "messages": list(self.messages),
        }


@dataclass(frozen=True)
class DocumentInfo:
    sha256: str
    size: int
    revisions: int


@dataclass
class VerificationReport:
    document: DocumentInfo
    signatures: list[SignatureReport]
    messages: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """API.md: at least one signature, every one TOTAL_PASSED, and everything after
        each signed revision an update that signature permits."""
        return (
            bool(self.signatures)
            and all(s.acceptable for s in self.signatures)
            and not self.messages
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "document": {
                "sha256": self.document.sha256,
                "size": self.document.size,
                "revisions": self.document.revisions,
            },
            "signatures": [s.as_dict() for s in self.signatures],
            "messages": list(self.messages),
            "summary": {"vi": self.summary_vi(), "en": self.summary_en()},
        }

    # -- summaries -------------------------------------------------------------------

    def summary_en(self) -> str:
        return self._summary(_EN)

    def summary_vi(self) -> str:
        return self._summary(_VI_TEXT)

    def _summary(self, t: dict) -> str:
        """Signer, time and integrity of each signature (Circular 15/2025), in ``t``'s
        language."""
        if not self.signatures:
            return t["none"]
        parts = [t["valid"] if self.valid else t["not_valid"]]
        for i, s in enumerate(self.signatures, 1):
            when = _iso(s.timestamp_time or s.signing_time) or t["unknown_time"]
            sub = f" ({s.subindication.value})" if s.subindication else ""
            if not s.intact:  # the signed bytes themselves differ: no "no change" claim
                change = t["altered"]
            elif s.modifications_permitted:
                change = t["unchanged"]
            else:
                change = t["changed"].format(s.modifications.value)
            parts.append(
                t["line"].format(
                    kind=t["timestamp" if s.kind == "document_timestamp" else "signature"],
                    n=i,
                    who=_who(s),
                    when=when,
                    verdict=t[s.indication.value] + sub,
                    integrity=t["intact" if s.intact else "not_intact"],
                    change=change,
                )
            )
        parts.extend(t["message"](m) for m in self.messages)
        return " ".join(parts)


_EN = {
    "none": "The document carries no signature.",
    "valid": "The document is validly signed and was not changed after signing.",
    "not_valid": "The document is NOT validly signed, or was changed after signing.",
    "unknown_time": "unknown time",
    "line": "{kind} {n} by {who} at {when}: {verdict}; {integrity}; {change}.",
    "signature": "Signature",
    "timestamp": "Document timestamp",
    "TOTAL_PASSED": "valid",
    "INDETERMINATE": "cannot be confirmed",
    "TOTAL_FAILED": "invalid",
    "intact": "intact",
    "not_intact": "NOT intact",
    "unchanged": "no disallowed change after it",
    "altered": "the signed content was altered",
    "changed": "changed after signing ({})",
    "message": lambda m: m,
}
_VI_TEXT = {
    "none": "Tài liệu không có chữ ký số.",
    "valid": "Tài liệu có chữ ký số hợp lệ và không bị thay đổi sau khi ký.",
    "not_valid": "Tài liệu KHÔNG có chữ ký số hợp lệ hoặc đã bị thay đổi sau khi ký.",
    "unknown_time": "không rõ thời gian",
    "line": "{kind} {n} của {who}, lúc {when}: {verdict}; {integrity}; {change}.",
    "signature": "Chữ ký",
    "timestamp": "Dấu thời gian tài liệu",
    "TOTAL_PASSED": "hợp lệ",
    "INDETERMINATE": "chưa xác định được",
    "TOTAL_FAILED": "không hợp lệ",
    "intact": "toàn vẹn",
    "not_intact": "KHÔNG toàn vẹn",
    "unchanged": "không có thay đổi trái phép sau khi ký",
    "altered": "nội dung đã ký bị sửa",
    "changed": "đã bị thay đổi sau khi ký ({})",
    "message": lambda m: _vi_message(m),
}


def _who(s: SignatureReport) -> str:
    if s.signer is None:
        return "?"
    name = s.signer.common_name or "?"
    if s.signer.organization and s.signer.organization != name:
        name = f"{name} ({s.signer.organization})"
    return name


_VI = {
    "bytes after the end of the document": "có dữ liệu được thêm vào sau phần cuối tài liệu",
}


def _vi_message(message: str) -> str:
    for en, vi in _VI.items():
        if en in message:
            return vi[0].upper() + vi[1:] + "."
    return message
