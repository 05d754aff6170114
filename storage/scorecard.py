"""Reads and writes of the stored scorecard (models.PilotScorecard, GapTransition, ScorecardMark).

What the rows *say* is decided in bot/scorecard.py by the pure rules; this module only pages,
counts and stores them. Every portfolio read is a bounded, indexed statement: one page of rows
(ordered by the (filter, risk, slug) indexes), one count for the page total, one aggregate for the
header, whatever the portfolio's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


def _where(filter_: str | None, owner_ref: str | None) -> list[sa.ColumnElement[bool]]:
    """The filter's conditions (SPEC §8); an owner ref narrows any filter to that owner's pilots."""
    sc = PilotScorecard
    not_retired = col(sc.stage) != "retired"
    if filter_ in (None, "mine"):
        out = [not_retired]
    elif filter_ == "at-risk":
        out = [col(sc.ready).is_(False), not_retired]
    elif filter_ == "ready":
        out = [col(sc.ready).is_(True), not_retired]
    elif filter_ in ("production", "retired"):
        out = [col(sc.stage) == filter_]
    else:
        raise ValueError(f"unknown portfolio filter {filter_!r}")
    if filter_ == "mine" or owner_ref is not None:
        out.append(col(sc.owner_ref) == owner_ref)
    return out


_PAGE_COLUMNS = (
    PilotScorecard,
    col(Pilot.name),
    col(Pilot.owner_platform),
    col(Pilot.owner_id),
    col(Pilot.owner_name),
)


def page(
    session: Session, filter_: str | None, owner_ref: str | None, limit: int, offset: int
) -> list[tuple[Any, ...]]:
    """One page, riskiest first: (scorecard, name, owner_platform, owner_id, owner_name) rows."""
    q = (
        select(*_PAGE_COLUMNS)  # type: ignore[call-overload]
        .join(Pilot, col(Pilot.id) == col(PilotScorecard.pilot_id))
        .where(*_where(filter_, owner_ref))
        .order_by(col(PilotScorecard.risk), col(PilotScorecard.slug))
        .limit(limit)
        .offset(offset)
    )
    return [tuple(r) for r in session.execute(q).all()]


def count(session: Session, filter_: str | None, owner_ref: str | None) -> int:
    q = sa.select(sa.func.count()).select_from(PilotScorecard).where(*_where(filter_, owner_ref))
    return int(session.execute(q).scalar() or 0)


def counts(session: Session) -> Counts:
    """The header and the gauges in one aggregate statement over the scorecard (no rule runs)."""
    sc = PilotScorecard
    active = col(sc.stage).in_(("pilot", "production"))

    def n(cond: sa.ColumnElement[bool]) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((sa.and_(active, cond), 1), else_=0)), 0)

    cells = [(g, s) for g in GAP_COLUMNS for s in STATES]
    q = sa.select(
        n(sa.true()),
        n(col(sc.ready).is_(True)),
        n(col(sc.stage) == "production"),
        *(n(getattr(sc, f"{g}_state") == s) for g, s in cells),
    )
    row = session.execute(q).one()
    gaps: dict[str, dict[str, int]] = {g: {} for g in GAP_COLUMNS}
    for (g, s), v in zip(cells, row[3:], strict=True):
        gaps[g][s] = int(v)
    return Counts(int(row[0]), int(row[1]), int(row[2]), gaps)


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
