"""Reads a pilot (or the portfolio) from storage into gap facts and reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.gaps import (
    CheckInFacts,
    EvalFacts,
    GapReport,
    MetricFacts,
    PilotFacts,
    evaluate,
)
from storage import repo
from storage.models import EvalPolicy, EvalRun, PathItem, Pilot


@dataclass(frozen=True)
class PilotReport:
    pilot: Pilot
    facts: PilotFacts
    gaps: GapReport
    metrics: tuple[MetricFacts, ...]
    evals: tuple[EvalRun, ...]  # newest first, at most two
    policy: EvalPolicy | None
    path: tuple[PathItem, ...]


def _eval_facts(run: EvalRun | None) -> EvalFacts | None:
    if run is None:
        return None
    return EvalFacts(run.score, run.cases, run.run_at, run.version)


def _checkin_facts(rows: list) -> tuple[CheckInFacts, ...]:  # type: ignore[type-arg]
    rows = sorted(rows, key=lambda c: c.due_at, reverse=True)
    return tuple(CheckInFacts(c.due_at, c.answered_at) for c in rows)


def pilot_report(session: Session, pilot: Pilot, now: datetime, grace: timedelta) -> PilotReport:
    """One pilot's full report in a fixed number of statements, whatever its history length."""
    assert pilot.id is not None
    return _report(
        pilot,
        repo.metrics_with_latest(session, pilot.id),
        repo.policy(session, pilot.id),
        tuple(repo.latest_evals(session, pilot.id, 2)),
        tuple(repo.path_items(session, pilot.id)),
        repo.recent_due_checkins(session, pilot.id, now, 3),
        now,
        grace,
    )


def pilot_reports(session: Session, pilots: list[Pilot], now: datetime, grace: timedelta) -> dict[int, PilotReport]:
    """Reports for many pilots in a fixed number of statements (the scheduled check-in fan-out)."""
    ids = [p.id for p in pilots if p.id is not None]
    metrics = repo.metrics_with_latest_for(session, ids)
    policies = repo.policies_for(session, ids)
    evals = repo.latest_evals_for(session, ids, 2)
    paths = repo.path_items_for(session, ids)
    checkins = repo.recent_due_checkins_for(session, ids, now, 3)
    return {
        p.id: _report(
            p, metrics[p.id], policies.get(p.id), tuple(evals[p.id]), tuple(paths[p.id]), checkins[p.id], now, grace
        )
        for p in pilots
        if p.id is not None
    }


def _report(
    pilot: Pilot,
    metric_rows: list,  # type: ignore[type-arg]
    policy: EvalPolicy | None,
    evals: tuple[EvalRun, ...],
    path: tuple[PathItem, ...],
    checkins: list,  # type: ignore[type-arg]
    now: datetime,
    grace: timedelta,
) -> PilotReport:
    metrics = tuple(
        MetricFacts(
            m.key,
            m.unit,
            m.direction,
            m.baseline,
            m.baseline_at,
            latest.value if latest else None,
            latest.measured_at if latest else None,
        )
        for m, latest in metric_rows
    )
    facts = PilotFacts(
        slug=pilot.slug,
        name=pilot.name,
        go_live=pilot.go_live,
        has_owner=pilot.owner_id is not None,
        baseline_dates=tuple(m.baseline_at for m in metrics),
        threshold=policy.threshold if policy else None,
        min_cases=policy.min_cases if policy else 100,
        latest_eval=_eval_facts(evals[0] if evals else None),
        path_states={p.item: p.state for p in path},
        due_checkins=_checkin_facts(checkins),
    )
    return PilotReport(pilot, facts, evaluate(facts, now, grace), metrics, evals, policy, path)


@dataclass(frozen=True)
class PortfolioEntry:
    pilot: Pilot
    gaps: GapReport


def portfolio(session: Session, now: datetime, grace: timedelta) -> list[PortfolioEntry]:
    """Gap states of every pilot from six set-based statements (no per-pilot queries)."""
    pilots = repo.portfolio_rows(session)
    baselines = repo.baseline_dates_by_pilot(session)
    policies = repo.policies_by_pilot(session)
    latest = repo.latest_eval_by_pilot(session)
    paths = repo.path_states_by_pilot(session)
    checkins = repo.recent_due_checkins_by_pilot(session, now, 3)
    out = []
    for p in pilots:
        assert p.id is not None
        pol = policies.get(p.id)
        facts = PilotFacts(
            slug=p.slug,
            name=p.name,
            go_live=p.go_live,
            has_owner=p.owner_id is not None,
            baseline_dates=tuple(baselines.get(p.id, ())),
            threshold=pol.threshold if pol else None,
            min_cases=pol.min_cases if pol else 100,
            latest_eval=_eval_facts(latest.get(p.id)),
            path_states=paths.get(p.id, {}),
            due_checkins=_checkin_facts(checkins.get(p.id, [])),
        )
        out.append(PortfolioEntry(p, evaluate(facts, now, grace)))
    return out
