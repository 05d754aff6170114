"""Read use cases: a pilot's report, the portfolio, history and audit log. They never write."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Connection

from bot.reports import PilotReport, PortfolioEntry, PortfolioPage, portfolio, portfolio_page, report_from
from bot.schedule.verdicts import backfill as judge_all
from bot.scorecard import WeekCount, backfill, check, weekly_trend
from bot.services.unit import ServiceBase, find_pilot
from storage import repo
from storage import scorecard as store
from storage.db import session_scope
from storage.models import AuditEvent, EvalPolicy, EvalRun, GapTransition, Measurement, Metric, Pilot
from storage.scorecard import Counts
from storage.snapshot import load as load_snapshot

T = TypeVar("T")

PORTFOLIO_SIZE = 25  # rows of a portfolio page (SPEC §8)

PilotHistory = tuple[Pilot, list[EvalRun], EvalPolicy | None, list[tuple[Metric, list[Measurement]]]]


class Reads(ServiceBase):
    def pilot_report(self, slug: str) -> PilotReport:
        return self.pilot_report_and(slug, None)[0]

    def pilot_report_and(
        self, slug: str, also: Callable[[Connection, int], T] | None
    ) -> tuple[PilotReport, T | None]:
        """The report, and `also(conn, pilot_id)` read on the same connection (`status <slug>`'s
        kill-switch evidence: one connection and no second lookup of the slug)."""
        now = self.clock.now()
        with self.engine.connect() as conn:
            snap = load_snapshot(conn, slug, now, self.grace)
            extra = also(conn, snap.pilot.id) if snap is not None and also is not None else None
        if snap is None:
            self.require_pilot(slug)  # raises NotFound with "did you mean"
        assert snap is not None
        return report_from(snap, now, self.grace), extra

    def require_pilot(self, slug: str) -> None:
        """NotFound (with "did you mean") unless the pilot exists: one indexed read."""
        with session_scope(self.engine) as s:
            find_pilot(s, slug)

    def portfolio(self) -> list[PortfolioEntry]:
        with session_scope(self.engine) as s:
            return portfolio(s, self.clock.now(), self.grace)

    def history(self, slug: str, n: int = 26) -> PilotHistory:
        with self.reading(slug) as (s, pilot):
            assert pilot.id is not None
            evals = repo.eval_history(s, pilot.id, n)
            pol = repo.policy(s, pilot.id)
            metrics = repo.metrics_with_void(s, pilot.id)  # void records are shown as void, never charted
            hist = repo.measurement_history(s, [m.id for m in metrics if m.id is not None], n)
            return pilot, evals, pol, [(m, hist.get(m.id or 0, [])) for m in metrics]

    def audit_log(self, slug: str) -> tuple[Pilot, list[AuditEvent]]:
        with self.reading(slug) as (s, pilot):
            assert pilot.id is not None
            return pilot, repo.audit_events(s, pilot.id, 20)

    # ---- the stored scorecard (bounded reads; bot/scorecard.py keeps it current) ----

    def portfolio_page(
        self, filter_: str | None = None, page: int = 1, owner_ref: str | None = None, size: int = PORTFOLIO_SIZE
    ) -> PortfolioPage:
        with session_scope(self.engine) as s:
            return portfolio_page(s, filter_, owner_ref, page, size)

    def home_pages(self, owner_ref: str) -> tuple[PortfolioPage, PortfolioPage, PortfolioPage]:
        """App Home: the viewer's pilots, the shipped ones, then the riskiest of all (bounded pages, one session)."""
        from bot.home import HOME_PAGE, MAX_OWN

        with session_scope(self.engine) as s:
            counts = store.counts(s)  # one header aggregate for the three pages
            return (
                portfolio_page(s, "mine", owner_ref, 1, MAX_OWN, counts),
                portfolio_page(s, None, None, 1, HOME_PAGE, counts),
                portfolio_page(s, "production", None, 1, MAX_OWN, counts),
            )

    def portfolio_counts(self) -> Counts:
        with session_scope(self.engine) as s:
            return store.counts(s)

    def gap_history(self, slug: str, n: int = 50) -> list[GapTransition]:
        with self.reading(slug) as (s, pilot):
            assert pilot.id is not None
            return store.transitions(s, pilot.id, n)

    def trend(self, weeks: int = 12) -> list[WeekCount]:
        with session_scope(self.engine) as s:
            return weekly_trend(s, self.clock.now(), weeks)

    def scorecard_check(self) -> list[str]:
        return check(self.engine, self.clock.now(), self.grace)

    def scorecard_backfill(self) -> int:
        return backfill(self.engine, self.clock.now(), self.grace)

    def counters_backfill(self) -> int:
        """Check-in verdicts not counted yet for /metrics (a database from before 0014_counters)."""
        return judge_all(self.engine, self.clock.now(), self.grace)
