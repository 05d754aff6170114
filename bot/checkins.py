"""The weekly check-in's form and answer: one implementation for the Slack modal and the Teams card."""

from __future__ import annotations

from sqlmodel import Session

from bot.cadence import period_of
from bot.forms import CheckinForm, build_checkin_form, parse_checkin_answer
from bot.ports import Actor
from bot.services import Outcome, Services
from storage import repo
from storage.db import session_scope
from storage.models import CheckIn, Escalation, Measurement, Pilot, Source


class CheckinServices:
    """The check-in form and its answer: one implementation for the Slack modal and the Teams card."""

    def __init__(self, services: Services) -> None:
        self.s = services

    def form(self, slug: str) -> CheckinForm:
        with session_scope(self.s.engine) as s:
            pilot = self.s._pilot(s, slug, "status")
            assert pilot.id is not None
            metrics = [
                (m.key, m.unit, last.value if last else None) for m, last in repo.metrics_with_latest(s, pilot.id)
            ]
            row = self._open_checkin(s, pilot)
            period = row.period if row else period_of(self.s.clock.now(), pilot.checkin_tz)
            return build_checkin_form(pilot.slug, pilot.name, period, metrics)

    def answer(self, actor: Actor, slug: str, raw: dict[str, object]) -> Outcome:
        """Validates all fields (FormErrors), then records measurements and answers the check-in."""
        now = self.s.clock.now()
        form = self.form(slug)
        answer = parse_checkin_answer(form, raw)
        with session_scope(self.s.engine) as s:
            pilot = self.s._pilot(s, slug, "status")
            self.s._may_change(pilot, actor)
            assert pilot.id is not None
            metrics = {m.key: m for m, _ in repo.metrics_with_latest(s, pilot.id)}
            for key, value in answer.values.items():
                m = metrics.get(key)
                if m is None or m.id is None:
                    continue
                s.add(
                    Measurement(
                        metric_id=m.id, value=value, measured_at=now, source=Source.checkin.value, recorded_by=actor.ref
                    )
                )
            row = self._open_checkin(s, pilot)
            if row is None:
                # Answered before the scheduler asked: keep the report against this period.
                row = repo.checkin_for_period(s, pilot.id, form.period) or CheckIn(
                    pilot_id=pilot.id, period=form.period, owner_ref=actor.ref, due_at=now
                )
            row.answered_at = row.answered_at or now
            row.report = {
                "values": answer.values,
                "eval_score": answer.eval_score,
                "triage": answer.triage,
                "by": actor.ref,
                "at": now.isoformat(),
            }
            s.add(row)
            self.s._audit(s, actor, pilot, "checkin_answer", None, {"period": row.period, **answer.values})
            s.commit()
        lines = [f"Thanks — recorded {len(answer.values)} metric value(s) for {form.period}."]
        alerts: list[Escalation] = []
        if answer.eval_score is not None:
            cases = self._last_cases(slug)
            out = self.s.record_eval(actor, slug, answer.eval_score, cases, None, Source.checkin)
            lines.extend([out.text, *out.lines])
            alerts = out.alerts
        if answer.triage:
            lines.append(f"Triage note saved: {answer.triage[:200]}")
        return Outcome(f"Check-in for `{slug}` answered.", lines, pilot, alerts)

    def _last_cases(self, slug: str) -> int:
        # A score typed into the check-in re-scores the same eval set as the last run.
        with session_scope(self.s.engine) as s:
            pilot = self.s._pilot(s, slug, "eval")
            assert pilot.id is not None
            last = next(iter(repo.latest_evals(s, pilot.id, 1)), None)
            pol = repo.policy(s, pilot.id)
            return last.cases if last else (pol.min_cases if pol else 100)

    def _open_checkin(self, s: Session, pilot: Pilot) -> CheckIn | None:
        assert pilot.id is not None
        return repo.latest_unanswered_checkin(s, pilot.id, self.s.clock.now())
