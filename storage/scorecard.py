"""Reads and writes of the stored scorecard (models.PilotScorecard, GapTransition, ScorecardMark).

What the rows *say* is decided in bot/scorecard.py by the pure rules; this module only pages,
counts and stores them. Every portfolio read is a bounded, indexed statement: one page of rows
(ordered by the (filter, risk, slug) indexes), one count for the page total, one aggregate for the
header, whatever the portfolio's size.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from storage.models import GapTransition, Pilot, PilotScorecard, ScorecardMark

GAP_COLUMNS = ("baseline", "owner", "quality", "path")
STATES = ("closed", "at_risk", "open")
FILTERS = ("at-risk", "ready", "mine", "production", "retired")


@dataclass(frozen=True)
class Counts:
    """Header figures of the whole portfolio (active = stage pilot or production)."""

    active: int
    ready: int  # active and ready
    production: int
    gaps: dict[str, dict[str, int]]  # gap -> state -> n, over active pilots
    # Filter ("" for the default listing) -> pilots it selects, without an owner narrowing it:
    # the page total of `status [filter]` without a second count statement.
    matching: dict[str, int] = field(default_factory=dict)


# SPEC §8's stages as the scorecard reads them (bot/lifecycle.py's StagePolicy: `listed` is every
# stage but retired, `counted` is pilot and production). A literal, not a bound parameter: the
# partial indexes' `WHERE stage <> 'retired'` is then implied in every plan, including the generic
# plan PostgreSQL may pick for a statement psycopg has prepared.
RETIRED = "retired"
ACTIVE = ("pilot", "production")
_SC = PilotScorecard.__table__.c  # type: ignore[attr-defined]
_P = Pilot.__table__.c  # type: ignore[attr-defined]
LISTED = _SC.stage != sa.literal_column(f"'{RETIRED}'")


def _where(filter_: str | None, by_owner: bool) -> list[sa.ColumnElement[bool]]:
    """The filter's conditions (SPEC §8); `by_owner` narrows any filter to the pilots of the
    `owner_ref` parameter. Each filter has its index: listed (risk, slug), listed (ready, risk,
    slug), (stage, risk, slug), (owner_ref, risk, slug) — the page is read in index order."""
    if filter_ in (None, "mine"):
        out = [LISTED]
    elif filter_ == "at-risk":
        out = [_SC.ready == sa.false(), LISTED]
    elif filter_ == "ready":
        out = [_SC.ready == sa.true(), LISTED]
    elif filter_ in ("production", "retired"):
        out = [_SC.stage == sa.literal_column(f"'{filter_}'")]
    else:
        raise ValueError(f"unknown portfolio filter {filter_!r}")
    if by_owner:
        # The owner's index alone drives an owner's page: the filter's own conditions become plain
        # filters over that owner's pilots (coalesce hides them from the planner), so SQLite
        # without ANALYZE statistics cannot pick the ready index and step over every other pilot.
        out = [sa.func.coalesce(c, sa.false()) == sa.true() for c in out]
        out.append(_SC.owner_ref == sa.bindparam("owner_ref"))
    return out


def _by_owner(filter_: str | None, owner_ref: str | None) -> bool:
    return filter_ == "mine" or owner_ref is not None


def _selects(filter_: str, stage: str, ready: bool) -> bool:
    """`_where` for one (stage, ready) group of the aggregate, without an owner."""
    if filter_ == "":
        return stage != RETIRED
    if filter_ == "at-risk":
        return stage != RETIRED and not ready
    if filter_ == "ready":
        return stage != RETIRED and ready
    return stage == filter_


# What a portfolio row shows (bot.scorecard.stored_report and bot.reports.PilotLine read these
# names): Core rows, no ORM objects or timestamp columns, for a read that is mostly fixed cost.
_PAGE_COLUMNS = (
    _SC.pilot_id,
    _SC.slug,
    _SC.stage,
    *(_SC[f"{g}_{k}"] for g in GAP_COLUMNS for k in ("state", "code")),
    _SC.reasons,
    _SC.ready,
    _P.name,
    _P.owner_platform,
    _P.owner_id,
    _P.owner_name,
)


@functools.cache
def _page_statement(filter_: str | None, by_owner: bool) -> sa.Select[Any]:
    """Built once per filter: the page's ids come from the filter's index alone (LIMIT/OFFSET
    over index entries); only those rows are then read and joined to their pilot."""
    ids = (
        sa.select(_SC.pilot_id)
        .where(*_where(filter_, by_owner))
        .order_by(_SC.risk, _SC.slug)
        .limit(sa.bindparam("limit", type_=sa.Integer))
        .offset(sa.bindparam("offset", type_=sa.Integer))
        .subquery("page_ids")
    )
    return (
        sa.select(*_PAGE_COLUMNS)
        .select_from(ids)
        .join(PilotScorecard.__table__, _SC.pilot_id == ids.c.pilot_id)  # type: ignore[attr-defined]
        .join(Pilot.__table__, _P.id == ids.c.pilot_id)  # type: ignore[attr-defined]
        .order_by(_SC.risk, _SC.slug)
    )


@functools.cache
def _count_statement(filter_: str | None, by_owner: bool) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(PilotScorecard.__table__).where(*_where(filter_, by_owner))  # type: ignore[attr-defined]


def page(session: Session, filter_: str | None, owner_ref: str | None, limit: int, offset: int) -> list[sa.Row[Any]]:
    """One page, riskiest first: rows of `_PAGE_COLUMNS` (by name: `row.slug`, `row.name`, ...)."""
    q = _page_statement(filter_, _by_owner(filter_, owner_ref))
    return list(session.connection().execute(q, {"owner_ref": owner_ref, "limit": limit, "offset": offset}))


def count(session: Session, filter_: str | None, owner_ref: str | None) -> int:
    """Pilots a filter selects. Without an owner, `counts(session).matching` has it already."""
    q = _count_statement(filter_, _by_owner(filter_, owner_ref))
    return int(session.connection().execute(q, {"owner_ref": owner_ref}).scalar() or 0)


_GROUP = (_SC.stage, _SC.ready, *(_SC[f"{g}_state"] for g in GAP_COLUMNS))
# One GROUP BY over the covering index ix_scorecard_counts: at most 4 stages x 2 x 3^4 groups
# reach Python, whatever the portfolio's size; no rule runs.
_COUNTS = sa.select(*_GROUP, sa.func.count()).group_by(*_GROUP)


def counts(session: Session) -> Counts:
    """The header, the gauges and every filter's total from one aggregate statement."""
    active = ready = production = 0
    gaps: dict[str, dict[str, int]] = {g: dict.fromkeys(STATES, 0) for g in GAP_COLUMNS}
    matching = dict.fromkeys(("", *FILTERS), 0)
    del matching["mine"]  # per owner: `count` answers it
    for stage, is_ready, *states, n in session.connection().execute(_COUNTS):
        for f in matching:
            if _selects(f, stage, bool(is_ready)):
                matching[f] += n
        if stage not in ACTIVE:
            continue
        active += n
        ready += n if is_ready else 0
        production += n if stage == "production" else 0
        for g, st in zip(GAP_COLUMNS, states, strict=True):
            gaps[g][st] = gaps[g].get(st, 0) + n
    return Counts(active, ready, production, gaps, matching)


