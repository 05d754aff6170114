"""kill switch: eval_policy.kill_below (an eval run below it turns the pilot's flag off)

Revision ID: 0011_kill_below
Revises: 0006_token_scope
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0011_kill_below'
down_revision = '0008_answers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('eval_policy', sa.Column('kill_below', sa.Float(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column in place since 3.35; batch mode covers older ones.
    with op.batch_alter_table('eval_policy', schema=None) as batch_op:
        batch_op.drop_column('kill_below')
