"""Reads a pilot (or the portfolio) from storage into gap facts and reports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
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
from bot.gate import GateFacts, GateMetric, GateVerdict, gate, local_day
from storage import repo
from storage.models import Pilot
from storage.snapshot import Snapshot
from storage.snapshot import load as load_snapshot


@dataclass(frozen=True)
class PolicyFacts:
    """The eval policy as a report shows it (the bar, its case count, the drop that alerts)."""

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
    undeliverable: tuple[str | None, ...] = ()  # last errors of scheduled messages given up on
    gate: GateVerdict | None = None  # the ship gate (full reports only; the batch fan-out skips it)


def _eval_facts(run: Any) -> EvalFacts | None:
    if run is None:
        return None
    return EvalFacts(run.score, run.cases, run.run_at, run.version)


def _metric_facts(m: Any, latest: float | None, latest_at: datetime | None) -> MetricFacts:
    return MetricFacts(m.key, m.unit, m.direction, m.baseline, m.baseline_at, latest, latest_at)


def _checkin_facts(rows: list[Any]) -> tuple[CheckInFacts, ...]:
    # The queries return only the current owner's decided check-ins: ones due before the owner
    # took over are not theirs, so reassigning an orphaned pilot (what its card advises) closes
    # the owner gap until the new owner misses one.
    rows = sorted(rows, key=lambda c: c.due_at, reverse=True)
    return tuple(CheckInFacts(c.due_at, c.answered_at) for c in rows)


def report_from(snap: Snapshot, now: datetime, grace: timedelta) -> PilotReport:
    """One pilot's full report from its snapshot (six statements, whatever its history length)."""
    p = snap.pilot
    metrics = tuple(_metric_facts(m, m.latest, m.latest_at) for m in snap.metrics)
    policy = PolicyFacts(p.threshold, p.min_cases, p.drop_alert) if p.threshold is not None else None
    report = _report(p, metrics, policy, tuple(snap.evals), tuple(snap.path), snap.checkins, now, grace)
    report = replace(report, undeliverable=tuple(snap.undeliverable))
    return replace(report, gate=snapshot_gate(snap, report, now))


def pilot_report(session: Session, pilot: Any, now: datetime, grace: timedelta) -> PilotReport:
    """The report of a pilot already in hand, read inside the caller's session."""
    snap = load_snapshot(session.connection(), pilot.slug, now, grace)
    assert snap is not None, f"pilot {pilot.slug} vanished"
    return report_from(snap, now, grace)


def pilot_reports(session: Session, pilots: list[Pilot], now: datetime, grace: timedelta) -> dict[int, PilotReport]:
    """Reports for many pilots in a fixed number of statements (the scheduled check-in fan-out)."""
    ids = [p.id for p in pilots if p.id is not None]
    metric_rows = repo.metrics_with_latest_for(session, ids)
    policies = repo.policies_for(session, ids)
    evals = repo.latest_evals_for(session, ids, 2)
    paths = repo.path_items_for(session, ids)
    checkins = repo.recent_due_checkins_for(session, ids, now, grace, 3)
    out = {}
    for p in pilots:
        if p.id is None:
            continue
        metrics = tuple(
            _metric_facts(m, latest.value if latest else None, latest.measured_at if latest else None)
            for m, latest in metric_rows[p.id]
        )
        pol = policies.get(p.id)
        policy = PolicyFacts(pol.threshold, pol.min_cases, pol.drop_alert) if pol else None
        out[p.id] = _report(p, metrics, policy, tuple(evals[p.id]), tuple(paths[p.id]), checkins[p.id], now, grace)
    return out


def gap_facts(
    pilot: Any,
    baseline_dates: Iterable[date],
    policy: Any | None,
    latest_eval: Any | None,
    path_states: dict[str, str],
    checkins: Iterable[Any],
) -> PilotFacts:
    """The one builder of what the gap rules read, for a full report and the portfolio alike.

    Rows carry the tables' column names: `policy` has .threshold and .min_cases, `latest_eval`
    .score, .cases, .run_at and .version, a check-in .due_at and .answered_at.
    """
    return PilotFacts(
        slug=pilot.slug,
        name=pilot.name,
        go_live=pilot.go_live,
        has_owner=pilot.owner_id is not None,
        baseline_dates=tuple(baseline_dates),
        threshold=policy.threshold if policy else None,
        min_cases=policy.min_cases if policy else 100,
        latest_eval=_eval_facts(latest_eval),
        path_states=path_states,
        due_checkins=_checkin_facts(list(checkins)),
    )