def rows_for(session: Session, pilot_ids: Sequence[int]) -> dict[int, PilotScorecard]:
    if not pilot_ids:
        return {}
    rows = session.exec(select(PilotScorecard).where(col(PilotScorecard.pilot_id).in_(list(pilot_ids))))
    return {r.pilot_id: r for r in rows}


def due_for_rescore(
    session: Session, now: datetime, deadline_from: datetime, deadline_to: datetime, checkin_id: int
) -> tuple[set[int], int]:
    """Pilots whose stored row time alone may have moved, and the newest check-in id: its own
    next-change moment has come, a check-in's grace period ended in the window (due_at in
    (deadline_from, deadline_to]), a check-in was inserted since id `checkin_id`, or no row yet."""
    sc = PilotScorecard
    from storage.models import CheckIn

    ids = set(session.execute(sa.select(col(sc.pilot_id)).where(col(sc.next_change_at) <= now)).scalars())
    newest = session.execute(sa.select(sa.func.max(col(CheckIn.id)))).scalar() or 0
    ids |= set(
        session.execute(
            sa.select(col(CheckIn.pilot_id)).where(col(CheckIn.id) > checkin_id, col(CheckIn.id) <= newest).distinct()
        ).scalars()
    )
    ids |= set(
        session.execute(
            sa.select(col(CheckIn.pilot_id))
            .where(col(CheckIn.due_at) > deadline_from, col(CheckIn.due_at) <= deadline_to)
            .distinct()
        ).scalars()
    )
    ids |= set(missing(session))
    return ids, int(newest)


