"""The weekly check-in's form and answer: one implementation for the Slack modal and the Teams card."""

from __future__ import annotations

from sqlmodel import Session

from bot.forms import CheckinForm, build_checkin_form, parse_checkin_answer
from bot.ports import Actor
from bot.schedule.cadence import period_of
from bot.services import Outcome, Services
from storage import repo
from storage.db import session_scope
from storage.models import CheckIn, Escalation, Measurement, Metric, Pilot, Source


class CheckinServices:
    """The check-in form and its answer: one implementation for the Slack modal and the Teams card."""

    def __init__(self, services: Services) -> None:
        self.s = services

    def form(self, slug: str) -> CheckinForm:
        with session_scope(self.s.engine) as s:
            return self._form(s, self.s._pilot(s, slug, "status"))

    def answer(self, actor: Actor, slug: str, raw: dict[str, object]) -> Outcome:
        """Validates all fields (FormErrors), then, in one unit of work, records the measurements,
        the optional eval run and the answered check-in, each with its audit event."""
        now = self.s.clock.now()
        with session_scope(self.s.engine) as s:
            pilot = self.s._pilot(s, slug, "status")
            assert pilot.id is not None
            metric_rows = repo.metrics_with_latest(s, pilot.id)
            checkin = repo.latest_unanswered_checkin(s, pilot.id, now)
            form = self._form(s, pilot, metric_rows, checkin)
            answer = parse_checkin_answer(form, raw)
            self.s._may_change(pilot, actor)
            metrics = {m.key: m for m, _ in metric_rows}
            for key, value in answer.values.items():
                m = metrics.get(key)
                if m is None or m.id is None:
                    continue
                s.add(
                    Measurement(
                        metric_id=m.id, value=value, measured_at=now, source=Source.checkin.value, recorded_by=actor.ref
                    )
                )
            if checkin is None:
                # Answered before the scheduler asked: keep the report against this period.
                checkin = repo.checkin_for_period(s, pilot.id, form.period) or CheckIn(
                    pilot_id=pilot.id, period=form.period, owner_ref=actor.ref, due_at=now
                )
            checkin.answered_at = checkin.answered_at or now
            checkin.report = {
                "values": answer.values,
                "eval_score": answer.eval_score,
                "triage": answer.triage,
                "by": actor.ref,
                "at": now.isoformat(),
            }
            s.add(checkin)
            self.s._audit(s, actor, pilot, "checkin_answer", None, {"period": checkin.period, **answer.values})
            lines = [f"Thanks — recorded {len(answer.values)} metric value(s) for {form.period}."]
            alerts: list[Escalation] = []
            if answer.eval_score is not None:
                out = self.s.add_eval(s, actor, pilot, answer.eval_score, None, None, Source.checkin)
                lines.extend([out.text, *out.lines])
                alerts = out.alerts
            s.commit()
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
            checkin = repo.latest_unanswered_checkin(s, pilot.id, self.s.clock.now())
        metrics = [(m.key, m.unit, last.value if last else None) for m, last in metric_rows]
        period = checkin.period if checkin else period_of(self.s.clock.now(), pilot.checkin_tz)
        return build_checkin_form(pilot.slug, pilot.name, period, metrics)
