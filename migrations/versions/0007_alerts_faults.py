"""alerts under strain: SMS opt-outs (STOP), the hourly page cap and its bundles

Revision ID: 0007_alerts_faults
Revises: 0010_workspace
Create Date: 2026-12-02 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db


revision: str = '0007_alerts_faults'
down_revision: str | None = '0010_workspace'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sms_opted_out_at', core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('page_cap_since', core.db.UTCDateTime(timezone=True), nullable=True))

    op.create_table(
        'page_bundles',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('operator_id', sa.Integer(), nullable=False),
        sa.Column('to', sa.String(length=20), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('due_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('provider_sid', sa.String(length=40), nullable=True),
        sa.Column('error_code', sa.Integer(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('retry_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('sent_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['operator_id'], ['users.id'], name=op.f('fk_page_bundles_operator_id_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_page_bundles')),
        sa.UniqueConstraint('provider_sid', name=op.f('uq_page_bundles_provider_sid')),
    )
    with op.batch_alter_table('page_bundles', schema=None) as batch_op:
        batch_op.create_index('ix_page_bundles_status_due_at', ['status', 'due_at'], unique=False)
        batch_op.create_index(
            batch_op.f('ix_page_bundles_operator_id'), ['operator_id'], unique=False
        )

    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bundle_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_pages_bundle_id'), ['bundle_id'], unique=False)
        batch_op.create_index(
            'ix_pages_operator_id_sent_at', ['operator_id', 'sent_at'], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_pages_bundle_id_page_bundles'), 'page_bundles', ['bundle_id'], ['id']
        )


def downgrade() -> None:
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_pages_bundle_id_page_bundles'), type_='foreignkey')
        batch_op.drop_index('ix_pages_operator_id_sent_at')
        batch_op.drop_index(batch_op.f('ix_pages_bundle_id'))
        batch_op.drop_column('bundle_id')

    with op.batch_alter_table('page_bundles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_page_bundles_operator_id'))
        batch_op.drop_index('ix_page_bundles_status_due_at')
    op.drop_table('page_bundles')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('page_cap_since')
        batch_op.drop_column('sms_opted_out_at')
