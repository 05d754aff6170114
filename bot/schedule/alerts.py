"""When an eval run warrants an alert (SPEC §5), as a pending Escalation row in the outbox.

The row holds facts (old and new score, bar, version; its kind says below-bar or drop) and its
destinations; bot/schedule/messages.py words the alert when it is sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.lifecycle import policy as policy_of
from bot.ports import Destination
from storage.models import Escalation, EscalationKind, EvalPolicy, EvalRun, Pilot


def eval_alert_kind(previous: EvalRun | None, run: EvalRun, policy: EvalPolicy) -> EscalationKind | None:
    """Below the bar while the previous run was not, or a drop of at least `drop_alert` points;
    the worse of the two when both hold, None when neither does."""
    below_now = run.score < policy.threshold
    was_ok = previous is None or previous.score >= policy.threshold
    # Rounded: 65.1 - 63.1 is 1.9999999999999929 in floating point, yet a 2-point drop.
    dropped = previous is not None and round(previous.score - run.score, 6) >= policy.drop_alert
    if below_now and was_ok:
        return EscalationKind.eval_below_bar
    if dropped:
        return EscalationKind.eval_drop
    return None


def alert_destinations(pilot: Pilot) -> list[Destination]:
    """The owner (DM) first, then the escalation channel; either may be missing."""
    out = []
    if pilot.owner_id and pilot.owner_platform:
        out.append(Destination.user(pilot.owner_platform, pilot.owner_id, pilot.owner_name))
    if pilot.escalation_channel_id and pilot.escalation_platform:
        out.append(Destination.channel(pilot.escalation_platform, pilot.escalation_channel_id))
    return out


def eval_facts(previous: EvalRun | None, run: EvalRun, policy: EvalPolicy) -> dict[str, Any]:
    return {
        "old": previous.score if previous else None,
        "new": run.score,
        "bar": policy.threshold,
        "version": run.version,
    }


def eval_alerts(
    pilot: Pilot, previous: EvalRun | None, run: EvalRun, policy: EvalPolicy | None, now: datetime
) -> list[Escalation]:
    """One alert per run at most, keyed by run id so it is never sent twice."""
    if policy is None or run.id is None or not policy_of(pilot.stage).alerts:
        return []  # paused and retired pilots raise no alerts (SPEC §8)
    kind = eval_alert_kind(previous, run, policy)
    if kind is None:
        return []
    return [
        Escalation(
            pilot_id=pilot.id or 0,
            kind=kind.value,
            dedupe_key=f"eval:{run.id}",
            targets=[d.key for d in alert_destinations(pilot)],
            facts=eval_facts(previous, run, policy),
            payload={},
            created_at=now,
        )
    ]
