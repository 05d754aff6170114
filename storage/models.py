"""SQLModel tables for every entity of SPEC §2 and the enums their columns use.

Imports nothing of ours: bot/ and adapters/ depend on this module, never the reverse.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import JSON, Column, Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and hands back aware datetimes: SQLite drops tzinfo otherwise."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Stage(StrEnum):
    pilot = "pilot"
    production = "production"
    paused = "paused"
    retired = "retired"


class Direction(StrEnum):
    # Upper-case names: a member called `lower` would shadow str.lower.
    LOWER = "lower"
    HIGHER = "higher"


class Source(StrEnum):
    command = "command"
    checkin = "checkin"
    api = "api"
    demo = "demo"


class ItemState(StrEnum):
    todo = "todo"
    done = "done"


class EscalationKind(StrEnum):
    eval_below_bar = "eval_below_bar"
    eval_drop = "eval_drop"
    eval_recovered = "eval_recovered"  # a run cleared the bar again after a page (SPEC §10)
    bar_lowered = "bar_lowered"  # the threshold or min-cases went down (SPEC §10)
    checkin_missed = "checkin_missed"
    no_owner = "no_owner"
    owner_unreachable = "owner_unreachable"
    # Outbox-only kinds (bot/schedule/plan.py): the reminder DM and the weekly digest ride the same
    # claim/send/mark protocol as escalations.
    checkin_reminder = "checkin_reminder"
    digest = "digest"
    # The kill switch (bot/flags.py): a person (or an eval run below `kill-below`) flipped the flag.
    flag_killed = "flag_killed"
    flag_restored = "flag_restored"
    # The lifecycle (SPEC §8, bot/services/lifecycle.py): a pilot shipped to production, and a gap
    # of a production pilot that reopened (once per reopening).
    shipped = "shipped"
    gap_reopened = "gap_reopened"
    # The escalation channel refused a post for good (a private Slack channel the bot is not in, a
    # Teams channel it was never mentioned in): one row per episode (bot/schedule/channels.py),
    # the DM to whoever set `escalate`; `facts.cleared_at` ends the episode.
    channel_unreachable = "channel_unreachable"


class Pilot(SQLModel, table=True):
    __tablename__ = "pilot"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=40, unique=True, index=True)
    name: str = Field(max_length=200)
    stage: str = Field(default=Stage.pilot.value, max_length=16)
    go_live: date | None = None
    owner_platform: str | None = Field(default=None, max_length=16)
    owner_id: str | None = Field(default=None, max_length=128)
    owner_name: str | None = Field(default=None, max_length=200)
    escalation_platform: str | None = Field(default=None, max_length=16)
    escalation_channel_id: str | None = Field(default=None, max_length=128)
    escalation_channel_name: str | None = Field(default=None, max_length=200)
    checkin_weekday: int = 0
    checkin_time: str = Field(default="09:00", max_length=5)
    checkin_tz: str = Field(default="UTC", max_length=64)
    owner_since: datetime | None = _ts()
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # The kill switch (SPEC §9, bot/flags.py): served over OFREP with key = slug. `flag_version` is the
    # portfolio-wide flip count (flag_generation) at this pilot's last flip.
    flag_on: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    flag_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    flag_changed_at: datetime | None = _ts()
    flag_changed_by: str | None = Field(default=None, max_length=200)
    flag_reason: str | None = Field(default=None, max_length=500)
    # The lifecycle (SPEC §8): the last stage change, the stage `resume` returns to, when the pilot
    # last became active again (a resumed pilot's check-ins start after it: no backlog), and an
    # admin's override of the ship gate (reason, who, the unmet conditions' sentences).
    stage_changed_at: datetime | None = _ts()
    stage_changed_by: str | None = Field(default=None, max_length=200)
    stage_reason: str | None = Field(default=None, max_length=500)
    paused_from: str | None = Field(default=None, max_length=16)
    resumed_at: datetime | None = _ts()
    override_by: str | None = Field(default=None, max_length=200)
    override_reason: str | None = Field(default=None, max_length=500)
    override_unmet: list[str] | None = Field(default=None, sa_column=Column(JSON))


class FlagGeneration(SQLModel, table=True):
    """One row counting kill-switch flips across the portfolio (bot/flags.py). Every flip increments
    it atomically and stores the new value as the pilot's `flag_version`, so the bulk OFREP route's
    ETag is two index lookups (this counter, the newest pilot id) instead of a scan of every pilot."""

    __tablename__ = "flag_generation"

    id: int = Field(default=1, primary_key=True)
    generation: int = 0


class FlagRead(SQLModel, table=True):
    """Evidence that production reads a flag: the latest read per (token, pilot), coalesced in memory
    and flushed every few seconds (bot/flags.py), never one row per request. `pilot_id` None is a bulk
    read by an unscoped token, which covers every pilot."""

    __tablename__ = "flag_read"
    __table_args__ = (sa.UniqueConstraint("token_name", "pilot_id", name="uq_flag_read_token_pilot"),)

    id: int | None = Field(default=None, primary_key=True)
    token_name: str = Field(max_length=100)
    pilot_id: int | None = Field(default=None, foreign_key="pilot.id", ondelete="CASCADE", index=True)
    read_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Metric(SQLModel, table=True):
    __tablename__ = "metric"
    __table_args__ = (sa.UniqueConstraint("pilot_id", "key", name="uq_metric_pilot_key"),)

    id: int | None = Field(default=None, primary_key=True)
    pilot_id: int = Field(foreign_key="pilot.id", ondelete="CASCADE")
    key: str = Field(max_length=64)
    unit: str = Field(default="", max_length=32)
    direction: str = Field(default=Direction.LOWER.value, max_length=8)
    baseline: float
    baseline_at: date
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # Corrections (SPEC §8): a void record is kept, never deleted, and read by nothing that judges.
    voided_at: datetime | None = _ts()
    voided_by: str | None = Field(default=None, max_length=200)
    void_reason: str | None = Field(default=None, max_length=500)


class Measurement(SQLModel, table=True):
    __tablename__ = "measurement"
    __table_args__ = (sa.Index("ix_measurement_metric_time", "metric_id", "measured_at"),)

    id: int | None = Field(default=None, primary_key=True)
    metric_id: int = Field(foreign_key="metric.id", ondelete="CASCADE")
    value: float
    measured_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    source: str = Field(default=Source.command.value, max_length=16)
    recorded_by: str = Field(max_length=200)
    # Corrections (SPEC §8): a void record is kept, never deleted, and read by nothing that judges.
    voided_at: datetime | None = _ts()
    voided_by: str | None = Field(default=None, max_length=200)
    void_reason: str | None = Field(default=None, max_length=500)


class EvalPolicy(SQLModel, table=True):
    __tablename__ = "eval_policy"

    pilot_id: int = Field(foreign_key="pilot.id", primary_key=True, ondelete="CASCADE")
    threshold: float
    min_cases: int = 100
    drop_alert: float = 2.0
    # An eval run below this score turns the pilot's kill-switch flag off (bot/flags.py); None: never.
    kill_below: float | None = None


class EvalRun(SQLModel, table=True):
    __tablename__ = "eval_run"
    __table_args__ = (sa.Index("ix_eval_run_pilot_time", "pilot_id", "run_at"),)

    id: int | None = Field(default=None, primary_key=True)
    pilot_id: int = Field(foreign_key="pilot.id", ondelete="CASCADE")
    score: float
    cases: int
    version: str | None = Field(default=None, max_length=200)
    field_scores: dict[str, float] | None = Field(default=None, sa_column=Column(JSON))
    run_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    source: str = Field(default=Source.command.value, max_length=16)
    recorded_by: str = Field(max_length=200)
    # Corrections (SPEC §8): a void record is kept, never deleted, and read by nothing that judges.
    voided_at: datetime | None = _ts()
    voided_by: str | None = Field(default=None, max_length=200)
    void_reason: str | None = Field(default=None, max_length=500)


class EvalCaseResult(SQLModel, table=True):
    """Every case's result of one labelled eval run, packed (format: storage/cases.py)."""

    __tablename__ = "eval_case_result"

    run_id: int = Field(foreign_key="eval_run.id", primary_key=True, ondelete="CASCADE")
    n: int  # number of cases
    packed: bytes = Field(sa_column=Column(sa.LargeBinary(), nullable=False))


