"""The weekly check-in's form and its answer: one implementation for the Slack modal, the Teams
card and the `answer` command.

(When a check-in is due and how it is sent is the schedule's business; this is only the form.)

An answer is recorded once per (pilot, period): the check-in keeps a digest of the normalised
answer, so the same submission arriving again (a Slack retry after a late ack, a double click, a
Teams card submitted twice) changes nothing and says "already recorded". A different answer for
the same period replaces the first: the first answer's measurements and eval run are withdrawn in
the same transaction and their values kept in the audit event.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.errors import UserError
from bot.forms import (
    FORM_FAILED,
    CheckinAnswer,
    CheckinForm,
    answer_command,
    build_checkin_form,
    parse_checkin_answer,
)
from bot.ports import Actor
from bot.replies import Reply, Tone
from bot.schedule.cadence import period_of
from bot.schedule.verdicts import count_answer
from bot.services.evals import add_eval
from bot.services.unit import Outcome, ServiceBase, UnitOfWork
from storage import repo
from storage.models import CheckIn, Escalation, EvalRun, Measurement, Metric, Pilot, Source

_PERIOD_RE = re.compile(r"\d{4}-W\d{2}")
ALREADY_RECORDED = "Already recorded: this answer for {period} was saved before; nothing changed."
REPLACED = "This replaces the answer you gave for {period} earlier; its values were withdrawn (kept, marked void)."


def form_failed_reply(form: CheckinForm) -> Reply:
    """Said privately when a surface could not show the form (Slack: an expired trigger id)."""
    return Reply(text=FORM_FAILED, tone=Tone.warning, lines=(f"`{answer_command(form)}`",))


def answer_digest(answer: CheckinAnswer) -> str:
    """sha256 of the answer as recorded: values sorted, note trimmed, so only a real change differs."""
    normal = {
        "values": sorted((k, round(v, 9)) for k, v in answer.values.items()),
        "eval": None if answer.eval_score is None else round(answer.eval_score, 6),
        "note": " ".join((answer.triage or "").split()) or None,
    }
    return hashlib.sha256(json.dumps(normal, sort_keys=True).encode()).hexdigest()


class CheckinAnswers(ServiceBase):
    def checkin_form(self, slug: str) -> CheckinForm:
        with self.reading(slug) as (s, pilot):
            return self._form(s, pilot)

    def answer_checkin(self, actor: Actor, slug: str, raw: dict[str, object], period: str | None = None) -> Outcome:
        """Validates all fields (FormErrors), refuses anyone but the owner, then records the answer
        of `period` (the one the form showed; None: the open check-in, else the current week)."""
        try:
            return self._answer(actor, slug, raw, period)
        except IntegrityError:
            # Two copies of one submission raced to create the period's check-in row: the loser
            # runs again and finds the winner's answer (so: "already recorded").
            return self._answer(actor, slug, raw, period)

    def vet_checkin_answer(self, actor: Actor, slug: str, raw: dict[str, object], period: str | None = None) -> None:
        """The answer's checks alone, writing nothing: FormErrors or UserError exactly as
        `answer_checkin` would raise them now (a surface that must reply before the write, Slack's
        modal ack, shows them inline and leaves the write to after its ack)."""
        with self.reading(slug) as (s, pilot):
            may_change = functools.partial(self.may_change, pilot, actor)
            self._vetted(s, pilot, actor, raw, period, self.clock.now(), may_change, lock=False)

    def _vetted(
        self,
        s: Session,
        pilot: Pilot,
        actor: Actor,
        raw: dict[str, object],
        period: str | None,
        now: datetime,
        authorize: Callable[[], None],
        *,
        lock: bool = True,
    ) -> tuple[list[tuple[Metric, Measurement | None]], CheckIn | None, CheckinForm, CheckinAnswer]:
        """The one sequence of checks: every field first (a mistyped one is pointed at before
        anything else), then who may change the pilot, then that only its owner answers. `lock`:
        the check-in row is locked for the write that follows (PostgreSQL)."""
        assert pilot.id is not None
        metric_rows = repo.metrics_with_latest(s, pilot.id)
        checkin = self._target(s, pilot, period, now, lock=lock)
        form = self._form(s, pilot, metric_rows, checkin)
        answer = parse_checkin_answer(form, raw)
        authorize()
        self._owner_only(pilot, actor)
        return metric_rows, checkin, form, answer

    def _answer(self, actor: Actor, slug: str, raw: dict[str, object], period: str | None) -> Outcome:
        with self.change(actor, slug, "checkin_answer", authorize_now=False) as uow:
            s, now, pilot = uow.session, uow.now, uow.pilot
            metric_rows, checkin, form, answer = self._vetted(s, pilot, actor, raw, period, now, uow.authorize)
            digest = answer_digest(answer)
            if checkin is not None and checkin.answer_digest == digest:
                return Outcome(f"Check-in for `{slug}` answered.", [ALREADY_RECORDED.format(period=form.period)], pilot)
            replaced = _withdraw(uow, checkin) if checkin is not None and checkin.answered_at else None
            if checkin is None:
                # Answered before the scheduler asked: this row makes plan.py skip the period.
                checkin = CheckIn(pilot_id=uow.pilot_id, period=form.period, owner_ref=actor.ref, due_at=now)
            lines, alerts = _record(uow, checkin, answer, metric_rows, digest)
            uow.audit(replaced, {"period": checkin.period, **answer.values, "eval_score": answer.eval_score})
            if replaced is not None:
                lines.insert(1, REPLACED.format(period=form.period))
        return Outcome(f"Check-in for `{slug}` answered.", lines, pilot, alerts)

    def _target(self, s: Session, pilot: Pilot, period: str | None, now: datetime, lock: bool) -> CheckIn | None:
        """The check-in this answer is for, locked against a concurrent answer (PostgreSQL) when
        the answer is being written."""
        assert pilot.id is not None
        current = period_of(now, pilot.checkin_tz)
        if period is None or not _PERIOD_RE.fullmatch(period) or period > current:
            open_one = repo.latest_unanswered_checkin(s, pilot.id, now)
            period = open_one.period if open_one is not None else current
        query = select(CheckIn).where(col(CheckIn.pilot_id) == pilot.id, col(CheckIn.period) == period)
        return s.exec(query.with_for_update() if lock else query).first()

    def _owner_only(self, pilot: Pilot, actor: Actor) -> None:
        if pilot.owner_id is None:
            raise UserError(f"`{pilot.slug}` has no owner yet: `owner {pilot.slug} <@user>` sets who answers it.")
        if (pilot.owner_platform, pilot.owner_id) != (actor.platform, actor.user_id):
            raise UserError(
                f"Only the owner of `{pilot.slug}` (@{pilot.owner_name or pilot.owner_id}) answers its check-in."
            )

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


def _record(
    uow: UnitOfWork,
    checkin: CheckIn,
    answer: CheckinAnswer,
    metric_rows: list[tuple[Metric, Measurement | None]],
    digest: str,
) -> tuple[list[str], list[Escalation]]:
    """The measurements, the optional eval run and the answered check-in (their ids in the report,
    so a replacing answer can withdraw exactly these)."""
    s, now, actor = uow.session, uow.now, uow.actor
    metrics = {m.key: m for m, _ in metric_rows}
    rows: list[Measurement] = []
    for key, value in answer.values.items():
        m = metrics.get(key)
        if m is not None and m.id is not None:
            rows.append(
                uow.save(
                    Measurement(
                        metric_id=m.id, value=value, measured_at=now, source=Source.checkin.value, recorded_by=actor.ref
                    )
                )
            )
    lines = [f"Thanks — recorded {len(answer.values)} metric value(s) for {checkin.period}."]
    alerts: list[Escalation] = []
    run_id: int | None = None
    if answer.eval_score is not None:
        out = add_eval(uow, answer.eval_score, None, None, Source.checkin)
        lines.extend([out.text, *out.lines])
        alerts = out.alerts
        run = s.exec(
            select(EvalRun).where(col(EvalRun.pilot_id) == uow.pilot_id).order_by(col(EvalRun.id).desc())
        ).first()
        run_id = run.id if run is not None else None
    s.flush()
    first = checkin.answered_at is None
    checkin.answered_at = checkin.answered_at or now
    checkin.answer_digest = digest
    checkin.report = {
        "values": answer.values,
        "eval_score": answer.eval_score,
        "triage": answer.triage,
        "by": actor.ref,
        "at": now.isoformat(),
        "measurement_ids": [r.id for r in rows],
        "eval_run_id": run_id,
    }
    uow.save(checkin)
    s.flush()
    count_answer(s, checkin, now, uow.grace, first)  # the /metrics counters move with the answer
    if answer.triage:
        lines.append(f"Triage note saved: {answer.triage[:200]}")
    return lines, alerts


VOID_REASON = "replaced by a second answer to the same check-in"


def _withdraw(uow: UnitOfWork, checkin: CheckIn) -> dict[str, Any]:
    """Voids the first answer's records of this period (void, never delete: SPEC §8); returns its
    values for the audit event."""
    s = uow.session
    report = checkin.report or {}
    ids = [i for i in report.get("measurement_ids") or [] if isinstance(i, int)]
    measurements = list(s.exec(select(Measurement).where(col(Measurement.id).in_(ids)))) if ids else []
    run_id = report.get("eval_run_id")
    run = s.get(EvalRun, run_id) if isinstance(run_id, int) else None
    for row in [*measurements, *([run] if run is not None else [])]:
        row.voided_at, row.voided_by, row.void_reason = uow.now, uow.actor.ref, VOID_REASON
        s.add(row)
    s.flush()
    return {
        "replaced": True,
        "period": checkin.period,
        **(report.get("values") or {}),
        "eval_score": report.get("eval_score"),
    }
