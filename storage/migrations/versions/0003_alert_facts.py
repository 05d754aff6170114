"""alert facts: escalation.facts holds what a scheduled message is about; it is worded at send time

Rows written before this revision kept their facts in `payload`, next to frozen sentences
(`headline`, `todo`, `targets_text`) and the delivery bookkeeping (`delivered`). The upgrade moves
the facts into `facts`, leaves only `delivered` in `payload`, and drops the sentences (they are now
worded when sent). An owner-unreachable row keeps its old `sentence` as a fact: it named no
destination. The downgrade puts the facts back into `payload` (without sentences: the old code
words an eval alert without a stored headline as "`<slug>` eval needs attention.").

Revision ID: 0003_alert_facts
Revises: 0002_outbox_backoff
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_alert_facts'
down_revision = '0002_outbox_backoff'
branch_labels = None
depends_on = None

SENTENCES = ('headline', 'todo', 'targets_text')
escalation = sa.table(
    'escalation', sa.column('id', sa.Integer()), sa.column('payload', sa.JSON()), sa.column('facts', sa.JSON())
)


def upgrade() -> None:
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('facts', sa.JSON(), nullable=True))
    conn = op.get_bind()
    for row_id, payload in conn.execute(sa.select(escalation.c.id, escalation.c.payload)).all():
        payload = dict(payload or {})
        facts = {k: v for k, v in payload.items() if k not in SENTENCES and k != 'delivered'}
        kept = {'delivered': payload['delivered']} if 'delivered' in payload else {}
        conn.execute(escalation.update().where(escalation.c.id == row_id).values(facts=facts, payload=kept))


def downgrade() -> None:
    conn = op.get_bind()
    for row_id, payload, facts in conn.execute(
        sa.select(escalation.c.id, escalation.c.payload, escalation.c.facts)
    ).all():
        conn.execute(
            escalation.update().where(escalation.c.id == row_id).values(payload={**(facts or {}), **(payload or {})})
        )
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.drop_column('facts')
