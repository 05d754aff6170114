"""token scope: api_token.read_only (dashboards read, every write answers 403)

Revision ID: 0006_token_scope
Revises: 0002_outbox_backoff
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_token_scope'
down_revision = '0005_flags'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('read_only', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_column('read_only')
