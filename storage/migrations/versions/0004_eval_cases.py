"""eval cases: eval_case_result, every case's result of a labelled run packed in one row

Revision ID: 0004_eval_cases
Revises: 0002_outbox_backoff
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_eval_cases'
down_revision = '0003_alert_facts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'eval_case_result',
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('packed', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['eval_run.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('run_id'),
    )


def downgrade() -> None:
    op.drop_table('eval_case_result')
