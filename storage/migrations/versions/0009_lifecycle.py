"""lifecycle and corrections: pilot stage bookkeeping and override audit; void columns

Revision ID: 0009_lifecycle
Revises: 0006_token_scope
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

from storage.models import UTCDateTime

revision = '0009_lifecycle'
down_revision = '0011_kill_below'
branch_labels = None
depends_on = None

PILOT = (
    ('stage_changed_at', UTCDateTime()),
    ('stage_changed_by', sa.String(length=200)),
    ('stage_reason', sa.String(length=500)),
    ('paused_from', sa.String(length=16)),
    ('resumed_at', UTCDateTime()),
    ('override_by', sa.String(length=200)),
    ('override_reason', sa.String(length=500)),
    ('override_unmet', sa.JSON()),
)
VOID = (
    ('voided_at', UTCDateTime()),
    ('voided_by', sa.String(length=200)),
    ('void_reason', sa.String(length=500)),
)
VOIDABLE = ('metric', 'measurement', 'eval_run')


def upgrade() -> None:
    for name, type_ in PILOT:
        op.add_column('pilot', sa.Column(name, type_, nullable=True))
    for table in VOIDABLE:
        for name, type_ in VOID:
            op.add_column(table, sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for table in VOIDABLE:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _ in VOID:
                batch_op.drop_column(name)
    with op.batch_alter_table('pilot', schema=None) as batch_op:
        for name, _ in PILOT:
            batch_op.drop_column(name)
