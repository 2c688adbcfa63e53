"""shelters: the structures, and the append-only pronta accoglienza placement log

Revision ID: 0015_shelters
Revises: 0014_retention
Create Date: 2026-12-02 08:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.crypto
import core.db


revision: str = '0015_shelters'
down_revision: str | None = '0014_retention'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The placement log is append-only in the database, as the audit log is (0013_admin): a
# correction is a new entry. Row-level triggers; TRUNCATE (tests) does not fire them.
APPEND_ONLY = ('placements', 'placement_entries')
PG_FUNCTION = """
CREATE FUNCTION placement_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql
"""
PG_TRIGGER = """
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
FOR EACH ROW EXECUTE FUNCTION placement_log_append_only()
"""
SQLITE_TRIGGERS = """CREATE TRIGGER {table}_no_{op} BEFORE {OP} ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only: {OP} refused'); END"""


def upgrade() -> None:
    op.create_table('shelters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('province', sa.String(length=2), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('target_groups', sa.JSON(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('address', core.crypto.EncryptedText(), nullable=True),
    sa.Column('open', sa.Boolean(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shelters')),
    sa.UniqueConstraint('code', name=op.f('uq_shelters_code'))
    )
    with op.batch_alter_table('shelters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shelters_province'), ['province'], unique=False)
    op.create_table('placements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('shelter_id', sa.Integer(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_placements_case_id_cases')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_placements_created_by_id_users')),
    sa.ForeignKeyConstraint(['shelter_id'], ['shelters.id'], name=op.f('fk_placements_shelter_id_shelters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_placements'))
    )
    with op.batch_alter_table('placements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_placements_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_placements_shelter_id'), ['shelter_id'], unique=False)
    op.create_table('placement_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('placement_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('beds', sa.Integer(), nullable=True),
    sa.Column('planned_end_on', sa.Date(), nullable=True),
    sa.Column('exit_reason', sa.String(length=32), nullable=True),
    sa.Column('override', sa.String(length=16), nullable=True),
    sa.Column('corrects_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_placement_entries_actor_id_users')),
    sa.ForeignKeyConstraint(['corrects_id'], ['placement_entries.id'], name=op.f('fk_placement_entries_corrects_id_placement_entries')),
    sa.ForeignKeyConstraint(['placement_id'], ['placements.id'], name=op.f('fk_placement_entries_placement_id_placements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_placement_entries'))
    )
    with op.batch_alter_table('placement_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_placement_entries_placement_id'), ['placement_id'], unique=False)
    op.create_table('placement_reasons',
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('text', core.crypto.EncryptedText(), nullable=True),
    sa.ForeignKeyConstraint(['entry_id'], ['placement_entries.id'], name=op.f('fk_placement_reasons_entry_id_placement_entries')),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_placement_reasons'))
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(PG_FUNCTION)
        for table in APPEND_ONLY:
            op.execute(PG_TRIGGER.format(table=table))
    else:
        for table in APPEND_ONLY:
            for verb in ('update', 'delete'):
                op.execute(SQLITE_TRIGGERS.format(table=table, op=verb, OP=verb.upper()))


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in APPEND_ONLY:
            op.execute(f'DROP TRIGGER {table}_append_only ON {table}')
        op.execute('DROP FUNCTION placement_log_append_only()')
    else:
        for table in APPEND_ONLY:
            for verb in ('update', 'delete'):
                op.execute(f'DROP TRIGGER {table}_no_{verb}')
    op.drop_table('placement_reasons')
    with op.batch_alter_table('placement_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_placement_entries_placement_id'))
    op.drop_table('placement_entries')
    with op.batch_alter_table('placements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_placements_shelter_id'))
        batch_op.drop_index(batch_op.f('ix_placements_case_id'))
    op.drop_table('placements')
    with op.batch_alter_table('shelters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shelters_province'))
    op.drop_table('shelters')
