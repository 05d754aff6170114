"""When an eval run warrants a ping (SPEC §5), as pending Escalation rows in the outbox."""

from __future__ import annotations

from datetime import datetime

from bot.gaps import fmt_number, fmt_pct
from storage.models import EscalationKind, EvalPolicy, EvalRun, Pilot


def eval_alerts(
    pilot: Pilot, previous: EvalRun | None, run: EvalRun, policy: EvalPolicy | None, now: datetime
) -> list:  # list[Escalation]
    """Below the bar while the previous run was not, or a drop of at least `drop_alert` points.

    One alert per run at most (the worse of the two), keyed by run id so it is never sent twice.
    """
    from storage.models import Escalation

    if policy is None or run.id is None:
        return []
    below_now = run.score < policy.threshold
    was_ok = previous is None or previous.score >= policy.threshold
    # Rounded: 65.1 - 63.1 is 1.9999999999999929 in floating point, yet a 2-point drop.
    dropped = previous is not None and round(previous.score - run.score, 6) >= policy.drop_alert
    if below_now and was_ok:
        kind = EscalationKind.eval_below_bar
    elif dropped:
        kind = EscalationKind.eval_drop
    else:
        return []
    old = fmt_pct(previous.score) if previous else "no previous run"
    version = f" (version {run.version})" if run.version else ""
    if kind is EscalationKind.eval_below_bar:
        headline = (
            f"`{pilot.slug}` eval fell below the bar: {old} → {fmt_pct(run.score)}{version}, "
            f"bar {fmt_pct(policy.threshold)}."
        )
    else:
        drop = fmt_number(round(previous.score - run.score, 1)) if previous else "0"
        headline = (
            f"`{pilot.slug}` eval dropped {drop} pts: {old} → {fmt_pct(run.score)}{version}, "
            f"bar {fmt_pct(policy.threshold)}."
        )
    targets = []
    if pilot.owner_id:
        targets.append(f"{pilot.owner_platform}:user:{pilot.owner_id}")
    if pilot.escalation_channel_id:
        targets.append(f"{pilot.escalation_platform}:channel:{pilot.escalation_channel_id}")
    who = []
    if pilot.owner_id:
        who.append(f"@{pilot.owner_name or pilot.owner_id}")
    if pilot.escalation_channel_id:
        who.append(f"#{pilot.escalation_channel_name or pilot.escalation_channel_id}")
    return [
        Escalation(
            pilot_id=pilot.id or 0,
            kind=kind.value,
            dedupe_key=f"eval:{run.id}",
            targets=targets,
            payload={
                "headline": headline,
                "todo": f"Look at the failing cases of this run, fix, and re-run: `eval {pilot.slug} <pct> cases <n>`.",
                "old": previous.score if previous else None,
                "new": run.score,
                "bar": policy.threshold,
                "version": run.version,
                "targets_text": ("Pinging " + " and ".join(who) + ".")
                if who
                else "No owner or escalation channel to ping.",
            },
            created_at=now,
        )
    ]
