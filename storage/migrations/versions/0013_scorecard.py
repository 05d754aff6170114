"""scorecard: pilot_scorecard (the rules' last verdict per pilot), gap_transition (its history),
scorecard_mark (how far the scheduler has rescored for time alone)

The rows are filled after the schema change by `bot.scorecard.backfill` (`pilotbot db upgrade` and
`serve` run it): the rules live in bot/, and a migration must not import them.

Revision ID: 0013_scorecard
Revises: 0006_token_scope
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

from storage.models import UTCDateTime


revision = '0013_scorecard'
down_revision = '0009_lifecycle'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'pilot_scorecard',
        sa.Column('pilot_id', sa.Integer(), sa.ForeignKey('pilot.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('slug', sa.String(length=40), nullable=False),
        sa.Column('stage', sa.String(length=16), nullable=False),
        sa.Column('owner_ref', sa.String(length=200), nullable=True),
        *(
            sa.Column(f'{g}_{k}', sa.String(length=8 if k == 'state' else 32), nullable=False)
            for g in ('baseline', 'owner', 'quality', 'path')
            for k in ('state', 'code')
        ),
        sa.Column('reasons', sa.JSON(), nullable=False),
        sa.Column('ready', sa.Boolean(), nullable=False),
        sa.Column('gate_met', sa.Boolean(), nullable=False),
        sa.Column('gate_unmet', sa.JSON(), nullable=False),
        sa.Column('risk', sa.Integer(), nullable=False),
        sa.Column('next_change_at', UTCDateTime(), nullable=True),
        sa.Column('computed_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
    )
    op.create_index('ix_scorecard_risk', 'pilot_scorecard', ['risk', 'slug'])
    op.create_index('ix_scorecard_ready_risk', 'pilot_scorecard', ['ready', 'risk', 'slug'])
    op.create_index('ix_scorecard_stage_risk', 'pilot_scorecard', ['stage', 'risk', 'slug'])
    op.create_index('ix_scorecard_owner_risk', 'pilot_scorecard', ['owner_ref', 'risk', 'slug'])
    op.create_index('ix_pilot_scorecard_next_change_at', 'pilot_scorecard', ['next_change_at'])
    op.create_table(
        'gap_transition',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('pilot_id', sa.Integer(), sa.ForeignKey('pilot.id', ondelete='CASCADE'), nullable=False),
        sa.Column('gap', sa.String(length=16), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('from_state', sa.String(length=8), nullable=True),
        sa.Column('to_state', sa.String(length=8), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('stage', sa.String(length=16), nullable=False),
    )
    op.create_index('ix_gap_transition_pilot_at', 'gap_transition', ['pilot_id', 'at'])
    op.create_index('ix_gap_transition_at', 'gap_transition', ['at'])
    op.create_table(
        'scorecard_mark',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('through', UTCDateTime(), nullable=False),
        sa.Column('checkin_id', sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('scorecard_mark')
    op.drop_table('gap_transition')
    op.drop_table('pilot_scorecard')
