"""The archive's tables (SQLAlchemy 2, typed). Statuses, roles and audit tags are enums
whose ``.value`` is stored. Relationships are ``lazy="raise_on_sql"``: every load is
explicit."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Agency",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditEvent",
    "Base",
    "BlobRecord",
    "Channel",
    "DeliveryAttempt",
    "Direction",
    "Exchange",
    "IdempotencyRecord",
    "OutboxMessage",
    "OutboxState",
    "Recipient",
    "ReportRevision",
    "Role",
    "ScheduledRun",
    "SchedulerJob",
    "StatusEvent",
    "Token",
]


class Base(DeclarativeBase):
    pass


def _uuid() -> str:
    return str(uuid.uuid4())


UTC_DATETIME = DateTime(timezone=True)


class Role(enum.Enum):
    AGENCY = "agency"
    ADMIN = "admin"
    AUDITOR = "auditor"


class Channel(enum.Enum):
    ELECTRONIC = "electronic"
    PAPER = "paper"


class Direction(enum.Enum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"


class OutboxState(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the last retry


class AuditEvent(enum.Enum):
    SIGNED = "signed"
    SENT = "sent"
    RECEIVED = "received"
    REGISTERED = "registered"  # a paper document
    STATUS_CHANGED = "status_changed"
    DOWNLOADED = "downloaded"
    AGENCY_ADDED = "agency_added"
    TOKEN_ISSUED = "token_issued"
    TOKEN_REVOKED = "token_revoked"
    WEBHOOK_CHANGED = "webhook_changed"  # an agency's webhook set, rotated or removed
    REPORT_RUN = "report_run"
    CHECKPOINT = "checkpoint"


class Agency(Base):
    __tablename__ = "agencies"

    code: Mapped[str] = mapped_column(String(13), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"), default=None)
    webhook_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    webhook_secret: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_uuid)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    agency_code: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"), default=None)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTC_DATETIME, default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTC_DATETIME, default=None)


class BlobRecord(Base):
    """A document's bytes, stored outside the database by SHA-256 (see blobs.py)."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)


class Exchange(Base):
    __tablename__ = "exchanges"
    __table_args__ = (
        Index("ix_exchanges_sender_created", "sender_code", "created_at"),
        Index("ix_exchanges_exchanged_at", "exchanged_at"),
        Index("ix_exchanges_sender_document", "sender_code", "document_sha256"),
        Index("ix_exchanges_sender_input", "sender_code", "input_sha256"),
        Index("ix_exchanges_due_date", "due_date"),  # the monthly report's on-time rate
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_uuid)
    sender_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16))
    doc_number: Mapped[str | None] = mapped_column(String(50), default=None)
    doc_notation: Mapped[str | None] = mapped_column(String(100), default=None)
    doc_type: Mapped[str | None] = mapped_column(String(50), default=None)
    subject: Mapped[str] = mapped_column(String(500))
    promulgated_at: Mapped[dt.date | None] = mapped_column(Date, default=None)
    due_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    secret: Mapped[bool] = mapped_column(Boolean, default=False)
    document_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"), default=None)
    # the document as submitted (before the gateway signed it): duplicates are found by it
    input_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    signed_by_gateway: Mapped[bool] = mapped_column(Boolean, default=False)
    level: Mapped[str | None] = mapped_column(String(8), default=None)
    signature_valid: Mapped[bool | None] = mapped_column(Boolean, default=None)
    verification_json: Mapped[str | None] = mapped_column(Text, default=None)
    envelope_json: Mapped[str] = mapped_column(Text)
    duplicate_of: Mapped[str | None] = mapped_column(String(36), default=None)
    exchanged_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)
    created_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)

    recipients: Mapped[list[Recipient]] = relationship(
        back_populates="exchange", lazy="raise_on_sql", order_by="Recipient.agency_code"
    )


class Recipient(Base):
    __tablename__ = "recipients"
    __table_args__ = (
        UniqueConstraint("exchange_id", "agency_code"),
        Index("ix_recipients_agency_status", "agency_code", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exchange_id: Mapped[str] = mapped_column(ForeignKey("exchanges.id"))
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    status: Mapped[str | None] = mapped_column(String(2), default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)

    exchange: Mapped[Exchange] = relationship(back_populates="recipients", lazy="raise_on_sql")


class StatusEvent(Base):
    __tablename__ = "status_events"
    __table_args__ = (Index("ix_status_events_exchange", "exchange_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exchange_id: Mapped[str] = mapped_column(ForeignKey("exchanges.id"))
    recipient_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    code: Mapped[str] = mapped_column(String(2))
    note: Mapped[str | None] = mapped_column(String(2000), default=None)
    actor_code: Mapped[str | None] = mapped_column(String(13), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)


class AuditEntry(Base):
    """One link of the hash chain: ``hash = SHA-256(prev_hash || canonical entry)``."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)
    event: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(200))
    payload_json: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditCheckpoint(Base):
    """The chain head at ``seq``, timestamped by the TSA (RFC 3161 token, DER)."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (UniqueConstraint("seq", name="uq_audit_checkpoints_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    timestamp_token: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_state_next", "state", "next_attempt_at"),
        Index("ix_outbox_exchange", "exchange_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exchange_id: Mapped[str] = mapped_column(ForeignKey("exchanges.id"))
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    url: Mapped[str] = mapped_column(String(2000))
    payload_json: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=OutboxState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTC_DATETIME, default=None)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_outbox", "outbox_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))
    at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)
    http_status: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency"

    principal: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    response_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)


class ReportRevision(Base):
    """One computed revision of a month's electronic-exchange report (exchange/reports.py):
    revisions are only added, so what was published stays readable."""

    __tablename__ = "report_revisions"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    revision: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generated_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)
    target: Mapped[float] = mapped_column(Float)
    provisional: Mapped[bool] = mapped_column(Boolean)
    data_json: Mapped[str] = mapped_column(Text)


class ScheduledRun(Base):
    """The scheduled run of a closed month's report (exchange/schedule.py): inserted
    before the run, so its primary key lets one gateway process, once, run the month."""

    __tablename__ = "scheduled_runs"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    started_at: Mapped[dt.datetime] = mapped_column(UTC_DATETIME)
    instance: Mapped[str] = mapped_column(String(200))  # host:pid of the process that ran it
    revision: Mapped[int | None] = mapped_column(Integer)  # set when the run finished


class SchedulerJob(Base):
    """APScheduler's SQLAlchemy job store (exchange/schedule.py), declared here so the
    migrations create it; the columns are the ones APScheduler 3 defines."""

    __tablename__ = "scheduler_jobs"

    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)
