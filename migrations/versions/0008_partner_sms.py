"""partner SMS and call backs: inbound texts (raw body, purged later) and calls back through Ali

Revision ID: 0008_partner_sms
Revises: 0009_partner_calls
Create Date: 2026-12-02 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.crypto
import core.db


revision: str = '0008_partner_sms'
down_revision: str | None = '0009_partner_calls'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inbound_texts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('sender', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('body', core.crypto.EncryptedText(), nullable=True),
    sa.Column('received_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('replied', sa.Boolean(), nullable=False),
    sa.Column('purged_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_inbound_texts_case_id_cases')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_inbound_texts_partner_id_partners'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_texts'))
    )
    with op.batch_alter_table('inbound_texts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_texts_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_texts_received_at'), ['received_at'], unique=False)
        batch_op.create_index('ix_inbound_texts_sender_received_at', ['sender', 'received_at'], unique=False)

    op.create_table('case_callbacks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('contact_safe', sa.String(length=8), nullable=False),
    sa.Column('confirmed', sa.Boolean(), nullable=False),
    sa.Column('call_sid', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('duration_seconds', sa.Integer(), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_callbacks_case_id_cases')),
    sa.ForeignKeyConstraint(['operator_id'], ['users.id'], name=op.f('fk_case_callbacks_operator_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_callbacks')),
    sa.UniqueConstraint('call_sid', name=op.f('uq_case_callbacks_call_sid'))
    )
    with op.batch_alter_table('case_callbacks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_callbacks_case_id'), ['case_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_callbacks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_callbacks_case_id'))
    op.drop_table('case_callbacks')
    with op.batch_alter_table('inbound_texts', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_texts_sender_received_at')
        batch_op.drop_index(batch_op.f('ix_inbound_texts_received_at'))
        batch_op.drop_index(batch_op.f('ix_inbound_texts_case_id'))
    op.drop_table('inbound_texts')
