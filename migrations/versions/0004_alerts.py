"""alerts: escalation policies, dispatches, pages

Revision ID: 0004_alerts
Revises: 0003_intake
Create Date: 2026-12-02 05:16:04.422040
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import core.db


revision: str = '0004_alerts'
down_revision: str | None = '0003_intake'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BOTH = ['sms', 'voice']
# A copy, not an import: a migration must keep meaning what it meant when it was written.
DEFAULT_POLICIES = {
    'emergency': {
        'steps': [
            {'targets': ['primary'], 'channels': _BOTH, 'wait_minutes': 3},
            {'targets': ['primary', 'backup'], 'channels': _BOTH, 'wait_minutes': 3},
            {'targets': ['coordinators'], 'channels': _BOTH, 'wait_minutes': 5},
        ],
        'repeat_last': 3,
    },
    'urgent': {
        'steps': [
            {'targets': ['primary'], 'channels': _BOTH, 'wait_minutes': 5},
            {'targets': ['primary', 'backup'], 'channels': _BOTH, 'wait_minutes': 5},
            {'targets': ['coordinators'], 'channels': _BOTH, 'wait_minutes': 10},
        ],
        'repeat_last': 3,
    },
    'ordinary': {
        'steps': [
            {'targets': ['primary'], 'channels': ['sms'], 'wait_minutes': 15},
            {'targets': ['primary'], 'channels': ['voice'], 'wait_minutes': 15},
            {'targets': ['backup'], 'channels': _BOTH, 'wait_minutes': 15},
            {'targets': ['coordinators'], 'channels': _BOTH, 'wait_minutes': 30},
        ],
        'repeat_last': 2,
    },
}


def upgrade() -> None:
    op.create_table('escalation_policies',
    sa.Column('urgency', sa.String(length=12), nullable=False),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('repeat_last', sa.Integer(), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_escalation_policies_updated_by_id_users')),
    sa.PrimaryKeyConstraint('urgency', name=op.f('pk_escalation_policies'))
    )
    op.create_table('dispatches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('province', sa.String(length=2), nullable=True),
    sa.Column('urgency', sa.String(length=12), nullable=False),
    sa.Column('policy', sa.JSON(), nullable=False),
    sa.Column('steps_fired', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('due_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_by_id', sa.Integer(), nullable=True),
    sa.Column('accepted_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('exhausted_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['accepted_by_id'], ['users.id'], name=op.f('fk_dispatches_accepted_by_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_dispatches_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispatches')),
    sa.UniqueConstraint('case_id', name=op.f('uq_dispatches_case_id'))
    )
    with op.batch_alter_table('dispatches', schema=None) as batch_op:
        batch_op.create_index('ix_dispatches_state_due_at', ['state', 'due_at'], unique=False)

    op.create_table('pages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dispatch_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=12), nullable=False),
    sa.Column('tier', sa.String(length=12), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('to', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('provider_sid', sa.String(length=40), nullable=True),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('answered_by', sa.String(length=30), nullable=True),
    sa.Column('outcome', sa.String(length=12), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('retry_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['dispatch_id'], ['dispatches.id'], name=op.f('fk_pages_dispatch_id_dispatches')),
    sa.ForeignKeyConstraint(['operator_id'], ['users.id'], name=op.f('fk_pages_operator_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pages')),
    sa.UniqueConstraint('dispatch_id', 'step', 'operator_id', 'channel', 'purpose', name=op.f('uq_pages_dispatch_id_step_operator_id_channel_purpose')),
    sa.UniqueConstraint('provider_sid', name=op.f('uq_pages_provider_sid'))
    )
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pages_dispatch_id'), ['dispatch_id'], unique=False)
        batch_op.create_index('ix_pages_status', ['status'], unique=False)
        batch_op.create_index('ix_pages_to_created_at', ['to', 'created_at'], unique=False)

    # The defaults of design §5, stored so that admins can edit them.
    policies = sa.table(
        'escalation_policies',
        sa.column('urgency', sa.String),
        sa.column('steps', sa.JSON),
        sa.column('repeat_last', sa.Integer),
        sa.column('updated_at', core.db.UTCDateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        policies,
        [
            {'urgency': urgency, 'steps': policy['steps'], 'repeat_last': policy['repeat_last'],
             'updated_at': now}
            for urgency, policy in DEFAULT_POLICIES.items()
        ],
    )


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.drop_index('ix_pages_to_created_at')
        batch_op.drop_index('ix_pages_status')
        batch_op.drop_index(batch_op.f('ix_pages_dispatch_id'))

    op.drop_table('pages')
    with op.batch_alter_table('dispatches', schema=None) as batch_op:
        batch_op.drop_index('ix_dispatches_state_due_at')

    op.drop_table('dispatches')
    op.drop_table('escalation_policies')
    # ### end Alembic commands ###
