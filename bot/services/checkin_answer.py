"""The weekly check-in's form and its answer: one implementation for the Slack modal and the Teams card.

(When a check-in is due and how it is sent is the schedule's business; this is only the form.)
"""

from __future__ import annotations

from sqlmodel import Session

from bot.forms import CheckinForm, build_checkin_form, parse_checkin_answer
from bot.ports import Actor
from bot.schedule.cadence import period_of
from bot.services.evals import add_eval
from bot.services.unit import Outcome, ServiceBase
from storage import repo
from storage.models import CheckIn, Escalation, Measurement, Metric, Pilot, Source


class CheckinAnswers(ServiceBase):
    def checkin_form(self, slug: str) -> CheckinForm:
        with self.reading(slug) as (s, pilot):
            return self._form(s, pilot)

    def answer_checkin(self, actor: Actor, slug: str, raw: dict[str, object]) -> Outcome:
        """Validates all fields (FormErrors), refuses an actor who may not change the pilot, then
        records the measurements, the optional eval run and the answered check-in in one unit of work."""
        with self.change(actor, slug, "checkin_answer", authorize_now=False) as uow:
            s, now, pilot = uow.session, uow.now, uow.pilot
            metric_rows = repo.metrics_with_latest(s, uow.pilot_id)
            checkin = repo.latest_unanswered_checkin(s, uow.pilot_id, now)
            form = self._form(s, pilot, metric_rows, checkin)
            answer = parse_checkin_answer(form, raw)
            uow.authorize()
            metrics = {m.key: m for m, _ in metric_rows}
            for key, value in answer.values.items():
                m = metrics.get(key)
                if m is not None and m.id is not None:
                    row = Measurement(
                        metric_id=m.id, value=value, measured_at=now, source=Source.checkin.value, recorded_by=actor.ref
                    )
                    uow.save(row)
            if checkin is None:
                # Answered before the scheduler asked: keep the report against this period.
                checkin = repo.checkin_for_period(s, uow.pilot_id, form.period) or CheckIn(
                    pilot_id=uow.pilot_id, period=form.period, owner_ref=actor.ref, due_at=now
                )
            checkin.answered_at = checkin.answered_at or now
            checkin.report = {
                "values": answer.values,
                "eval_score": answer.eval_score,
                "triage": answer.triage,
                "by": actor.ref,
                "at": now.isoformat(),
            }
            uow.save(checkin)
            uow.audit(None, {"period": checkin.period, **answer.values})
            lines = [f"Thanks — recorded {len(answer.values)} metric value(s) for {form.period}."]
            alerts: list[Escalation] = []
            if answer.eval_score is not None:
                out = add_eval(uow, answer.eval_score, None, None, Source.checkin)
                lines.extend([out.text, *out.lines])
                alerts = out.alerts
        if answer.triage:
            lines.append(f"Triage note saved: {answer.triage[:200]}")
        return Outcome(f"Check-in for `{slug}` answered.", lines, pilot, alerts)

    def _form(
        self,
        s: Session,
        pilot: Pilot,
        metric_rows: list[tuple[Metric, Measurement | None]] | None = None,
        checkin: CheckIn | None = None,
    ) -> CheckinForm:
        assert pilot.id is not None
        if metric_rows is None:
            metric_rows = repo.metrics_with_latest(s, pilot.id)
            checkin = repo.latest_unanswered_checkin(s, pilot.id, self.clock.now())
        metrics = [(m.key, m.unit, last.value if last else None) for m, last in metric_rows]
        period = checkin.period if checkin else period_of(self.clock.now(), pilot.checkin_tz)
        return build_checkin_form(pilot.slug, pilot.name, period, metrics)
