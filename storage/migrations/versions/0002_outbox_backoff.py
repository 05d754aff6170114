"""outbox backoff: next_attempt_at on check_in and escalation; escalation.pilot_id nullable (digest)

Revision ID: 0002_outbox_backoff
Revises: 0001_initial
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0002_outbox_backoff'
down_revision = '0001_initial'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('check_in', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', storage.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_check_in_attempts'), ['attempts'], unique=False)
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', storage.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.alter_column('pilot_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(batch_op.f('ix_escalation_attempts'), ['attempts'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_attempts'))
        batch_op.alter_column('pilot_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('next_attempt_at')
    with op.batch_alter_table('check_in', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_check_in_attempts'))
        batch_op.drop_column('next_attempt_at')
