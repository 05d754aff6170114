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
from storage.snapshot import Snapshot


@dataclass(frozen=True)
class PolicyFacts:
    threshold: float
    min_cases: int
    drop_alert: float


@dataclass(frozen=True)
class PilotReport:
    # Rows carry the table's column names, so they read like the models (pilot.slug, run.score).
    pilot: Any
    facts: PilotFacts
    gaps: GapReport
    metrics: tuple[MetricFacts, ...]
    evals: tuple[Any, ...]  # newest first, at most two
    policy: PolicyFacts | None
    path: tuple[Any, ...]


def _eval_facts(run: Any) -> EvalFacts | None:
    if run is None:
        return None
    return EvalFacts(run.score, run.cases, run.run_at, run.version)


def _checkin_facts(rows: list[Any]) -> tuple[CheckInFacts, ...]:
    rows = sorted(rows, key=lambda c: c.due_at, reverse=True)
    return tuple(CheckInFacts(c.due_at, c.answered_at) for c in rows)


def report_from(snap: Snapshot, now: datetime, grace: timedelta) -> PilotReport:
    """One pilot's full report from its snapshot (five statements, whatever its history length)."""
    p = snap.pilot
    metrics = tuple(
        MetricFacts(m.key, m.unit, m.direction, m.baseline, m.baseline_at, m.latest, m.latest_at) for m in snap.metrics
    )
    policy = PolicyFacts(p.threshold, p.min_cases, p.drop_alert) if p.threshold is not None else None
    facts = PilotFacts(
        slug=p.slug,
        name=p.name,
        go_live=p.go_live,
        has_owner=p.owner_id is not None,
        baseline_dates=tuple(m.baseline_at for m in metrics),
        threshold=policy.threshold if policy else None,
        min_cases=policy.min_cases if policy else 100,
        latest_eval=_eval_facts(snap.evals[0] if snap.evals else None),
        path_states={i.item: i.state for i in snap.path},
        due_checkins=_checkin_facts(snap.checkins),
    )
    return PilotReport(p, facts, evaluate(facts, now, grace), metrics, tuple(snap.evals), policy, tuple(snap.path))


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
