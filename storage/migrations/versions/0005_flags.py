"""flags: the kill switch per pilot (flag_* columns), flag_generation (the flip counter) and flag_read (read evidence)

Revision ID: 0005_flags
Revises: 0002_outbox_backoff
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.models


revision = '0005_flags'
down_revision = '0004_eval_cases'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pilot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flag_on', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('flag_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('flag_changed_at', storage.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('flag_changed_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('flag_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
    generation = op.create_table(
        'flag_generation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(generation, [{'id': 1, 'generation': 0}])
    op.create_table(
        'flag_read',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('pilot_id', sa.Integer(), nullable=True),
        sa.Column('read_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['pilot_id'], ['pilot.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_name', 'pilot_id', name='uq_flag_read_token_pilot'),
    )
    with op.batch_alter_table('flag_read', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flag_read_pilot_id'), ['pilot_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('flag_read', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flag_read_pilot_id'))
    op.drop_table('flag_read')
    op.drop_table('flag_generation')
    with op.batch_alter_table('pilot', schema=None) as batch_op:
        batch_op.drop_column('flag_reason')
        batch_op.drop_column('flag_changed_by')
        batch_op.drop_column('flag_changed_at')
        batch_op.drop_column('flag_version')
        batch_op.drop_column('flag_on')
