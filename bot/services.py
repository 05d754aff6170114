"""Use cases. Each opens one unit of work, checks permission, writes the change and its
audit event together, and commits; a refused command raises UserError before any write."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.clock import Clock, SystemClock
from bot.commands import USAGE, ChannelRef, UserRef
from bot.config import Settings
from bot.errors import NotFound, UserError
from bot.gaps import fmt_number, fmt_pct
from bot.ports import Actor
from bot.reports import PilotReport, PortfolioEntry, portfolio, report_from
from bot.schedule.alerts import eval_alerts
from bot.schedule.messages import alert_line
from storage import repo
from storage.db import session_scope
from storage.models import (
    AuditEvent,
    Escalation,
    EvalPolicy,
    EvalRun,
    Measurement,
    Metric,
    PathItem,
    Pilot,
    Source,
)
from storage.snapshot import load as load_snapshot

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a write did, for the reply: a headline and any extra lines."""

    text: str
    lines: list[str] = field(default_factory=list)
    pilot: Pilot | None = None
    alerts: list[Escalation] = field(default_factory=list)


def snapshot(row: Any, *fields: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        v = getattr(row, f, None)
        out[f] = v.isoformat() if isinstance(v, date | datetime) else v
    return out


def mention_platform(actor: Actor, pilot: Pilot) -> str:
    """The platform a mentioned user or channel lives on: the actor's, except that an admin on the
    console editing a Slack or Teams pilot means that pilot's platform (the console cannot deliver)."""
    if actor.platform != "console":
        return actor.platform
    for platform in (pilot.owner_platform, pilot.escalation_platform):
        if platform and platform != "console":
            return platform
    return "console"


class Services:
    def __init__(self, engine: Engine, settings: Settings, clock: Clock | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.clock: Clock = clock or SystemClock()

    @property
    def grace(self) -> timedelta:
        return timedelta(hours=self.settings.pilotbot_checkin_grace_hours)

    # ---- reads ----

    def pilot_report(self, slug: str) -> PilotReport:
        now = self.clock.now()
        with self.engine.connect() as conn:
            snap = load_snapshot(conn, slug, now, self.grace)
        if snap is None:
            with session_scope(self.engine) as s:
                self._pilot(s, slug, "status")  # raises NotFound with "did you mean"
        assert snap is not None
        return report_from(snap, now, self.grace)

    def require_pilot(self, slug: str) -> None:
        """NotFound (with "did you mean") unless the pilot exists: one indexed read."""
        with session_scope(self.engine) as s:
            self._pilot(s, slug, "status")

    def portfolio(self) -> list[PortfolioEntry]:
        with session_scope(self.engine) as s:
            return portfolio(s, self.clock.now(), self.grace)

    def history(
        self, slug: str, n: int = 26
    ) -> tuple[Pilot, list[EvalRun], EvalPolicy | None, list[tuple[Metric, list[Measurement]]]]:
        with session_scope(self.engine) as s:
            pilot = self._pilot(s, slug, "history")
            assert pilot.id is not None
            evals = repo.eval_history(s, pilot.id, n)
            pol = repo.policy(s, pilot.id)
            metrics = [m for m, _ in repo.metrics_with_latest(s, pilot.id)]
            hist = repo.measurement_history(s, [m.id for m in metrics if m.id is not None], n)
            return pilot, evals, pol, [(m, hist.get(m.id or 0, [])) for m in metrics]

    def audit_log(self, slug: str) -> tuple[Pilot, list[AuditEvent]]:
        with session_scope(self.engine) as s:
            pilot = self._pilot(s, slug, "audit")
            assert pilot.id is not None
            return pilot, repo.audit_events(s, pilot.id, 20)

    # ---- writes ----

    def new_pilot(self, actor: Actor, slug: str, name: str | None) -> Outcome:
        now = self.clock.now()
        with session_scope(self.engine) as s:
            if repo.pilot_by_slug(s, slug) is not None:
                raise UserError(f"A pilot `{slug}` already exists; `status {slug}` shows it, or pick another slug.")
            tz = self.settings.pilotbot_timezone
            pilot = Pilot(
                slug=slug,
                name=name or slug.replace("-", " ").capitalize(),
                created_by=actor.ref,
                checkin_tz=tz,
                created_at=now,
                updated_at=now,
            )
            s.add(pilot)
            s.flush()
            self._audit(s, actor, pilot, "new", None, snapshot(pilot, "slug", "name"))
            s.commit()
            return Outcome(
                f"Registered `{slug}` ({pilot.name}).",
                [f"Next: `owner {slug} @someone`, then `baseline {slug} <metric> <value> <unit>`."],
                pilot,
            )

    def set_owner(self, actor: Actor, slug: str, user: UserRef, display_name: str | None = None) -> Outcome:
        now = self.clock.now()
        with session_scope(self.engine) as s:
            pilot = self._pilot(s, slug, "owner")
            self._may_change(pilot, actor)
            before = snapshot(pilot, "owner_platform", "owner_id", "owner_name")
            name = display_name or user.name or user.id
            platform = mention_platform(actor, pilot)
            if (pilot.owner_platform, pilot.owner_id) != (platform, user.id):
                pilot.owner_since = now
            pilot.owner_platform, pilot.owner_id, pilot.owner_name = platform, user.id, name
            pilot.updated_at = now
            s.add(pilot)
            self._audit(s, actor, pilot, "owner", before, snapshot(pilot, "owner_platform", "owner_id", "owner_name"))
            s.commit()
            return Outcome(f"@{name} now owns `{slug}` and gets the weekly check-in.", pilot=pilot)

    def set_go_live(self, actor: Actor, slug: str, day: date) -> Outcome:
        with session_scope(self.engine) as s:
            pilot = self._pilot(s, slug, "golive")
            self._may_change(pilot, actor)
            before = snapshot(pilot, "go_live")
            pilot.go_live = day
            pilot.updated_at = self.clock.now()
            s.add(pilot)
            self._audit(s, actor, pilot, "golive", before, snapshot(pilot, "go_live"))
            s.commit()
            return Outcome(f"`{slug}` went live on {day.isoformat()}.", pilot=pilot)

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
        now = self.clock.now()
        at = at or now.date()
        if at > now.date():
            raise UserError(f"A baseline cannot be measured in the future ({at.isoformat()}).", USAGE["baseline"])
        with session_scope(self.engine) as s:
            pilot = self._pilot(s, slug, "baseline")
            self._may_change(pilot, actor)
            assert pilot.id is not None
            m = repo.metric(s, pilot.id, key)
            before = snapshot(m, "unit", "direction", "baseline", "baseline_at") if m else None
            if m is None:
                m = Metric(
                    pilot_id=pilot.id,
                    key=key,
                    unit=unit or "",
                    direction=direction or "lower",
                    baseline=value,
                    baseline_at=at,
                    created_at=now,
                )
            else:
                m.unit = unit if unit is not None else m.unit
                m.direction = direction or m.direction
                m.baseline, m.baseline_at = value, at
            s.add(m)
            self._audit(
                s,
                actor,
                pilot,
                "baseline",
                before,
                {"metric": key, **snapshot(m, "unit", "direction", "baseline", "baseline_at")},
            )
            s.commit()
            from bot.gaps import with_unit

            when = (
                "before go-live"
                if pilot.go_live and at <= pilot.go_live
                else ("after go-live (a reconstructed before-state)" if pilot.go_live else "go-live not set yet")
            )
            return Outcome(
                f"Baseline for `{slug}` {key}: {with_unit(value, m.unit)} ({m.direction} is better), "
                f"measured {at.isoformat()}, {when}.",
                pilot=pilot,
            )

    def record_measurement(
        self, actor: Actor, slug: str, key: str, value: float, unit: str | None, source: Source = Source.command
    ) -> Outcome:
        now = self.clock.now()
        with session_scope(self.engine) as s:
            pilot = self._pilot(s, slug, "measure")
            self._may_change(pilot, actor)
            assert pilot.id is not None
            m = repo.metric(s, pilot.id, key)
            if m is None:
                known = [x.key for x, _ in repo.metrics_with_latest(s, pilot.id)]
                hint = f" (known: {', '.join(known)})" if known else ""
                raise UserError(
                    f"`{slug}` has no metric `{key}`{hint}; record its baseline first: "
                    f"`baseline {slug} {key} <value> <unit>`."
                )
            if unit is not None and m.unit and unit.lower() != m.unit.lower():
                raise UserError(
                    f"`{key}` is measured in {m.unit}, not {unit}: write `measure {slug} {key} {fmt_number(value)}`."
                )
            row = Measurement(
                metric_id=m.id or 0, value=value, measured_at=now, source=source.value, recorded_by=actor.ref
            )
            s.add(row)
            self._audit(s, actor, pilot, "measure", None, {"metric": key, "value": value, "source": source.value})
            s.commit()
            from bot.gaps import MetricFacts, improvement

            facts = MetricFacts(m.key, m.unit, m.direction, m.baseline, m.baseline_at, value, now)
            return Outcome(f"Recorded {improvement(facts)}.", pilot=pilot)

    def set_threshold(
        self, actor: Actor, slug: str, pct: float, min_cases: int | None, drop_alert: float | None
    ) -> Outcome:
        with session_scope(self.engine) as s:
            pilot = self._pilot(s, slug, "threshold")
            self._may_change(pilot, actor)
            assert pilot.id is not None
            pol = repo.policy(s, pilot.id)
            before = snapshot(pol, "threshold", "min_cases", "drop_alert") if pol else None
            if pol is None:
                pol = EvalPolicy(pilot_id=pilot.id, threshold=pct)
            pol.threshold = pct
            if min_cases is not None:
                pol.min_cases = min_cases
            if drop_alert is not None:
                pol.drop_alert = drop_alert
            s.add(pol)
            self._audit(s, actor, pilot, "threshold", before, snapshot(pol, "threshold", "min_cases", "drop_alert"))
            s.commit()
            return Outcome(
                f"Acceptance bar for `{slug}`: {fmt_pct(pct)} on at least {pol.min_cases} cases "
                f"(alert on a drop of {fmt_number(pol.drop_alert)} pts).",
                pilot=pilot,
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
        with session_scope(self.engine) as s:
            pilot = self._pilot(s, slug, "eval")
            self._may_change(pilot, actor)
            out = self.add_eval(s, actor, pilot, score, cases, version, source, field_scores)
            s.commit()
            return out

    def add_eval(
        self,
        s: Session,
        actor: Actor,
        pilot: Pilot,
        score: float,
        cases: int | None,
        version: str | None,
        source: Source,
        field_scores: dict[str, float] | None = None,
    ) -> Outcome:
        """The eval run, its audit event and any alert, inside the caller's unit of work.

        `cases=None` re-scores the same eval set as the last run (the check-in's optional score).
        """
        now = self.clock.now()
        assert pilot.id is not None
        previous = next(iter(repo.latest_evals(s, pilot.id, 1)), None)
        pol = repo.policy(s, pilot.id)
        if cases is None:
            cases = previous.cases if previous else (pol.min_cases if pol else 100)
        run = EvalRun(
            pilot_id=pilot.id,
            score=score,
            cases=cases,
            version=version,
            field_scores=field_scores,
            run_at=now,
            source=source.value,
            recorded_by=actor.ref,
        )
        s.add(run)
        s.flush()
        self._audit(s, actor, pilot, "eval", None, snapshot(run, "score", "cases", "version", "source"))
        alerts = eval_alerts(pilot, previous, run, pol, now)
        for a in alerts:
            s.add(a)
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
        return Outcome(f"Recorded eval for `{pilot.slug}`: {fmt_pct(score)} on {cases} cases.", lines, pilot, alerts)

    def set_path(self, actor: Actor, slug: str, item: str, state: str, note: str | None) -> Outcome:
        now = self.clock.now()
        with session_scope(self.engine) as s:
            pilot = self._pilot(s, slug, "path")
            self._may_change(pilot, actor)
            assert pilot.id is not None
            row = repo.path_item(s, pilot.id, item)
            before = snapshot(row, "state", "note") if row else None
            if row is None:
                row = PathItem(pilot_id=pilot.id, item=item, updated_at=now)
            row.state, row.updated_at = state, now
            if note is not None:
                row.note = note
            s.add(row)
            self._audit(s, actor, pilot, "path", before, {"item": item, **snapshot(row, "state", "note")})
            s.commit()
            return Outcome(f"`{slug}` {item}: {state}.", pilot=pilot)

    def set_cadence(self, actor: Actor, slug: str, weekday: int, time: str, tz: str | None) -> Outcome:
        from bot.views import weekday_name

        with session_scope(self.engine) as s:
            pilot = self._pilot(s, slug, "checkin")
            self._may_change(pilot, actor)
            before = snapshot(pilot, "checkin_weekday", "checkin_time", "checkin_tz")
            pilot.checkin_weekday, pilot.checkin_time = weekday, time
            pilot.checkin_tz = tz or pilot.checkin_tz
            ZoneInfo(pilot.checkin_tz)
            pilot.updated_at = self.clock.now()
            s.add(pilot)
            self._audit(
                s, actor, pilot, "checkin", before, snapshot(pilot, "checkin_weekday", "checkin_time", "checkin_tz")
            )
            s.commit()
            return Outcome(
                f"`{slug}` check-in: every {weekday_name(weekday)} at {time} {pilot.checkin_tz}.", pilot=pilot
            )

    def set_escalation(self, actor: Actor, slug: str, channel: ChannelRef) -> Outcome:
        with session_scope(self.engine) as s:
            pilot = self._pilot(s, slug, "escalate")
            self._may_change(pilot, actor)
            before = snapshot(pilot, "escalation_platform", "escalation_channel_id", "escalation_channel_name")
            pilot.escalation_platform = mention_platform(actor, pilot)
            pilot.escalation_channel_id = channel.id
            pilot.escalation_channel_name = channel.name or channel.id
            pilot.updated_at = self.clock.now()
            s.add(pilot)
            self._audit(
                s,
                actor,
                pilot,
                "escalate",
                before,
                snapshot(pilot, "escalation_platform", "escalation_channel_id", "escalation_channel_name"),
            )
            s.commit()
            return Outcome(f"Escalations for `{slug}` go to #{pilot.escalation_channel_name}.", pilot=pilot)

    # ---- helpers ----

    def _pilot(self, s: Session, slug: str, cmd: str) -> Pilot:
        pilot = repo.pilot_by_slug(s, slug)
        if pilot is None:
            close = repo.close_slugs(s, slug)
            if close:
                raise NotFound(f"No pilot `{slug}`; did you mean `{close[0]}`?")
            raise NotFound(f"No pilot `{slug}`; `status` lists them, `new {slug} <name>` registers it.")
        return pilot

    def is_admin(self, actor: Actor) -> bool:
        return actor.ref in self.settings.admins

    def _may_change(self, pilot: Pilot, actor: Actor) -> None:
        if self.is_admin(actor):
            return
        if actor.platform == "api":
            # Only adapters/api builds an "api" actor, and only after verifying its bearer token and the
            # token's pilot scope (bot/tokens.py): the token itself is the authorisation, admin-like
            # within its scope. Chat surfaces never produce this platform.
            return
        if pilot.owner_id is not None:
            if (pilot.owner_platform, pilot.owner_id) == (actor.platform, actor.user_id):
                return
            raise UserError(
                f"Only the owner of `{pilot.slug}` (@{pilot.owner_name or pilot.owner_id}) or an admin can change it."
            )
        if pilot.created_by == actor.ref:
            return
        raise UserError(f"`{pilot.slug}` has no owner yet, so only its creator or an admin can change it.")

    def _audit(
        self,
        s: Session,
        actor: Actor,
        pilot: Pilot,
        action: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        s.add(
            AuditEvent(
                actor=actor.ref, pilot_id=pilot.id, action=action, before=before, after=after, at=self.clock.now()
            )
        )
