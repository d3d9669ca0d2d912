"""indexes for lookups by foreign key

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 05:31:01.999717
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_audit_checkpoints_seq", ["seq"])

    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_attempts_outbox", ["outbox_id"], unique=False)

    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_exchanges_sender_document", ["sender_code", "document_sha256"], unique=False
        )

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_exchange", ["exchange_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_exchange")

    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_index("ix_exchanges_sender_document")

    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_attempts_outbox")

    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_checkpoints_seq", type_="unique")
