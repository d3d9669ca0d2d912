"""submitted document hash for duplicate detection

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 05:56:02.740762
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("input_sha256", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_exchanges_sender_input", ["sender_code", "input_sha256"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_index("ix_exchanges_sender_input")
        batch_op.drop_column("input_sha256")
