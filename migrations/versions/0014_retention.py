"""retention: cases remember when they were pseudonymised; a tombstoned hand-off has no payload

Revision ID: 0014_retention
Revises: 0013_admin
Create Date: 2026-12-02 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.crypto
import core.db


revision: str = '0014_retention'
down_revision: str | None = '0013_admin'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('pseudonymised_at', core.db.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.alter_column(
            'payload', existing_type=core.crypto.EncryptedText(), nullable=True
        )


def downgrade() -> None:
    # A tombstone has no payload to give back; an empty marker satisfies NOT NULL again.
    op.execute("UPDATE handoffs SET payload = '' WHERE payload IS NULL")
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.alter_column(
            'payload', existing_type=core.crypto.EncryptedText(), nullable=False
        )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('pseudonymised_at')
