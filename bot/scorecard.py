"""The stored scorecard: each pilot's gap report and ship-gate verdict, as the pure rules compute
them, kept in `pilot_scorecard` so the portfolio is read by index instead of recomputed.

The rules stay the only definition: `score` runs `bot.reports.pilot_reports` (the one gap-facts
builder and `bot.gaps.evaluate`) and `bot.gate.gate`; the stored row is their output. It is written

- in the unit of work of every change (bot/services/unit.py calls `rescore` before the commit),
- by the scheduler's tick for what time alone changes (`rescore_due`: a check-in's grace period
  ending, a go-live day arriving),
- after `pilotbot db upgrade` / at `serve` for pilots without a row yet (`backfill`).

Each change of a gap's state (and of the ready flag, as the pseudo-gap `ready`) appends a
`GapTransition`; `pilotbot scorecard check` (`check`) recomputes every pilot and lists differences.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.gaps import Gap, GapReport, GapResult, GapState, Reason
from bot.gate import GateFacts, GateMetric, GateVerdict, gate, local_day
from bot.reports import PilotReport, pilot_reports
from storage import scorecard as store
from storage.db import session_scope
from storage.models import CheckIn, GapTransition, Pilot, PilotScorecard

READY = "ready"  # the pseudo-gap of transitions recording ready to ship / not
BATCH = 500


@dataclass(frozen=True)
class Score:
    """One pilot's scorecard as the rules decide it now."""

    pilot_id: int
    slug: str
    stage: str
    owner_ref: str | None
    gaps: GapReport
    verdict: GateVerdict
    next_change_at: datetime | None

    @property
    def ready(self) -> bool:
        return self.gaps.ready

    @property
    def risk(self) -> int:
        return risk_of(self.gaps)

    def columns(self) -> dict[str, Any]:
        out: dict[str, Any] = {"slug": self.slug, "stage": self.stage, "owner_ref": self.owner_ref}
        for r in self.gaps.results:
            out[f"{r.gap.value}_state"] = r.state.value
            out[f"{r.gap.value}_code"] = r.code.value
        out.update(
            reasons=[r.reason for r in self.gaps.results],
            ready=self.ready,
            gate_met=self.verdict.met,
            gate_unmet=[c.value for c in self.verdict.codes],
            risk=self.risk,
            next_change_at=self.next_change_at,
        )
        return out


def risk_of(gaps: GapReport) -> int:
    """SPEC §8's order as one number (lower is riskier): pilots with an open gap, then at-risk,
    then ready; within each, the most gaps not closed first. Ties go by slug (the index)."""
    states = [r.state for r in gaps.results]
    tier = 0 if GapState.open in states else 1 if GapState.at_risk in states else 2
    return tier * 10 + sum(1 for s in states if s is GapState.closed)


def owner_ref_of(p: Any) -> str | None:
    return f"{p.owner_platform}:{p.owner_id}" if p.owner_id else None


def gate_facts(report: PilotReport, today: Any, owner_answered: int) -> GateFacts:
    """GateFacts from the same report the gaps came from. A metric's `measured_on` holds the local
    day of its latest measurement: "some measurement after go-live" holds exactly when the latest
    one's day is after go-live, so the gate's verdict is the one all days would give."""
    tz = report.pilot.checkin_tz or "UTC"
    metrics = tuple(
        GateMetric(m, (local_day(m.latest_at, tz),) if m.latest_at is not None else ()) for m in report.metrics
    )
    return GateFacts(report.pilot.go_live, today, metrics, owner_answered)


def _answered_counts(session: Session, ids: Sequence[int]) -> dict[int, int]:
    """Check-ins answered under the current ownership (due since `owner_since`), per pilot."""
    q = (
        sa.select(col(CheckIn.pilot_id), sa.func.count())
        .join(Pilot, col(Pilot.id) == col(CheckIn.pilot_id))
        .where(
            col(CheckIn.pilot_id).in_(list(ids)),
            col(CheckIn.answered_at).is_not(None),
            sa.or_(col(Pilot.owner_since).is_(None), col(CheckIn.due_at) >= col(Pilot.owner_since)),
        )
        .group_by(col(CheckIn.pilot_id))
    )
    return {pid: int(n) for pid, n in session.execute(q).all()}


def _first_deadlines(session: Session, ids: Sequence[int], now: datetime, grace: timedelta) -> dict[int, datetime]:
    """The earliest grace-period end still ahead, per pilot: when the owner gap may move by itself."""
    q = (
        sa.select(col(CheckIn.pilot_id), sa.func.min(col(CheckIn.due_at)))
        .join(Pilot, col(Pilot.id) == col(CheckIn.pilot_id))
        .where(
            col(CheckIn.pilot_id).in_(list(ids)),
            col(CheckIn.answered_at).is_(None),
            col(CheckIn.due_at) > now - grace,
            sa.or_(col(Pilot.owner_since).is_(None), col(CheckIn.due_at) >= col(Pilot.owner_since)),
        )
        .group_by(col(CheckIn.pilot_id))
    )
    out = {}
    for pid, due in session.execute(q).all():
        if due is not None:
            due = due if due.tzinfo else due.replace(tzinfo=now.tzinfo)
            out[pid] = due + grace
    return out


