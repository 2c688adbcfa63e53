"""partner_calls: the log of calls to the partner line, with their recordings

Revision ID: 0009_partner_calls
Revises: 0006_contact_safe
Create Date: 2026-12-02 07:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.crypto
import core.db


revision: str = '0009_partner_calls'
down_revision: str | None = '0006_contact_safe'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('partner_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_sid', sa.String(length=40), nullable=False),
    sa.Column('started_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('caller_phone', core.crypto.EncryptedText(), nullable=True),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('province', sa.String(length=2), nullable=True),
    sa.Column('province_source', sa.String(length=20), nullable=True),
    sa.Column('menu_attempts', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('chain', sa.JSON(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('connected_to_id', sa.Integer(), nullable=True),
    sa.Column('connected_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('duration_seconds', sa.Integer(), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('recording_sid', sa.String(length=40), nullable=True),
    sa.Column('recording_url', sa.String(length=300), nullable=True),
    sa.Column('recording_seconds', sa.Integer(), nullable=True),
    sa.Column('recording_deleted_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_partner_calls_case_id_cases')),
    sa.ForeignKeyConstraint(['connected_to_id'], ['users.id'], name=op.f('fk_partner_calls_connected_to_id_users')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_partner_calls_partner_id_partners'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_calls')),
    sa.UniqueConstraint('call_sid', name=op.f('uq_partner_calls_call_sid')),
    sa.UniqueConstraint('recording_sid', name=op.f('uq_partner_calls_recording_sid'))
    )
    with op.batch_alter_table('partner_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_calls_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_partner_calls_recording_deleted_at', ['recording_deleted_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('partner_calls', schema=None) as batch_op:
        batch_op.drop_index('ix_partner_calls_recording_deleted_at')
        batch_op.drop_index(batch_op.f('ix_partner_calls_case_id'))

    op.drop_table('partner_calls')
