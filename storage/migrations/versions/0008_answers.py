"""answers: check_in.answer_digest (an identical second submission of a check-in records once)

Revision ID: 0008_answers
Revises: 0006_token_scope
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = "0008_answers"
down_revision = "0006_token_scope"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("check_in", sa.Column("answer_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("check_in", schema=None) as batch_op:
        batch_op.drop_column("answer_digest")