def _go_live_moment(p: Any, today: Any) -> datetime | None:
    """A go-live still ahead moves the gate when its day begins in the pilot's zone."""
    if p.go_live is None or p.go_live <= today:
        return None
    return datetime.combine(p.go_live, time(0), tzinfo=ZoneInfo(p.checkin_tz or "UTC"))


def score(session: Session, pilots: Sequence[Pilot], now: datetime, grace: timedelta) -> dict[int, Score]:
    """The rules' verdicts for these pilots, in a fixed number of statements."""
    reports = pilot_reports(session, list(pilots), now, grace)
    ids = list(reports)
    answered = _answered_counts(session, ids)
    deadlines = _first_deadlines(session, ids, now, grace)
    out = {}
    for p in pilots:
        if p.id is None:
            continue
        report = reports[p.id]
        today = local_day(now, p.checkin_tz or "UTC")
        verdict = gate(report.gaps, gate_facts(report, today, answered.get(p.id, 0)))
        moments = [m for m in (deadlines.get(p.id), _go_live_moment(p, today)) if m is not None]
        out[p.id] = Score(p.id, p.slug, p.stage, owner_ref_of(p), report.gaps, verdict, min(moments, default=None))
    return out


def _transitions(old: PilotScorecard | None, new: Score, now: datetime) -> list[GapTransition]:
    out = []
    for r in new.gaps.results:
        before = getattr(old, f"{r.gap.value}_state") if old is not None else None
        if before != r.state.value:
            out.append(
                GapTransition(
                    pilot_id=new.pilot_id,
                    gap=r.gap.value,
                    at=now,
                    from_state=before,
                    to_state=r.state.value,
                    code=r.code.value,
                    stage=new.stage,
                )
            )
    was_ready = None if old is None else ("closed" if old.ready else "open")
    is_ready = "closed" if new.ready else "open"
    if was_ready != is_ready:
        first = next((r for r in new.gaps.results if r.state is not GapState.closed), None)
        code = first.code.value if first else Reason.ok.value
        out.append(
            GapTransition(
                pilot_id=new.pilot_id,
                gap=READY,
                at=now,
                from_state=was_ready,
                to_state=is_ready,
                code=code,
                stage=new.stage,
            )
        )
    return out


def store_scores(session: Session, scores: dict[int, Score], now: datetime) -> list[GapTransition]:
    """Upserts the rows and appends a transition for every state that moved; returns those."""
    existing = store.rows_for(session, list(scores))
    moved: list[GapTransition] = []
    for pid, sc in scores.items():
        row = existing.get(pid)
        cols = sc.columns()
        changes = _transitions(row, sc, now)
        moved.extend(changes)
        if row is None:
            row = PilotScorecard(pilot_id=pid, computed_at=now, updated_at=now, **cols)
        else:
            if any(getattr(row, k) != v for k, v in cols.items()):
                row.updated_at = now
            for k, v in cols.items():
                setattr(row, k, v)
            row.computed_at = now
        session.add(row)
    session.add_all(moved)
    return moved


def rescore(session: Session, pilot: Pilot, now: datetime, grace: timedelta) -> list[GapTransition]:
    """The unit of work's one call: this pilot's scorecard from the facts as they now stand
    (pending changes are flushed first), in the change's own transaction."""
    session.flush()
    return store_scores(session, score(session, [pilot], now, grace), now)


def _pilots(session: Session, ids: Sequence[int]) -> list[Pilot]:
    return list(session.exec(select(Pilot).where(col(Pilot.id).in_(list(ids))).order_by(col(Pilot.id))))


def _batches(ids: Sequence[int]) -> Iterator[list[int]]:
    ids = sorted(ids)
    for lo in range(0, len(ids), BATCH):
        yield ids[lo : lo + BATCH]


Moved = Callable[[Session, Sequence[Pilot], list[GapTransition]], None]


def rescore_due(
    session: Session,
    now: datetime,
    grace: timedelta,
    moved: Moved | None = None,
    commit: Callable[[], None] | None = None,
) -> int:
    """The scheduler's call: rescore pilots time alone may have moved since the last tick. The
    mark row (locked on PostgreSQL) keeps two replicas from writing the same transition twice.
    `moved` is handed each batch's pilots and the transitions just stored, in the same transaction
    (the scheduler plans the reopened-gap notice from them: bot/schedule/reopened.py).

    `commit`: each batch is committed on its own, so the write lock (SQLite's is the database's)
    is held for one batch, not for the whole portfolio: a first tick over 10,000 pilots made a
    one-pilot command wait 10 s. Each batch re-takes the mark's lock, so two replicas' batches
    still run one after the other; the mark moves only with the last, so a tick cut short is
    redone by the next (rescoring is idempotent: only a change of state stores a transition)."""
    mark = store.mark(session)
    through = mark.through if mark is not None else now - timedelta(days=8) - grace
    seen = mark.checkin_id if mark is not None else 0
    ids, newest = store.due_for_rescore(session, now, through - grace, now - grace, seen)
    for i, batch in enumerate(_batches(list(ids))):
        if i and commit is not None:
            commit()
            store.mark(session)
        pilots = _pilots(session, batch)
        changes = store_scores(session, score(session, pilots, now, grace), now)
        if moved is not None and changes:
            moved(session, pilots, changes)
    store.set_mark(session, now, newest)
    return len(ids)


