"""The per-case part of recording a labelled eval run, inside the caller's unit of work.

Called right after the run's row is flushed (today by `pilotbot eval import`; later from the
service that records the run, in the same transaction). Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from bot.evals.compare import CaseHistory, Flips, case_history, flips
from bot.evals.gate import Gate, gate
from storage import cases, repo
from storage.cases import CaseResult


def attach_results(s: Session, pilot_id: int, run_id: int, results: Sequence[CaseResult]) -> Flips:
    """Store `results` with run `run_id` and compare them with the previous labelled run."""
    previous = cases.previous(s, pilot_id, before_run_id=run_id)
    cases.save(s, run_id, results)
    return flips(results, previous.results if previous is not None else None)


def history(s: Session, pilot_id: int) -> CaseHistory:
    """Flaky and always-failing cases over the pilot's last 10 labelled runs (`cases <slug>`)."""
    return case_history([r.results for r in cases.recent(s, pilot_id)])


def gate_for(s: Session, pilot_id: int, slug: str, score: float, n_cases: int) -> Gate:
    """The CI gate of a run with this score and case count against the pilot's current bar."""
    pol = repo.policy(s, pilot_id)
    return gate(slug, score, n_cases, pol.threshold if pol else None, pol.min_cases if pol else None)