class PathItem(SQLModel, table=True):
    __tablename__ = "path_item"
    __table_args__ = (sa.UniqueConstraint("pilot_id", "item", name="uq_path_item_pilot_item"),)

    id: int | None = Field(default=None, primary_key=True)
    pilot_id: int = Field(foreign_key="pilot.id", ondelete="CASCADE")
    item: str = Field(max_length=32)
    state: str = Field(default=ItemState.todo.value, max_length=8)
    note: str | None = Field(default=None, max_length=500)
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


def unsent_index(name: str) -> tuple[sa.Index]:
    """Unsent rows by attempts (`status`'s undeliverable warning counts `attempts >= MAX_ATTEMPTS`):
    partial, so rows sent after many retries never make the count read more index entries."""
    where = sa.text("sent_at IS NULL")
    return (sa.Index(name, "attempts", sqlite_where=where, postgresql_where=where),)


_UNJUDGED = sa.text("judged_at IS NULL AND answered_at IS NULL")
_RETRY = sa.text("sent_at IS NULL AND last_error IS NOT NULL")


class CheckIn(SQLModel, table=True):
    __tablename__ = "check_in"
    __table_args__ = (
        sa.UniqueConstraint("pilot_id", "period", name="uq_check_in_pilot_period"),
        sa.Index("ix_check_in_pilot_due", "pilot_id", "due_at"),
        *unsent_index("ix_check_in_unsent_attempts"),
        # Partial indexes, so /metrics and the scheduler read only the few rows they are about:
        # unanswered check-ins without a counted verdict yet (bot/schedule/verdicts.py), and failed
        # sends waiting for a retry (`pilotbot_deliveries_pending_retry`).
        sa.Index("ix_check_in_unjudged_due", "due_at", sqlite_where=_UNJUDGED, postgresql_where=_UNJUDGED),
        sa.Index("ix_check_in_retry", "id", sqlite_where=_RETRY, postgresql_where=_RETRY),
    )

    id: int | None = Field(default=None, primary_key=True)
    pilot_id: int = Field(foreign_key="pilot.id", ondelete="CASCADE")
    period: str = Field(max_length=10)
    owner_ref: str | None = Field(default=None, max_length=200)
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    claimed_at: datetime | None = _ts()
    sent_at: datetime | None = _ts()
    reminded_at: datetime | None = _ts()
    answered_at: datetime | None = _ts()
    escalated_at: datetime | None = _ts()
    attempts: int = Field(default=0, index=True)  # indexed: `status` looks up undeliverable rows
    last_error: str | None = Field(default=None, max_length=500)
    next_attempt_at: datetime | None = _ts()  # backoff after a failed send
    message_ref: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    report: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # sha256 of the normalised answer (bot/services/checkin_answer.py): the same submission arriving
    # twice (a Slack retry after a late ack, a double click, a Teams card sent twice) records once.
    answer_digest: str | None = Field(default=None, max_length=64)
    # When its verdict (answered on time, or missed: `bot.gaps.is_missed`) was counted in the
    # /metrics counters (storage/counters.py); set once, by the answer or by the scheduler.
    judged_at: datetime | None = _ts()


