"""Use cases that change a pilot's quality control: its acceptance bar and each eval run."""

from __future__ import annotations

from bot.errors import UserError
from bot.flags import stop_below
from bot.gaps import fmt_number, fmt_pct
from bot.ports import Actor
from bot.schedule.alerts import eval_alerts
from bot.schedule.messages import alert_line
from bot.services.unit import Outcome, ServiceBase, UnitOfWork, snapshot
from storage import repo
from storage.models import EvalPolicy, EvalRun, Source


class EvalChanges(ServiceBase):
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
        lines = []
        if pol.kill_below is not None:
            lines.append(f"An eval run below {fmt_pct(pol.kill_below)} turns `{slug}` off in production (kill switch).")
        return Outcome(
            f"Acceptance bar for `{slug}`: {fmt_pct(pct)} on at least {pol.min_cases} cases "
            f"(alert on a drop of {fmt_number(pol.drop_alert)} pts).",
            lines,
            pilot=uow.pilot,
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
    ) -> Outcome:
        with self.change(actor, slug, "eval") as uow:
            return add_eval(uow, score, cases, version, source, field_scores)


def add_eval(
    uow: UnitOfWork,
    score: float,
    cases: int | None,
    version: str | None,
    source: Source,
    field_scores: dict[str, float] | None = None,
) -> Outcome:
    """The eval run, its audit event and any alert, inside the caller's unit of work.

    `cases=None` re-scores the same eval set as the last run (the check-in's optional score).
    """
    s, pilot = uow.session, uow.pilot
    previous = next(iter(repo.latest_evals(s, uow.pilot_id, 1)), None)
    pol = repo.policy(s, uow.pilot_id)
    if cases is None:
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
    uow.audit(None, snapshot(run, "score", "cases", "version", "source"), "eval")
    alerts = eval_alerts(pilot, previous, run, pol, uow.now)
    stopped = stop_below(uow, pol, run, alerts)  # kill-below: the flag goes off in this transaction
    for a in alerts:
        uow.save(a)
    lines = []
    if pol is None:
        lines.append(f"No acceptance bar yet: `threshold {pilot.slug} <pct> min-cases <n>`.")
    else:
        verdict = "clears" if score >= pol.threshold else "is below"
        lines.append(f"{fmt_pct(score)} {verdict} the {fmt_pct(pol.threshold)} bar.")
        if cases < pol.min_cases:
            lines.append(f"{cases} cases is fewer than the {pol.min_cases} the bar needs.")
    for a in alerts:
        lines.append(alert_line(pilot, a.kind, a.facts or {}))
    if stopped:
        lines.append(stopped)
    return Outcome(f"Recorded eval for `{pilot.slug}`: {fmt_pct(score)} on {cases} cases.", lines, pilot, alerts)
