"""Reads a pilot (or the portfolio) from storage into gap facts and reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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


def _eval_facts(run: Any) -> EvalFacts | None:
    if run is None:
        return None
    return EvalFacts(run.score, run.cases, run.run_at, run.version)


def _checkin_facts(rows: list[Any]) -> tuple[CheckInFacts, ...]:
    rows = sorted(rows, key=lambda c: c.due_at, reverse=True)
    return tuple(CheckInFacts(c.due_at, c.answered_at) for c in rows)


def pilot_report(session: Session, pilot: Pilot, now: datetime, grace: timedelta) -> PilotReport:
    """One pilot's full report in a fixed number of statements, whatever its history length."""
    assert pilot.id is not None
    metric_rows = repo.metrics_with_latest(session, pilot.id)
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
    policy = repo.policy(session, pilot.id)
    evals = tuple(repo.latest_evals(session, pilot.id, 2))
    path = tuple(repo.path_items(session, pilot.id))
    checkins = repo.recent_due_checkins(session, pilot.id, now, 3)
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
    pilot: Any  # a Pilot, or a plain row with the same column names (slug, name, owner_*, ...)
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
            threshold=pol[0] if pol else None,
            min_cases=pol[1] if pol else 100,
            latest_eval=_eval_facts(latest.get(p.id)),
            path_states=paths.get(p.id, {}),
            due_checkins=_checkin_facts(checkins.get(p.id, [])),
        )
        out.append(PortfolioEntry(p, evaluate(facts, now, grace)))
    return out