def _report(
    pilot: Any,
    metrics: tuple[MetricFacts, ...],
    policy: PolicyFacts | None,
    evals: tuple[Any, ...],
    path: tuple[Any, ...],
    checkins: list[Any],
    now: datetime,
    grace: timedelta,
) -> PilotReport:
    path_states = {i.item: i.state for i in path}
    latest = evals[0] if evals else None
    facts = gap_facts(pilot, (m.baseline_at for m in metrics), policy, latest, path_states, checkins)
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
    checkins = repo.recent_due_checkins_by_pilot(session, now, grace, 3)
    out = []
    for p in pilots:
        assert p.id is not None
        pid = p.id
        facts = gap_facts(
            p, baselines.get(pid, ()), policies.get(pid), latest.get(pid), paths.get(pid, {}), checkins.get(pid, [])
        )
        out.append(PortfolioEntry(p, evaluate(facts, now, grace)))
    return out



# ---- the ship gate's facts (SPEC §8): the report plus the non-void records the gate reads ----


def snapshot_gate(snap: Snapshot, report: PilotReport, now: datetime) -> GateVerdict:
    """The ship gate on a pilot's snapshot: the four gaps plus go-live, metrics and check-ins."""
    p = snap.pilot
    tz = p.checkin_tz or "UTC"
    newest = {m.key: snap.measured.get(m.id) for m in snap.metrics}
    metrics = tuple(
        GateMetric(m, (local_day(at, tz),) if (at := newest.get(m.key)) is not None else ())
        for m in report.metrics
    )
    facts = GateFacts(go_live=p.go_live, today=local_day(now, tz), metrics=metrics, owner_answered=snap.owner_answered)
    return gate(report.gaps, facts)


def pilot_gate(session: Session, pilot: Pilot, now: datetime, grace: timedelta) -> tuple[PilotReport, GateVerdict]:
    """The pilot's report and the ship gate's verdict on it, read inside the caller's session."""
    report = pilot_report(session, pilot, now, grace)
    assert report.gate is not None
    return report, report.gate


# ---- the portfolio read from the stored scorecard (bot/scorecard.py): bounded at any size ----


@dataclass(frozen=True)
class PilotLine:
    """What a portfolio row shows of a pilot (the column names of `Pilot`)."""

    id: int
    slug: str
    name: str
    stage: str
    owner_platform: str | None
    owner_id: str | None
    owner_name: str | None


@dataclass(frozen=True)
class PortfolioPage:
    """One page of the portfolio, riskiest first, and the counts of the whole portfolio."""

    entries: tuple[PortfolioEntry, ...]
    filter: str | None
    page: int
    pages: int
    matching: int  # pilots the filter selects (all pages)
    counts: Any  # storage.scorecard.Counts: header figures over every active pilot

    @property
    def next_page(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None


def portfolio_page(session: Session, filter_: str | None, owner_ref: str | None, page: int, size: int) -> PortfolioPage:
    """Three indexed statements whatever the portfolio's size: the page, its filter's count and
    the header's aggregate."""
    from bot.scorecard import stored_report
    from storage import scorecard as store

    matching = store.count(session, filter_, owner_ref)
    pages = max(1, -(-matching // size))
    page = max(1, page)
    rows = store.page(session, filter_, owner_ref, size, (page - 1) * size) if page <= pages else []
    entries = tuple(
        PortfolioEntry(PilotLine(sc.pilot_id, sc.slug, name, sc.stage, plat, uid, uname), stored_report(sc))
        for sc, name, plat, uid, uname in rows
    )
    return PortfolioPage(entries, filter_, page, pages, matching, store.counts(session))
