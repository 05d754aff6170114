"""`pilotbot eval import … --gate`: two runs of the same 150-case set (JSONL, then JUnit XML) that
differ in known cases; the flips printed, the per-case results stored, the gate's exit code."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.clock import FixedClock
from bot.core import Core
from bot.evals import record
from storage import cases, repo
from storage.db import session_scope
from storage.models import EvalCaseResult, EvalRun
from tests.api.conftest import ANA, seed
from tests.api.test_evalscore import as_jsonl, generated_cases

# Run 1 (JSONL, tests/api/test_evalscore.py's generator): case-i fails `party` when i % 7 == 0 and
# `amount` when i % 11 == 0 -> 34 of 150 fail.
RUN1_FAILING = {i for i in range(150) if i % 7 == 0 or i % 11 == 0}
# Run 2 (JUnit): case-7 and case-14 fixed; case-1 (amount), case-2 (no field named) and case-3
# (party) regressed.
RUN2_FIELDS = {1: "amount", 3: "party"}
RUN2_FAILING = (RUN1_FAILING - {7, 14}) | {1, 2, 3}


def junit(failing: set[int], fields: dict[int, str]) -> str:
    rows = []
    for i in range(150):
        if i not in failing:
            rows.append(f'<testcase name="case-{i}" time="0.01"/>')
            continue
        props = f'<properties><property name="failing_fields" value="{fields[i]}"/></properties>' if i in fields else ""
        rows.append(f'<testcase name="case-{i}" time="0.01">{props}<failure message="wrong">trace</failure></testcase>')
    n = len(failing)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<testsuites><testsuite name="pytest" '
        f'errors="0" failures="{n}" skipped="0" tests="150">\n' + "\n".join(rows) + "\n</testsuite></testsuites>\n"
    )


def _runs(core: Core) -> list[EvalRun]:
    with session_scope(core.engine) as s:
        return list(s.exec(select(EvalRun).order_by(EvalRun.id)).all())  # type: ignore[arg-type]


def test_two_runs_name_the_flipped_cases_and_the_gate_sets_the_exit_code(
    core: Core, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters import cli

    seed(core)  # legal-intake: bar 95% on at least 100 cases
    monkeypatch.setattr(cli, "_core", lambda: core)
    runner = CliRunner()
    first, second = tmp_path / "run1.jsonl", tmp_path / "run2.xml"
    first.write_text(as_jsonl(generated_cases(150)))
    second.write_text(junit(RUN2_FAILING, RUN2_FIELDS))

    r = runner.invoke(cli.app, ["eval", "import", "legal-intake", str(first), "--as", "ana", "--gate"])
    assert r.exit_code == 1, r.output  # 77.33% is below the 95% bar: recorded, and the build fails
    assert "First labelled run: no earlier run to compare cases with." in r.output
    assert r.output.rstrip().endswith("Gate failed: 77.33% is below the 95% bar.")

    clock.advance(timedelta(days=1))
    r = runner.invoke(cli.app, ["eval", "import", "legal-intake", str(second), "--as", "ana", "--gate"])
    assert r.exit_code == 1, r.output
    assert "3 cases regressed (case-1 amount, case-3 party, case-2), 2 fixed (case-7, case-14)" in r.output
    assert "115 of 150 cases pass." in r.output
    assert "Gate failed: 76.67% is below the 95% bar." in r.output

    one, two = _runs(core)
    assert (one.score, one.cases, two.score, two.cases) == (77.33, 150, 76.67, 150)
    with session_scope(core.engine) as s:
        stored1, stored2 = cases.for_run(s, one.id or 0), cases.for_run(s, two.id or 0)
        assert stored1 is not None and stored2 is not None
        assert {int(c.id[5:]) for c in stored1 if not c.passed} == RUN1_FAILING
        assert {int(c.id[5:]) for c in stored2 if not c.passed} == RUN2_FAILING
        assert next(c for c in stored1 if c.id == "case-77").failing == ("party", "amount")
        assert [row.n for row in s.exec(select(EvalCaseResult)).all()] == [150, 150]

    # The bar lowered to 75%: the same file now clears it (exit 0) and nothing flipped.
    assert core.router.handle("threshold legal-intake 75 min-cases 100", ANA).ok
    clock.advance(timedelta(days=1))
    r = runner.invoke(cli.app, ["eval", "import", "legal-intake", str(second), "--as", "ana", "--gate"])
    assert r.exit_code == 0, r.output
    assert "No case flipped since the previous labelled run." in r.output
    assert r.output.rstrip().endswith("Gate passed.")

    # Too few cases for the bar: exit 1 with that reason, the run recorded all the same.
    assert core.router.handle("threshold legal-intake 75 min-cases 200", ANA).ok
    clock.advance(timedelta(days=1))
    r = runner.invoke(cli.app, ["eval", "import", "legal-intake", str(first), "--as", "ana", "--gate"])
    assert r.exit_code == 1, r.output
    assert "2 cases regressed (case-7 party, case-14 party), 3 fixed (case-1, case-2, case-3)" in r.output
    assert "Gate failed: 150 cases is fewer than the 200 the bar needs." in r.output
    assert len(_runs(core)) == 4

    # case-1/2/3 passed, failed, failed, passed; case-7/14 failed, passed, passed, failed: each
    # changed twice in the last runs -> flaky; case-0 failed all four times -> always failing.
    with session_scope(core.engine) as s:
        pilot = repo.pilot_by_slug(s, "legal-intake")
        assert pilot is not None and pilot.id is not None
        h = record.history(s, pilot.id)
    assert {c.id for c in h.flaky} == {"case-1", "case-2", "case-3", "case-7", "case-14"}
    assert "case-0" in h.always_failing and len(h.always_failing) == len(RUN1_FAILING & RUN2_FAILING)


def test_without_gate_a_failing_run_exits_0_and_a_bad_file_records_nothing(
    core: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters import cli

    seed(core)
    monkeypatch.setattr(cli, "_core", lambda: core)
    runner = CliRunner()
    good = tmp_path / "set.xml"
    good.write_text(junit(RUN1_FAILING, {}))
    r = runner.invoke(cli.app, ["eval", "import", "legal-intake", str(good), "--as", "ana"])
    assert r.exit_code == 0, r.output
    assert "Gate" not in r.output and "First labelled run" in r.output
    bad = tmp_path / "bad.xml"
    bad.write_text('<!DOCTYPE x [<!ENTITY a "b">]><testsuites/>')
    r = runner.invoke(cli.app, ["eval", "import", "legal-intake", str(bad), "--as", "ana", "--gate"])
    assert r.exit_code == 1 and "a DOCTYPE is not accepted" in r.output
    other = tmp_path / "set.txt"
    other.write_text("x")
    r = runner.invoke(cli.app, ["eval", "import", "legal-intake", str(other), "--as", "ana"])
    assert r.exit_code == 2 and "--format jsonl|csv|junit" in r.output
    assert len(_runs(core)) == 1
