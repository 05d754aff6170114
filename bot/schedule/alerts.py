"""When an eval run warrants an alert (SPEC §5, §10), as a pending Escalation row in the outbox.

Severities: a run below the bar is a `page` (owner and escalation channel); a drop of at least
`drop_alert` points while still above the bar is a `warn` (owner only). A *breach* lasts from the
first run below the bar until a run clears it again: it pages once, and the run that ends it sends a
recovery notice to the people the page went to.

Exactly once, also when several runs are recorded at the same moment: a breach is named by the id of
the last run that cleared the bar before it (its *anchor*), so every run of one breach computes the
same dedupe key (`eval:page:<pilot>:<anchor>`, `eval:recovered:<pilot>:<anchor>`); a warn is keyed by
the run it dropped from. A concurrent duplicate loses on the unique key inside a savepoint and the
run itself is still recorded.

The row holds facts (scores, bar, version, severity, the flipped cases); bot/schedule/messages.py
words it when it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.evals.compare import Flips
from bot.lifecycle import policy as policy_of
from bot.ports import Destination
from storage.models import Escalation, EscalationKind, EvalPolicy, EvalRun, Pilot

PAGE, WARN = "page", "warn"
SEVERITY = {
    EscalationKind.eval_below_bar.value: PAGE,
    EscalationKind.eval_drop.value: WARN,
    EscalationKind.eval_recovered.value: PAGE,  # told to the people the page reached
}


@dataclass(frozen=True)
class Breach:
    """Where a run stands in the pilot's breaches (read by `breach_of`)."""

    anchor: int  # id of the last run before this one that cleared the bar; 0 when none did
    paged: bool  # this breach has paged already
    recovered: bool  # and its recovery was told
    page_targets: tuple[str, ...] = ()  # who the page went to (the recovery goes to them)


def eval_alert_kind(
    previous: EvalRun | None, run: EvalRun, policy: EvalPolicy, breach: Breach | None = None
) -> EscalationKind | None:
    """Page when below the bar and this breach has not paged; recovery when the run clears the bar
    and ends a paged breach; warn on a drop of at least `drop_alert` points while above the bar.

    Without `breach` (no history read), a run is a new breach when the previous run was not below."""
    below_now = run.score < policy.threshold
    if breach is None:
        was_ok = previous is None or previous.score >= policy.threshold
        breach = Breach(0, paged=not was_ok, recovered=False)
    if below_now:
        return None if breach.paged else EscalationKind.eval_below_bar
    if breach.paged and not breach.recovered:
        return EscalationKind.eval_recovered
    # Rounded: 65.1 - 63.1 is 1.9999999999999929 in floating point, yet a 2-point drop.
    dropped = previous is not None and round(previous.score - run.score, 6) >= policy.drop_alert
    return EscalationKind.eval_drop if dropped else None


def alert_destinations(pilot: Pilot, severity: str = PAGE) -> list[Destination]:
    """The owner (DM) first, then for a page the escalation channel; either may be missing."""
    out = []
    if pilot.owner_id and pilot.owner_platform:
        out.append(Destination.user(pilot.owner_platform, pilot.owner_id, pilot.owner_name))
    if severity == PAGE and pilot.escalation_channel_id and pilot.escalation_platform:
        out.append(Destination.channel(pilot.escalation_platform, pilot.escalation_channel_id))
    return out


def _before(pilot_id: int, run: EvalRun) -> Any:
    """The pilot's non-void runs recorded before `run` (run_at, then id), newest first."""
    at = col(EvalRun.run_at)
    return (
        select(EvalRun)
        .where(col(EvalRun.pilot_id) == pilot_id, col(EvalRun.voided_at).is_(None))
        .where(sa.or_(at < run.run_at, sa.and_(at == run.run_at, col(EvalRun.id) < run.id)))
        .order_by(at.desc(), col(EvalRun.id).desc())
    )


def previous_run(s: Session, pilot_id: int, run: EvalRun) -> EvalRun | None:
    return s.exec(_before(pilot_id, run).limit(1)).first()


def breach_of(s: Session, pilot_id: int, run: EvalRun, policy: EvalPolicy) -> Breach:
    """The breach `run` belongs to (or would end), and whether it paged and recovered already."""
    cleared = s.exec(_before(pilot_id, run).where(col(EvalRun.score) >= policy.threshold).limit(1)).first()
    anchor = cleared.id if cleared is not None and cleared.id is not None else 0
    keys = {_key("page", pilot_id, anchor): "page", _key("recovered", pilot_id, anchor): "recovered"}
    rows = s.exec(select(Escalation).where(col(Escalation.dedupe_key).in_(list(keys)))).all()
    got = {keys[r.dedupe_key]: r for r in rows}
    page = got.get("page")
    return Breach(anchor, page is not None, "recovered" in got, tuple(page.targets) if page else ())


def _key(what: str, pilot_id: int, ref: int) -> str:
    return f"eval:{what}:{pilot_id}:{ref}"


def flips_facts(f: Flips | None) -> dict[str, Any]:
    """The flipped cases as plain JSON: `[[id, [fields...]], ...]` and the totals."""
    if f is None or not f.compared:
        return {}
    return {
        "regressed": [[r.id, list(r.failing)] for r in f.regressed],
        "regressed_total": f.regressed_total,
        "fixed": [[r.id, list(r.failing)] for r in f.fixed],
        "fixed_total": f.fixed_total,
    }


def eval_facts(
    previous: EvalRun | None, run: EvalRun, policy: EvalPolicy, kind: EscalationKind | None = None
) -> dict[str, Any]:
    return {
        "old": previous.score if previous else None,
        "new": run.score,
        "bar": policy.threshold,
        "version": run.version,
        "severity": SEVERITY.get(kind.value, PAGE) if kind is not None else None,
        "run_id": run.id,
    }


def _dedupe(kind: EscalationKind, pilot_id: int, previous: EvalRun | None, breach: Breach) -> str:
    if kind == EscalationKind.eval_below_bar:
        return _key("page", pilot_id, breach.anchor)
    if kind == EscalationKind.eval_recovered:
        return _key("recovered", pilot_id, breach.anchor)
    return _key("warn", pilot_id, previous.id if previous and previous.id else 0)


def eval_alerts(
    s: Session, pilot: Pilot, run: EvalRun, policy: EvalPolicy | None, now: datetime, flipped: Flips | None = None
) -> list[Escalation]:
    """The alert `run` raises (at most one), under its breach's dedupe key; the caller saves it
    through the unit of work, whose insert ignores a key already taken (a concurrent twin).

    Call after the run is flushed: the history is read from there, so runs serialised by the
    database (SQLite) see each other."""
    if policy is None or run.id is None or pilot.id is None or not policy_of(pilot.stage).alerts:
        return []  # paused and retired pilots raise no alerts (SPEC §8)
    previous = previous_run(s, pilot.id, run)
    breach = breach_of(s, pilot.id, run, policy)
    kind = eval_alert_kind(previous, run, policy, breach)
    if kind is None:
        return []
    severity = SEVERITY[kind.value]
    targets = list(breach.page_targets) if kind == EscalationKind.eval_recovered and breach.page_targets else None
    return [
        Escalation(
            pilot_id=pilot.id,
            kind=kind.value,
            dedupe_key=_dedupe(kind, pilot.id, previous, breach),
            targets=targets if targets is not None else [d.key for d in alert_destinations(pilot, severity)],
            facts={**eval_facts(previous, run, policy, kind), **flips_facts(flipped)},
            payload={},
            created_at=now,
        )
    ]
