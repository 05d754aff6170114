"""Use cases that change a pilot's metrics: a baseline, and each measurement against it."""

from __future__ import annotations

from datetime import date

from bot import units
from bot.commands import USAGE, did_you_mean
from bot.errors import UserError
from bot.gaps import MetricFacts, improvement, with_unit
from bot.ports import Actor
from bot.services.unit import Outcome, ServiceBase, retried
from storage import repo
from storage.models import Measurement, Metric, Source

BASELINE = ("unit", "direction", "baseline", "baseline_at")


class MetricChanges(ServiceBase):
    @retried
    def set_baseline(
        self,
        actor: Actor,
        slug: str,
        key: str,
        value: float,
        unit: str | None,
        direction: str | None,
        at: date | None,
    ) -> Outcome:
        today = self.clock.now().date()
        at = at or today
        if at > today:
            raise UserError(f"A baseline cannot be measured in the future ({at.isoformat()}).", USAGE["baseline"])
        with self.change(actor, slug, "baseline") as uow:
            m = repo.metric(uow.session, uow.pilot_id, key, with_void=True)
            # A known metric keeps its unit: `$4.10` does not turn a EUR baseline into dollars.
            value, note = units.fit(value, unit, m.unit if m else (unit or ""), f"baseline {slug} {key}")
            uow.track(m, *BASELINE, metric=key)
            if m is not None and m.voided_at is not None:
                # A new baseline of a withdrawn metric starts it again; its void measurements stay void.
                m.voided_at = m.voided_by = m.void_reason = None
            if m is None:
                m = Metric(
                    pilot_id=uow.pilot_id,
                    key=key,
                    unit=unit or "",
                    direction=direction or "lower",
                    baseline=value,
                    baseline_at=at,
                    created_at=uow.now,
                )
            else:
                m.unit = m.unit or unit or ""  # a known unit stays (units.fit refused another)
                m.direction = direction or m.direction
                m.baseline, m.baseline_at = value, at
            uow.save(m)
        go_live = uow.pilot.go_live
        when = (
            "before go-live"
            if go_live and at <= go_live
            else ("after go-live (a reconstructed before-state)" if go_live else "go-live not set yet")
        )
        return Outcome(
            f"Baseline for `{slug}` {key}: {with_unit(value, m.unit)} ({m.direction} is better), "
            f"measured {at.isoformat()}, {when}.",
            [note] if note else [],
            pilot=uow.pilot,
        )

    def record_measurement(
        self, actor: Actor, slug: str, key: str, value: float, unit: str | None, source: Source = Source.command
    ) -> Outcome:
        with self.change(actor, slug, "measure") as uow:
            m = repo.metric(uow.session, uow.pilot_id, key)
            if m is None:
                known = [x.key for x, _ in repo.metrics_with_latest(uow.session, uow.pilot_id)]
                close = did_you_mean(key, known)
                hint = f" (known: {', '.join(known)})" if known else ""
                raise UserError(
                    f"`{slug}` has no metric `{key}`{hint}.{close} To start a new metric, record its "
                    f"baseline first: `baseline {slug} {key} <value> <unit>`."
                )
            value, note = units.fit(value, unit, m.unit, f"measure {slug} {key}")
            uow.save(
                Measurement(
                    metric_id=m.id or 0, value=value, measured_at=uow.now, source=source.value, recorded_by=actor.ref
                )
            )
            uow.audit(None, {"metric": key, "value": value, "source": source.value})
        facts = MetricFacts(m.key, m.unit, m.direction, m.baseline, m.baseline_at, value, uow.now)
        return Outcome(f"Recorded {improvement(facts)}.", [note] if note else [], pilot=uow.pilot)
