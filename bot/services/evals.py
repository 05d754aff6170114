"""Use cases that change a pilot's quality control: its acceptance bar and each eval run.

A labelled run (per-case results from a JSONL, CSV or JUnit file) stores its cases, compares them
with the previous labelled run and raises its alert in the run's own transaction (SPEC §10).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.errors import UserError
from bot.evals import record
from bot.evals.compare import CaseHistory, Flips, flips_text
from bot.evals.gate import Gate
from bot.flags import stop_below
from bot.gaps import fmt_number, fmt_pct
from bot.ports import Actor
from bot.schedule.alerts import alert_destinations, eval_alerts
from bot.schedule.messages import alert_line
from bot.services.unit import Outcome, ServiceBase, UnitOfWork, retried, snapshot
from storage import repo
from storage.cases import CaseResult
from storage.models import Escalation, EscalationKind, EvalPolicy, EvalRun, Pilot, Source


@dataclass
class EvalOutcome(Outcome):
    """A recorded run: the reply, plus what CI and the import read (flips, gate verdict)."""

    flips: Flips | None = None  # None for a bare score (no per-case results)
    gate: Gate | None = None
    run_id: int | None = None


class EvalChanges(ServiceBase):
    @retried
    def set_threshold(
        self,
        actor: Actor,
        slug: str,
        pct: float,
        min_cases: int | None,
        drop_alert: float | None,
        kill_below: float | None = None,
    ) -> Outcome:
        with self.change(actor, slug, "threshold") as uow:
            pol = repo.policy(uow.session, uow.pilot_id)
            before = (pol.threshold, pol.min_cases) if pol is not None else None
            uow.track(pol, "threshold", "min_cases", "drop_alert", "kill_below")
            pol = pol or EvalPolicy(pilot_id=uow.pilot_id, threshold=pct)
            pol.threshold = pct
            if min_cases is not None:
                pol.min_cases = min_cases
            if drop_alert is not None:
                pol.drop_alert = drop_alert
            if kill_below is not None:
                pol.kill_below = kill_below
            if pol.kill_below is not None and pol.kill_below > pct:
                raise UserError(
                    f"The kill-below score {fmt_pct(pol.kill_below)} is above the new bar {fmt_pct(pct)}: "
                    f"write `threshold {slug} {fmt_pct(pct)} kill-below <pct>` with a score at or under the bar."
                )
            uow.save(pol)
            lowered = bar_lowered(uow, before, pol) if before is not None else None
        lines = ["Announced to the owner and the escalation channel: the bar went down."] if lowered else []
        if pol.kill_below is not None:
            lines.append(f"An eval run below {fmt_pct(pol.kill_below)} turns `{slug}` off in production (kill switch).")
        return Outcome(
            f"Acceptance bar for `{slug}`: {fmt_pct(pct)} on at least {pol.min_cases} cases "
            f"(alert on a drop of {fmt_number(pol.drop_alert)} pts).",
            lines,
            pilot=uow.pilot,
            alerts=[lowered] if lowered else [],
        )

    def record_eval(
        self,
        actor: Actor,
        slug: str,
        score: float,
        cases: int,
        version: str | None,
        source: Source = Source.command,
        field_scores: dict[str, float] | None = None,
        results: Sequence[CaseResult] | None = None,
    ) -> EvalOutcome:
        """One eval run; with `results` (a labelled file) its per-case results go in the same transaction."""
        with self.change(actor, slug, "eval") as uow:
            return add_eval(uow, score, cases, version, source, field_scores, results)

    def cases(self, slug: str) -> tuple[Pilot, CaseHistory]:
        """Flaky and always-failing cases over the pilot's last 10 labelled runs (`cases <slug>`)."""
        with self.reading(slug) as (s, pilot):
            assert pilot.id is not None
            return pilot, record.history(s, pilot.id)


def bar_lowered(uow: UnitOfWork, before: tuple[float, int], pol: EvalPolicy) -> Escalation | None:
    """The announcement of a lowered threshold or min-cases (who, from, to), in this unit of work."""
    old_pct, old_min = before
    facts: dict[str, Any] = {}
    if pol.threshold < old_pct:
        facts["threshold"] = [old_pct, pol.threshold]
    if pol.min_cases < old_min:
        facts["min_cases"] = [old_min, pol.min_cases]
    if not facts:
        return None
    a = uow.actor
    facts["by"] = {"platform": a.platform, "id": a.user_id, "name": a.display_name}
    row = Escalation(
        pilot_id=uow.pilot_id,
        kind=EscalationKind.bar_lowered.value,
        dedupe_key=f"bar:{uow.pilot_id}:{uow.now.isoformat()}:{old_pct}>{pol.threshold}:{old_min}>{pol.min_cases}",
        targets=[d.key for d in alert_destinations(uow.pilot)],
        facts=facts,
        payload={},
        created_at=uow.now,
    )
    return uow.save(row)


def add_eval(
    uow: UnitOfWork,
    score: float,
    cases: int | None,
    version: str | None,
    source: Source,
    field_scores: dict[str, float] | None = None,
    results: Sequence[CaseResult] | None = None,
) -> EvalOutcome:
    """The eval run, its per-case results, its audit event and any alert, inside the caller's unit of work.

    `cases=None` re-scores the same eval set as the last run (the check-in's optional score).
    """
    s, pilot = uow.session, uow.pilot
    pol = repo.policy(s, uow.pilot_id)
    if cases is None:
        previous = next(iter(repo.latest_evals(s, uow.pilot_id, 1)), None)
        cases = previous.cases if previous else (pol.min_cases if pol else 100)
    run = EvalRun(
        pilot_id=uow.pilot_id,
        score=score,
        cases=cases,
        version=version,
        field_scores=field_scores,
        run_at=uow.now,
        source=source.value,
        recorded_by=uow.actor.ref,
    )
    uow.save(run)
    s.flush()
    assert run.id is not None
    uow.audit(None, snapshot(run, "score", "cases", "version", "source"), "eval")
    flipped = record.attach_results(s, uow.pilot_id, run.id, results) if results is not None else None
    candidates = eval_alerts(s, pilot, run, pol, uow.now, flipped)
    stopped = stop_below(uow, pol, run, candidates)  # kill-below: the flag goes off in this transaction
    # Saved through the unit of work: a key a concurrent run already took adds (and says) nothing.
    alerts = [a for a in candidates if uow.save(a).id is not None]
    verdict = record.gate_for(s, uow.pilot_id, pilot.slug, score, cases)
    lines = []
    if pol is None:
        lines.append(f"No acceptance bar yet: `threshold {pilot.slug} <pct> min-cases <n>`.")
    else:
        verdict_word = "clears" if score >= pol.threshold else "is below"
        lines.append(f"{fmt_pct(score)} {verdict_word} the {fmt_pct(pol.threshold)} bar.")
        if cases < pol.min_cases:
            lines.append(f"{cases} cases is fewer than the {pol.min_cases} the bar needs.")
    if flipped is not None:
        lines.append(flips_text(flipped))
    for a in alerts:
        lines.append(alert_line(pilot, a.kind, a.facts or {}))
    if stopped:
        lines.append(stopped)
    return EvalOutcome(
        f"Recorded eval for `{pilot.slug}`: {fmt_pct(score)} on {cases} cases.",
        lines,
        pilot,
        list(alerts),
        flips=flipped,
        gate=verdict,
        run_id=run.id,
    )
