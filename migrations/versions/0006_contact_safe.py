"""cases: whether the person may be called or texted back (contact_safe)

Revision ID: 0006_contact_safe
Revises: 0005_partners
Create Date: 2026-12-02 07:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006_contact_safe'
down_revision: str | None = '0005_partners'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Cases stored before the field existed were never asked: "unknown" is the truth for them.
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('contact_safe', sa.String(length=8), nullable=False, server_default='unknown')
        )


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('contact_safe')
