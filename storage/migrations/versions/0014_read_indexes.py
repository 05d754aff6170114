"""read indexes: the portfolio's pages and header read by index (issue 14)

- pilot_scorecard: the default and at-risk/ready pages come from partial indexes over the listed
  pilots (`stage <> 'retired'`), so retired pilots are never stepped over; the header's GROUP BY
  reads the covering index ix_scorecard_counts instead of the table.
- check_in, escalation: unsent rows by attempts (partial), for `status`'s undeliverable count.

Revision ID: 0014_read_indexes
Revises: 0013_scorecard
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0014_read_indexes'
down_revision = '0013_scorecard'
branch_labels = None
depends_on = None

LISTED = sa.text("stage <> 'retired'")
UNSENT = sa.text("sent_at IS NULL")
COUNTS = ['stage', 'ready', 'baseline_state', 'owner_state', 'quality_state', 'path_state']


def upgrade() -> None:
    op.drop_index('ix_scorecard_risk', table_name='pilot_scorecard')
    op.drop_index('ix_scorecard_ready_risk', table_name='pilot_scorecard')
    op.create_index(
        'ix_scorecard_listed_risk', 'pilot_scorecard', ['risk', 'slug', 'stage'], sqlite_where=LISTED, postgresql_where=LISTED
    )
    op.create_index(
        'ix_scorecard_listed_ready_risk',
        'pilot_scorecard',
        ['ready', 'risk', 'slug', 'stage'],
        sqlite_where=LISTED,
        postgresql_where=LISTED,
    )
    op.create_index('ix_scorecard_counts', 'pilot_scorecard', COUNTS)
    op.create_index(
        'ix_check_in_unsent_attempts', 'check_in', ['attempts'], sqlite_where=UNSENT, postgresql_where=UNSENT
    )
    op.create_index(
        'ix_escalation_unsent_attempts', 'escalation', ['attempts'], sqlite_where=UNSENT, postgresql_where=UNSENT
    )


def downgrade() -> None:
    op.drop_index('ix_escalation_unsent_attempts', table_name='escalation')
    op.drop_index('ix_check_in_unsent_attempts', table_name='check_in')
    op.drop_index('ix_scorecard_counts', table_name='pilot_scorecard')
    op.drop_index('ix_scorecard_listed_ready_risk', table_name='pilot_scorecard')
    op.drop_index('ix_scorecard_listed_risk', table_name='pilot_scorecard')
    op.create_index('ix_scorecard_ready_risk', 'pilot_scorecard', ['ready', 'risk', 'slug'])
    op.create_index('ix_scorecard_risk', 'pilot_scorecard', ['risk', 'slug'])