class Escalation(SQLModel, table=True):
    __tablename__ = "escalation"
    __table_args__ = (*unsent_index("ix_escalation_unsent_attempts"),)

    id: int | None = Field(default=None, primary_key=True)
    # None for portfolio-wide messages (the weekly digest).
    pilot_id: int | None = Field(default=None, foreign_key="pilot.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=32)
    dedupe_key: str = Field(max_length=200, unique=True)
    targets: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # Destination keys
    # What the message is about (scores, bar, period, ...); worded when it is sent
    # (bot/schedule/messages.py). None only on rows written before 0003_alert_facts.
    facts: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # Delivery bookkeeping: `delivered` maps each destination key already sent to its message.
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    claimed_at: datetime | None = _ts()
    sent_at: datetime | None = _ts(index=True)
    attempts: int = Field(default=0, index=True)  # indexed: `status` looks up undeliverable rows
    last_error: str | None = Field(default=None, max_length=500)
    next_attempt_at: datetime | None = _ts()  # backoff after a failed send


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (sa.Index("ix_audit_event_pilot_at", "pilot_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=200)
    pilot_id: int | None = Field(default=None, foreign_key="pilot.id", ondelete="CASCADE")
    action: str = Field(max_length=32)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ConversationRef(SQLModel, table=True):
    """A Teams conversation reference, kept so the bot can message proactively."""

    __tablename__ = "conversation_ref"
    __table_args__ = (sa.UniqueConstraint("platform", "key", name="uq_conversation_ref_key"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    key: str = Field(max_length=300)
    reference: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    token_hash: str = Field(max_length=128, unique=True)
    pilot_id: int | None = Field(default=None, foreign_key="pilot.id", ondelete="CASCADE")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = _ts()
    last_used_at: datetime | None = _ts()
    # Dashboards: a read-only token may read what its scope allows; every write answers 403.
    read_only: bool = Field(default=False, sa_column=Column(sa.Boolean(), nullable=False, server_default=sa.false()))


_LISTED = sa.text("stage <> 'retired'")  # storage/scorecard.py LISTED: the same literal


class PilotScorecard(SQLModel, table=True):
    """Each pilot's four gap states, ready flag and ship-gate verdict as the pure rules last computed
    them (bot/scorecard.py writes it in the unit of work of every change, and the scheduler when time
    alone moves it). Portfolio reads page through it by index instead of recomputing every pilot."""

    __tablename__ = "pilot_scorecard"
    __table_args__ = (
        # The portfolio's pages in index order (storage/scorecard.py `page`): the listed pilots
        # (every stage but retired) riskiest first, then by ready, stage and owner. The trailing
        # `stage` makes the partial ones covering (SQLite rechecks their WHERE on the entry).
        sa.Index("ix_scorecard_listed_risk", "risk", "slug", "stage", sqlite_where=_LISTED, postgresql_where=_LISTED),
        sa.Index(
            "ix_scorecard_listed_ready_risk",
            "ready",
            "risk",
            "slug",
            "stage",
            sqlite_where=_LISTED,
            postgresql_where=_LISTED,
        ),
        sa.Index("ix_scorecard_stage_risk", "stage", "risk", "slug"),
        sa.Index("ix_scorecard_owner_risk", "owner_ref", "risk", "slug"),
        # Covers the header's GROUP BY (storage/scorecard.py `counts`): no table row is read.
        sa.Index(
            "ix_scorecard_counts", "stage", "ready", "baseline_state", "owner_state", "quality_state", "path_state"
        ),
    )

    pilot_id: int = Field(foreign_key="pilot.id", primary_key=True, ondelete="CASCADE")
    slug: str = Field(max_length=40)
    stage: str = Field(max_length=16)
    owner_ref: str | None = Field(default=None, max_length=200)
    baseline_state: str = Field(max_length=8)
    baseline_code: str = Field(max_length=32)
    owner_state: str = Field(max_length=8)
    owner_code: str = Field(max_length=32)
    quality_state: str = Field(max_length=8)
    quality_code: str = Field(max_length=32)
    path_state: str = Field(max_length=8)
    path_code: str = Field(max_length=32)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # the four sentences
    ready: bool = False
    gate_met: bool = False
    gate_unmet: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # UnmetCode values
    risk: int = 0  # riskiest first: open gaps, then at-risk, then ready; most gaps first within each
    # The earliest moment time alone can move this row (a check-in's grace period ending, a go-live
    # day arriving); the scheduler recomputes rows whose moment has come.
    next_change_at: datetime | None = _ts(index=True)
    computed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class GapTransition(SQLModel, table=True):
    """One gap of one pilot changing state (`from_state` None: the first time it was scored). The
    pseudo-gap `ready` records the pilot becoming ready to ship (to `closed`) or not (to `open`)."""

    __tablename__ = "gap_transition"
    __table_args__ = (
        sa.Index("ix_gap_transition_pilot_at", "pilot_id", "at"),
        sa.Index("ix_gap_transition_at", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pilot_id: int = Field(foreign_key="pilot.id", ondelete="CASCADE")
    gap: str = Field(max_length=16)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    from_state: str | None = Field(default=None, max_length=8)
    to_state: str = Field(max_length=8)
    code: str = Field(max_length=32)
    stage: str = Field(max_length=16)  # the pilot's stage then: a reopening in production is announced


class ScorecardMark(SQLModel, table=True):
    """One row: the time up to which the scheduler has rescored pilots whose check-ins passed grace."""

    __tablename__ = "scorecard_mark"

    id: int = Field(default=1, primary_key=True)
    through: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # The newest check-in id rescored: the planner inserts check-ins outside any unit of work, some
    # already past their grace period (a catch-up after downtime, a changed cadence).
    checkin_id: int = 0


class MetricCounter(SQLModel, table=True):
    """A monotonic event counter shown on /metrics (storage/counters.py names them), moved in the
    transaction of the event it counts."""

    __tablename__ = "metric_counter"

    name: str = Field(max_length=64, primary_key=True)
    value: int = Field(default=0, sa_column=Column(sa.BigInteger(), nullable=False))
