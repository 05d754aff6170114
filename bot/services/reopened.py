"""A gap that reopens while the pilot is in production (SPEC §8), told once.

One small function on purpose: today it compares the pilot's gap report before and after a
change inside the unit of work; a stored scorecard with transitions can later feed it the
same two reports (or its transitions) without touching the callers.
"""

from __future__ import annotations

from datetime import datetime

from bot.gaps import GapReport, GapState
from bot.schedule.alerts import alert_destinations
from storage.models import Escalation, EscalationKind, Pilot, Stage


def reopened(pilot: Pilot, before: GapReport, after: GapReport, now: datetime) -> list[Escalation]:
    """One `gap_reopened` row per gap that was closed before and is not now, for a production pilot.

    The dedupe key names the gap and the moment it reopened, so each reopening is told once
    (a retried unit of work reuses the same moment), and a later reopening again is news.
    """
    if pilot.stage != Stage.production.value or pilot.id is None:
        return []
    was = {r.gap: r.state for r in before.results}
    rows = []
    for r in after.results:
        if was.get(r.gap) is GapState.closed and r.state is not GapState.closed:
            rows.append(
                Escalation(
                    pilot_id=pilot.id,
                    kind=EscalationKind.gap_reopened.value,
                    dedupe_key=f"reopen:{pilot.id}:{r.gap.value}:{now.isoformat()}",
                    targets=[d.key for d in alert_destinations(pilot)],
                    facts={"gap": r.gap.value, "label": r.gap.label, "state": r.state.value, "reason": r.reason},
                    payload={},
                    created_at=now,
                )
            )
    return rows
