"""A gap that reopens while the pilot is in production (SPEC §8), told once to the owner and the
escalation channel, whatever reopened it.

Both writers of the stored scorecard feed it the transitions they just stored: the unit of work of
a change (bot/services/unit.py: an eval below the bar) and the scheduler's rescore of what time
alone moved (bot/schedule/plan.py: a check-in past its grace period). The notice is keyed by the
*closed stretch that ended*: `reopen:<pilot>:<gap>:<moment that gap last closed>`. Whichever path
sees the reopening first, on whichever replica, computes the same key and the outbox's unique key
lets one row in; a second tick sees no transition, and a gap that stays open (at risk, then
orphaned) is the same stretch. Only after the gap closes again is a reopening news again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.gaps import Gap, GapState
from bot.schedule.alerts import alert_destinations
from bot.scorecard import READY, stored_report
from storage.models import Escalation, EscalationKind, GapTransition, Pilot, PilotScorecard, Stage


def is_reopening(t: GapTransition) -> bool:
    """A gap (not the `ready` pseudo-gap) that was closed and is not now, scored in production."""
    return (
        t.gap != READY
        and t.stage == Stage.production.value
        and t.from_state == GapState.closed.value
        and t.to_state != GapState.closed.value
    )


def _closed_since(session: Session, pilot_id: int, gap: str, before: datetime) -> datetime | None:
    """When this gap last became closed (the stretch the reopening ends); None if no row says it."""
    q = (
        select(col(GapTransition.at))
        .where(
            col(GapTransition.pilot_id) == pilot_id,
            col(GapTransition.gap) == gap,
            col(GapTransition.to_state) == GapState.closed.value,
            col(GapTransition.at) <= before,
        )
        .order_by(col(GapTransition.at).desc(), col(GapTransition.id).desc())
        .limit(1)
    )
    return session.exec(q).first()


def dedupe_key(pilot_id: int, gap: str, closed_since: datetime | None) -> str:
    since = closed_since.astimezone(UTC).isoformat() if closed_since is not None else "unknown"
    return f"reopen:{pilot_id}:{gap}:{since}"


def reopened(session: Session, pilot: Pilot, moved: Sequence[GapTransition], now: datetime) -> list[Escalation]:
    """One `gap_reopened` row per reopening among `moved` (this pilot's transitions just stored,
    with its scorecard row). Rows are not added: the caller inserts them under their dedupe key."""
    if pilot.id is None:
        return []
    mine = [t for t in moved if t.pilot_id == pilot.id and is_reopening(t)]
    if not mine:
        return []
    session.flush()  # the scorecard row and transitions the caller just stored
    row = session.get(PilotScorecard, pilot.id)
    results = {r.gap.value: r for r in stored_report(row).results} if row is not None else {}
    out = []
    for t in mine:
        r = results.get(t.gap)
        facts: dict[str, Any] = {
            "gap": t.gap,
            "label": Gap(t.gap).label,
            "state": t.to_state,
            "reason": r.reason if r is not None else "",
        }
        out.append(
            Escalation(
                pilot_id=pilot.id,
                kind=EscalationKind.gap_reopened.value,
                dedupe_key=dedupe_key(pilot.id, t.gap, _closed_since(session, pilot.id, t.gap, t.at)),
                targets=[d.key for d in alert_destinations(pilot)],
                facts=facts,
                payload={},
                created_at=now,
            )
        )
    return out