def missing(session: Session, limit: int | None = None) -> list[int]:
    """Pilots without a scorecard row (a database upgraded from before 0013)."""
    q = (
        sa.select(col(Pilot.id))
        .outerjoin(PilotScorecard, col(PilotScorecard.pilot_id) == col(Pilot.id))
        .where(col(PilotScorecard.pilot_id).is_(None))
        .order_by(col(Pilot.id))
    )
    if limit is not None:
        q = q.limit(limit)
    return list(session.execute(q).scalars())


def mark(session: Session, lock: bool = True) -> ScorecardMark | None:
    q = select(ScorecardMark).where(col(ScorecardMark.id) == 1)
    if lock:
        q = q.with_for_update()
    return session.exec(q).first()


def set_mark(session: Session, through: datetime, checkin_id: int | None = None) -> None:
    """Moves the mark; the row is created with INSERT .. ON CONFLICT DO NOTHING, so two processes
    starting at once (a tick and a backfill) cannot both insert it."""
    from storage.models import CheckIn
    from storage.outbox import insert_ignore

    if checkin_id is None:
        checkin_id = int(session.execute(sa.select(sa.func.max(col(CheckIn.id)))).scalar() or 0)
    insert_ignore(session, ScorecardMark, [{"id": 1, "through": through, "checkin_id": checkin_id}])
    session.execute(
        sa.update(ScorecardMark).where(col(ScorecardMark.id) == 1).values(through=through, checkin_id=checkin_id)
    )


def transitions(session: Session, pilot_id: int, limit: int = 50) -> list[GapTransition]:
    """The pilot's newest gap transitions, newest first (the `history` command)."""
    q = (
        select(GapTransition)
        .where(col(GapTransition.pilot_id) == pilot_id)
        .order_by(col(GapTransition.at).desc(), col(GapTransition.id).desc())
        .limit(limit)
    )
    return list(session.exec(q))


def transitions_since(session: Session, since: datetime, limit: int = 200) -> list[tuple[GapTransition, str]]:
    """Every pilot's transitions since `since` (the digest's "what changed"), with the slug."""
    q = (
        select(GapTransition, col(Pilot.slug))
        .join(Pilot, col(Pilot.id) == col(GapTransition.pilot_id))
        .where(col(GapTransition.at) >= since, col(GapTransition.from_state).is_not(None))
        .order_by(col(GapTransition.at), col(GapTransition.id))
        .limit(limit)
    )
    return [(t, slug) for t, slug in session.execute(q).all()]


def closed_balance_before(session: Session, before: datetime) -> dict[str, int]:
    """Per gap (and `ready`): how many were closed at `before`, from the transitions' net count."""
    t = GapTransition
    delta = sa.case((col(t.to_state) == "closed", 1), else_=0) - sa.case((col(t.from_state) == "closed", 1), else_=0)
    q = sa.select(col(t.gap), sa.func.sum(delta)).where(col(t.at) < before).group_by(col(t.gap))
    return {g: int(n or 0) for g, n in session.execute(q).all()}


def transitions_between(
    session: Session, start: datetime, end: datetime
) -> list[tuple[str, datetime, str | None, str]]:
    t = GapTransition
    q = (
        sa.select(col(t.gap), col(t.at), col(t.from_state), col(t.to_state))
        .where(col(t.at) >= start, col(t.at) < end)
        .order_by(col(t.at))
    )
    return [(g, at, f, to) for g, at, f, to in session.execute(q).all()]
