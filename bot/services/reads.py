"""Read use cases: a pilot's report, the portfolio, history and audit log. They never write."""

from __future__ import annotations

from bot.reports import PilotReport, PortfolioEntry, portfolio, report_from
from bot.services.unit import ServiceBase, find_pilot
from storage import repo
from storage.db import session_scope
from storage.models import AuditEvent, EvalPolicy, EvalRun, Measurement, Metric, Pilot
from storage.snapshot import load as load_snapshot

PilotHistory = tuple[Pilot, list[EvalRun], EvalPolicy | None, list[tuple[Metric, list[Measurement]]]]


class Reads(ServiceBase):
    def pilot_report(self, slug: str) -> PilotReport:
        now = self.clock.now()
        with self.engine.connect() as conn:
            snap = load_snapshot(conn, slug, now, self.grace)
        if snap is None:
            self.require_pilot(slug)  # raises NotFound with "did you mean"
        assert snap is not None
        return report_from(snap, now, self.grace)

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
