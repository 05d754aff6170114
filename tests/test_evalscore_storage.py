"""Per-case results in the database (SQLite and PostgreSQL): one packed row a labelled run,
the previous labelled run, the last ten, and the gate read from the pilot's bar."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import select

from bot.clock import FixedClock
from bot.core import Core
from bot.evals import record
from storage import cases, repo
from storage.cases import CaseResult
from storage.db import session_scope
from storage.models import EvalCaseResult, EvalRun
from tests.api.conftest import ANA, seed


def _run(core: Core, clock: FixedClock, results: list[CaseResult] | None, score: float = 96.0) -> int:
    """Record an eval run (labelled when `results` is given); returns its id."""
    clock.advance(timedelta(hours=1))
    core.services.record_eval(ANA, "legal-intake", score, max(len(results or []), 150), None)
    with session_scope(core.engine) as s:
        pilot = repo.pilot_by_slug(s, "legal-intake")
        assert pilot is not None and pilot.id is not None
        run = repo.latest_evals(s, pilot.id, 1)[0]
        assert run.id is not None
        if results is not None:
            record.attach_results(s, pilot.id, run.id, results)
            s.commit()
        return run.id


def _pilot_id(core: Core) -> int:
    with session_scope(core.engine) as s:
        pilot = repo.pilot_by_slug(s, "legal-intake")
        assert pilot is not None and pilot.id is not None
        return pilot.id


def test_save_previous_and_recent(core: Core, clock: FixedClock) -> None:
    seed(core)
    pid = _pilot_id(core)
    first = _run(core, clock, [CaseResult("a", True), CaseResult("b", False, ("party",))])
    bare = _run(core, clock, None)  # a bare score is not a labelled run
    second = _run(core, clock, [CaseResult("a", False, ("amount",)), CaseResult("b", True)])
    with session_scope(core.engine) as s:
        assert cases.for_run(s, bare) is None
        prev = cases.previous(s, pid, before_run_id=second)
        assert prev is not None and prev.run_id == first
        assert prev.results == [CaseResult("a", True), CaseResult("b", False, ("party",))]
        latest = cases.previous(s, pid)
        assert latest is not None and latest.run_id == second
        assert cases.previous(s, pid, before_run_id=first) is None
        assert [r.run_id for r in cases.recent(s, pid)] == [first, second]  # oldest first
        assert [r.run_id for r in cases.recent(s, pid, up_to_run_id=first)] == [first]
        assert s.exec(select(sa.func.count()).select_from(EvalCaseResult)).one() == 2


def test_attach_results_reports_flips_against_the_previous_labelled_run(core: Core, clock: FixedClock) -> None:
    seed(core)
    pid = _pilot_id(core)
    _run(core, clock, [CaseResult("a", True), CaseResult("b", False, ("party",)), CaseResult("c", True)])
    _run(core, clock, None)
    clock.advance(timedelta(hours=1))
    core.services.record_eval(ANA, "legal-intake", 90.0, 150, None)
    with session_scope(core.engine) as s:
        run = repo.latest_evals(s, pid, 1)[0]
        assert run.id is not None
        now = [CaseResult("a", False, ("party",)), CaseResult("b", True), CaseResult("c", True)]
        f = record.attach_results(s, pid, run.id, now)
        s.commit()
    assert ([r.id for r in f.regressed], [r.id for r in f.fixed]) == (["a"], ["b"])


def test_runs_recorded_at_the_same_instant_keep_their_order(core: Core, clock: FixedClock) -> None:
    seed(core)
    pid = _pilot_id(core)
    ids = []
    for passed in (True, False, True):
        core.services.record_eval(ANA, "legal-intake", 96.0, 150, None)  # the clock does not move
        with session_scope(core.engine) as s:
            run = repo.latest_evals(s, pid, 1)[0]
            assert run.id is not None
            record.attach_results(s, pid, run.id, [CaseResult("a", passed)])
            s.commit()
            ids.append(run.id)
    with session_scope(core.engine) as s:
        prev = cases.previous(s, pid, before_run_id=ids[2])
        assert prev is not None and prev.run_id == ids[1]
        h = record.history(s, pid)
    assert [(c.id, c.changes) for c in h.flaky] == [("a", 2)]


def test_history_over_the_last_ten_labelled_runs(core: Core, clock: FixedClock) -> None:
    seed(core)
    pid = _pilot_id(core)
    for i in range(12):
        # x flips in runs 0..2 only (outside the last ten); y flips in the last three; z always fails.
        x = i not in (1,)
        y = i not in (10,)
        _run(core, clock, [CaseResult("x", x), CaseResult("y", y), CaseResult("z", False)])
    with session_scope(core.engine) as s:
        h = record.history(s, pid)
    assert h.runs == 10
    assert [c.id for c in h.flaky] == ["y"] and h.always_failing == ("z",)


def test_gate_reads_the_pilots_bar(core: Core, clock: FixedClock) -> None:
    seed(core)  # legal-intake: 95% on 100 cases; support-drafts: no bar
    with session_scope(core.engine) as s:
        legal, support = repo.pilot_by_slug(s, "legal-intake"), repo.pilot_by_slug(s, "support-drafts")
        assert legal is not None and legal.id is not None and support is not None and support.id is not None
        assert record.gate_for(s, legal.id, "legal-intake", 96.0, 150).passed
        assert record.gate_for(s, legal.id, "legal-intake", 96.0, 99).reasons == [
            "99 cases is fewer than the 100 the bar needs"
        ]
        assert not record.gate_for(s, support.id, "support-drafts", 99.0, 150).passed


def test_deleting_a_run_deletes_its_case_results(core: Core, clock: FixedClock) -> None:
    seed(core)
    run_id = _run(core, clock, [CaseResult("a", True)])
    with session_scope(core.engine) as s:
        s.exec(sa.delete(EvalRun).where(EvalRun.id == run_id))  # type: ignore[call-overload, arg-type]
        s.commit()
        assert cases.for_run(s, run_id) is None