MAX_COLLISIONS = 20  # batches another process beat us to, before giving up (it is then not a race)


def backfill(engine: Engine, now: datetime, grace: timedelta) -> int:
    """Scores every pilot without a row (an existing database after 0013), in batches."""
    n, collisions = 0, 0
    while True:
        with session_scope(engine) as s:
            ids = store.missing(s, BATCH)
            if not ids:
                if store.mark(s, lock=False) is None:
                    store.set_mark(s, now)
                    s.commit()
                return n
            store_scores(s, score(s, _pilots(s, ids), now, grace), now)
            if store.mark(s, lock=False) is None:
                store.set_mark(s, now)
            try:
                s.commit()
            except sa.exc.IntegrityError:
                # Another process (a second replica starting, a change's own rescore) stored some
                # of these first: theirs stand, and the next batch leaves them out.
                s.rollback()
                collisions += 1
                if collisions > MAX_COLLISIONS:
                    raise
                continue
            n += len(ids)


def check(engine: Engine, now: datetime, grace: timedelta) -> list[str]:
    """Recomputes every pilot and names each stored field that differs (empty: all agree)."""
    out: list[str] = []
    with session_scope(engine) as s:
        all_ids = list(s.execute(sa.select(col(Pilot.id))).scalars())
        for batch in _batches(all_ids):
            scores = score(s, _pilots(s, batch), now, grace)
            stored = store.rows_for(s, batch)
            for pid, sc in scores.items():
                row = stored.get(pid)
                if row is None:
                    out.append(f"{sc.slug}: no stored scorecard")
                    continue
                for k, v in sc.columns().items():
                    if k == "next_change_at":
                        continue  # bookkeeping of when to look again, not a verdict
                    if getattr(row, k) != v:
                        out.append(f"{sc.slug}: {k} stored {getattr(row, k)!r}, the rules say {v!r}")
    return out


_STATES = {s.value: s for s in GapState}
_REASONS = {r.value: r for r in Reason}
_GAP_KEYS = tuple((g, f"{g.value}_state", f"{g.value}_code") for g in Gap)


def stored_report(row: PilotScorecard | sa.Row[Any]) -> GapReport:
    """The stored verdict as a GapReport (what the views and REST documents take), from a
    scorecard row or a page row of storage.scorecard.page (the same column names)."""
    results = []
    reasons = row.reasons
    for i, (g, state, code) in enumerate(_GAP_KEYS):
        reason = reasons[i] if i < len(reasons) else ""
        # The lookups are the enums' own values (GapState(v) and Reason(v) without the call's cost).
        results.append(GapResult(g, _STATES[getattr(row, state)], reason, _REASONS[getattr(row, code)]))
    return GapReport(row.slug, tuple(results))


@dataclass(frozen=True)
class WeekCount:
    """At the end of an ISO week (UTC; the current week: now): pilots ready, and closed per gap."""

    week: str
    ready: int
    closed: dict[str, int]


def weekly_trend(session: Session, now: datetime, weeks: int = 12) -> list[WeekCount]:
    """From the transitions: a balance before the window (one aggregate), then the window's rows."""
    monday = datetime.combine((now - timedelta(days=now.weekday())).date(), time(0), tzinfo=now.tzinfo)
    start = monday - timedelta(weeks=weeks - 1)
    balance = store.closed_balance_before(session, start)
    names = [g.value for g in Gap] + [READY]
    running = {g: balance.get(g, 0) for g in names}
    rows = store.transitions_between(session, start, now + timedelta(microseconds=1))
    out, i = [], 0
    for w in range(weeks):
        end = min(start + timedelta(weeks=w + 1), now + timedelta(microseconds=1))
        while i < len(rows) and rows[i][1] < end:
            gap, _, before, after = rows[i]
            running[gap] = running.get(gap, 0) + (after == "closed") - (before == "closed")
            i += 1
        iso = (start + timedelta(weeks=w)).isocalendar()
        out.append(WeekCount(f"{iso.year}-W{iso.week:02d}", running[READY], {g.value: running[g.value] for g in Gap}))
    return out


def rescore_slugs(engine: Engine, slugs: Sequence[str], now: datetime, grace: timedelta) -> None:
    """Rescore named pilots now, for writers that add history rows directly (the demo loader)."""
    if not slugs:
        return
    with session_scope(engine) as s:
        pilots = list(s.exec(select(Pilot).where(col(Pilot.slug).in_(list(slugs)))))
        store_scores(s, score(s, pilots, now, grace), now)
        s.commit()
