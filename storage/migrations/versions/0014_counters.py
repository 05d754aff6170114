"""counters: metric_counter (the /metrics `_total` counters, moved with the events they count),
check_in.judged_at (a check-in's verdict counted once), partial indexes on check_in for the
scheduler's verdict step and the pending-retry gauge (escalation's is ix_escalation_sent_at)

The counters that are plain counts of rows are filled here, in one pass over check_in and
escalation. The verdict counters (missed / answered on time) are not: they need the rule
(`bot.gaps.is_missed`) and the configured grace period, and a migration must not import the rules.
`bot.schedule.verdicts.backfill` (run by `pilotbot db upgrade` and `serve`) counts them once with
the rule: the answered check-ins up to the id recorded here (`backfill:check_in_through`) in one
pass, the unanswered ones past their grace through the scheduler's own step.

Revision ID: 0014_counters
Revises: 0014_read_indexes
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

from storage.models import UTCDateTime


revision = '0014_counters'
down_revision = '0014_read_indexes'
branch_labels = None
depends_on = None

UNJUDGED = sa.text('judged_at IS NULL AND answered_at IS NULL')
RETRY = sa.text('sent_at IS NULL AND last_error IS NOT NULL')


def upgrade() -> None:
    op.create_table(
        'metric_counter',
        sa.Column('name', sa.String(length=64), primary_key=True),
        sa.Column('value', sa.BigInteger(), nullable=False),
    )
    with op.batch_alter_table('check_in') as batch:
        batch.add_column(sa.Column('judged_at', UTCDateTime(), nullable=True))
    op.create_index('ix_check_in_unjudged_due', 'check_in', ['due_at'], sqlite_where=UNJUDGED, postgresql_where=UNJUDGED)
    op.create_index('ix_check_in_retry', 'check_in', ['id'], sqlite_where=RETRY, postgresql_where=RETRY)
    op.execute(
        "INSERT INTO metric_counter (name, value) "
        "SELECT 'checkins_sent', count(sent_at) FROM check_in "
        "UNION ALL SELECT 'checkins_answered', count(answered_at) FROM check_in"
    )
    op.execute(
        "INSERT INTO metric_counter (name, value) "
        "SELECT 'backfill:check_in_through', coalesce(max(id), 0) FROM check_in"
    )
    op.execute(
        "INSERT INTO metric_counter (name, value) "
        "SELECT 'escalations_sent:' || kind, count(*) FROM escalation WHERE sent_at IS NOT NULL GROUP BY kind"
    )


def downgrade() -> None:
    op.drop_index('ix_check_in_retry', table_name='check_in')
    op.drop_index('ix_check_in_unjudged_due', table_name='check_in')
    with op.batch_alter_table('check_in') as batch:
        batch.drop_column('judged_at')
    op.drop_table('metric_counter')
