"""Corrections (SPEC §8): `void` withdraws the latest record, never deletes it.

A void row keeps who, when and why (`voided_at`, `voided_by`, `void_reason`); every reader that
judges (the gap rules, the ship gate, alerts, charts, the REST reports, /metrics) leaves it out
(storage/repo.py, storage/snapshot.py, storage/cases.py), and `history`/`audit` show it. Voiding
the latest eval makes the previous run the latest again, so the quality gap follows it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.errors import UserError
from bot.gaps import fmt_pct, with_unit
from bot.ports import Actor
from bot.services.unit import Outcome, ServiceBase, UnitOfWork
from storage import repo
from storage.models import EvalRun, Measurement, Metric

MAX_REASON = 500


def _mark(row: EvalRun | Measurement | Metric, actor: Actor, reason: str | None, now: datetime) -> None:
    row.voided_at, row.voided_by, row.void_reason = now, actor.ref, (reason or None)


class Corrections(ServiceBase):
    def void_eval(self, actor: Actor, slug: str, reason: str | None = None) -> Outcome:
        with self.change(actor, slug, "void") as uow:
            run = next(iter(repo.latest_evals(uow.session, uow.pilot_id, 1)), None)
            if run is None:
                raise UserError(f"`{slug}` has no eval run to withdraw; `history {slug}` lists its records.")
            _mark(run, actor, _clean(reason), uow.now)
            uow.save(run)
            shown = f"eval {fmt_pct(run.score)} on {run.cases} cases of {run.run_at.date().isoformat()}"
            _audit(uow, {"record": "eval", "score": run.score, "cases": run.cases}, run.void_reason)
            previous = next(iter(repo.latest_evals(uow.session, uow.pilot_id, 1)), None)
        now_latest = (
            f"the latest is now {fmt_pct(previous.score)} on {previous.cases} cases of "
            f"{previous.run_at.date().isoformat()}"
            if previous
            else "no eval run is left"
        )
        return Outcome(f"Withdrew the {shown} of `{slug}` (kept, marked void); {now_latest}.", pilot=uow.pilot)

    def void_measurement(self, actor: Actor, slug: str, key: str, reason: str | None = None) -> Outcome:
        with self.change(actor, slug, "void") as uow:
            m = _metric(uow, slug, key)
            row = repo.latest_measurement(uow.session, m.id or 0)
            if row is None:
                raise UserError(f"`{slug}` {key} has no measurement to withdraw; `history {slug}` lists its records.")
            _mark(row, actor, _clean(reason), uow.now)
            uow.save(row)
            _audit(uow, {"record": "measure", "metric": key, "value": row.value}, row.void_reason)
            latest = repo.latest_measurement(uow.session, m.id or 0)
        after = f"the latest is now {with_unit(latest.value, m.unit)}" if latest else "no measurement is left"
        return Outcome(
            f"Withdrew `{slug}` {key} {with_unit(row.value, m.unit)} of "
            f"{row.measured_at.date().isoformat()} (kept, marked void); {after}.",
            pilot=uow.pilot,
        )

    def void_baseline(self, actor: Actor, slug: str, key: str, reason: str | None = None) -> Outcome:
        """Withdraws the metric: its baseline and every measurement against it."""
        with self.change(actor, slug, "void") as uow:
            m = _metric(uow, slug, key)
            why = _clean(reason)
            _mark(m, actor, why, uow.now)
            uow.save(m)
            withdrawn = 0
            for row in repo.live_measurements(uow.session, [m.id or 0]):
                _mark(row, actor, why, uow.now)
                uow.save(row)
                withdrawn += 1
            _audit(
                uow, {"record": "baseline", "metric": key, "baseline": m.baseline, "measurements": withdrawn}, why
            )
        return Outcome(
            f"Withdrew the `{slug}` metric {key} (baseline {with_unit(m.baseline, m.unit)} and {withdrawn} "
            f"measurement{'s' if withdrawn != 1 else ''}; kept, marked void).",
            [f"A new baseline starts it again: `baseline {slug} {key} <value> <unit>`."],
            uow.pilot,
        )


def _clean(reason: str | None) -> str | None:
    text = (reason or "").strip()
    return text[:MAX_REASON] or None


def _metric(uow: UnitOfWork, slug: str, key: str) -> Metric:
    m = repo.metric(uow.session, uow.pilot_id, key)
    if m is None:
        known = [x.key for x, _ in repo.metrics_with_latest(uow.session, uow.pilot_id)]
        hint = f" (known: {', '.join(known)})" if known else ""
        raise UserError(f"`{slug}` has no metric `{key}`{hint} to withdraw.")
    return m


def _audit(uow: UnitOfWork, record: dict[str, Any], reason: str | None) -> None:
    uow.audit(record, {**record, "void": True, "reason": reason})
