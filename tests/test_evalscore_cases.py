"""Per-case comparisons, the CI gate and the packed storage form: pure, table-driven."""

from __future__ import annotations

import pytest

from bot.evals.compare import (
    CaseHistory,
    FlakyCase,
    Flips,
    case_history,
    case_label,
    flips,
    flips_text,
    history_lines,
)
from bot.evals.gate import Gate, gate
from storage.cases import CaseResult, PackError, pack, unpack


def ok(cid: str) -> CaseResult:
    return CaseResult(cid, True)


def bad(cid: str, *fields: str) -> CaseResult:
    return CaseResult(cid, False, fields)


def run(spec: str) -> list[CaseResult]:
    """`"a+ b- c+"`: case a passes, b fails, c passes (fields: `b-party`)."""
    out = []
    for tok in spec.split():
        cid, mark = tok[0], tok[1]
        fields = tuple(f for f in tok[2:].split(",") if f)
        out.append(ok(cid) if mark == "+" else bad(cid, *fields))
    return out


@pytest.mark.parametrize(
    ("previous", "current", "regressed", "fixed"),
    [
        ("a+ b+ c-", "a+ b- c+", ["b"], ["c"]),
        ("a+ b+", "a+ b+", [], []),
        ("a- b-", "a- b-", [], []),
        ("a+", "a+ b-", [], []),  # b is new: not a flip
        ("a+ b-", "a+", [], []),  # b left the set: not a flip
        ("a+ b+ c+", "c- b- a-", ["c", "b", "a"], []),  # current file order
        ("a+ b+ c+", "a- b-x c-", ["b", "a", "c"], []),  # a case naming a must-not-miss field first
    ],
)
def test_flips(previous: str, current: str, regressed: list[str], fixed: list[str]) -> None:
    f = flips(run(current), run(previous))
    assert f.compared
    assert [r.id for r in f.regressed] == regressed and f.regressed_total == len(regressed)
    assert [r.id for r in f.fixed] == fixed and f.fixed_total == len(fixed)


def test_flips_without_a_previous_run() -> None:
    f = flips(run("a- b+"), None)
    assert f == Flips(compared=False)
    assert flips_text(f) == "First labelled run: no earlier run to compare cases with."


def test_flips_list_the_first_ten_and_count_the_rest() -> None:
    before = [ok(f"c{i}") for i in range(30)]
    after = [bad(f"c{i}", "party") if i < 25 else ok(f"c{i}") for i in range(30)]
    f = flips(after, before)
    assert f.regressed_total == 25 and [r.id for r in f.regressed] == [f"c{i}" for i in range(10)]
    assert flips_text(f).startswith("25 cases regressed (c0 party, c1 party,")
    assert flips_text(f).endswith("c9 party and 15 more), 0 fixed")


@pytest.mark.parametrize(
    ("previous", "current", "text"),
    [
        (
            "s+ q+ p+ f-",
            "s-party q-amount p-party f+",
            "3 cases regressed (s party, q amount, p party), 1 fixed (f)",
        ),
        ("a+ b-", "a- b+", "1 case regressed (a), 1 fixed (b)"),
        ("a- b-", "a+ b+", "0 cases regressed, 2 fixed (a, b)"),
        ("a+", "a+", "No case flipped since the previous labelled run."),
    ],
)
def test_flips_text(previous: str, current: str, text: str) -> None:
    assert flips_text(flips(run(current), run(previous))) == text


def test_spec_example_wording() -> None:
    before = [ok("c5"), ok("c17"), ok("c42"), ok("c88")]
    before[0] = bad("c5", "party")
    after = [ok("c5"), bad("c17", "party"), bad("c42", "amount"), bad("c88", "party")]
    assert flips_text(flips(after, before)) == "3 cases regressed (c17 party, c42 amount, c88 party), 1 fixed (c5)"


@pytest.mark.parametrize(
    ("result", "label"),
    [
        (bad("c1"), "c1"),
        (bad("c1", "party"), "c1 party"),
        (bad("c1", "party", "amount"), "c1 party+amount"),
        (bad("c1", "a", "b", "c", "d", "e"), "c1 a+b+c+2 more"),
    ],
)
def test_case_label(result: CaseResult, label: str) -> None:
    assert case_label(result) == label


@pytest.mark.parametrize(
    ("runs", "flaky", "always"),
    [
        ([], [], []),
        (["a- b+"], [], []),  # one run: a failure, not yet a pattern
        (["a- b+", "a- b+"], [], ["a"]),
        (["a+ b+", "a- b+", "a+ b+"], [("a", 2)], []),  # changed twice: flaky
        (["a+", "a-"], [], []),  # changed once: a regression, not flaky
        (["a+ b+", "a- b-", "a+ b+", "a- b+"], [("a", 3), ("b", 2)], []),  # most changes first
        (["a- b-", "b-", "a- b-"], [], ["a", "b"]),  # counted over the runs that include the case
        (["a- x-", "a- x-", "a-"], [], ["a"]),  # x left the set: not listed
        (["a+ b-", "a- b-", "a+ b-", "a- b+"], [("a", 3)], []),  # b passes now: not always failing
    ],
)
def test_case_history(runs: list[str], flaky: list[tuple[str, int]], always: list[str]) -> None:
    h = case_history([run(r) for r in runs])
    assert h.runs == len(runs)
    assert [(c.id, c.changes) for c in h.flaky] == flaky
    assert list(h.always_failing) == always


def test_case_history_looks_at_the_last_ten_runs_only() -> None:
    # a flips twice in runs 1-3, then passes 10 times: no longer flaky.
    runs = [run("a+"), run("a-"), run("a+")] + [run("a+")] * 10
    assert case_history(runs).flaky == ()
    runs = [run("a+"), run("a-"), run("a+")] + [run("a+")] * 7
    assert case_history(runs).flaky == (FlakyCase("a", 2, 10, True),)


def test_history_lines() -> None:
    assert history_lines(CaseHistory(0, (), ()))[0].startswith("No labelled eval run yet")
    h = CaseHistory(4, (FlakyCase("c3", 3, 4, False),), ("c9",))
    assert history_lines(h) == [
        "1 flaky in the last 4 labelled runs: c3 (3 changes, fails now).",
        "1 always failing in the last 4 labelled runs: c9.",
    ]
    many = CaseHistory(2, (), tuple(f"c{i}" for i in range(12)))
    assert history_lines(many, limit=2)[1] == "12 always failing in the last 2 labelled runs: c0, c1 and 10 more."


@pytest.mark.parametrize(
    ("score", "cases", "threshold", "min_cases", "passed", "reasons"),
    [
        (96.0, 150, 95.0, 100, True, []),
        (95.0, 100, 95.0, 100, True, []),  # on the bar and on min_cases clears both
        (94.99, 150, 95.0, 100, False, ["94.99% is below the 95% bar"]),
        (99.0, 99, 95.0, 100, False, ["99 cases is fewer than the 100 the bar needs"]),
        (
            88.5,
            1,
            90.0,
            100,
            False,
            ["88.5% is below the 90% bar", "1 case is fewer than the 100 the bar needs"],
        ),
        (99.0, 150, None, None, False, ["no bar is set for `legal`: `threshold legal <pct> min-cases <n>`"]),
    ],
)
def test_gate(
    score: float, cases: int, threshold: float | None, min_cases: int | None, passed: bool, reasons: list[str]
) -> None:
    g = gate("legal", score, cases, threshold, min_cases)
    assert g == Gate(passed, reasons)
    assert g.as_doc() == {"passed": passed, "reasons": reasons}
    assert g.text() == ("Gate passed." if passed else "Gate failed: " + "; ".join(reasons) + ".")


@pytest.mark.parametrize(
    "results",
    [
        [],
        [ok("a")],
        [bad("a")],
        [ok("c1"), bad("c2", "party"), bad("c3", "party", "amount"), ok("c4"), bad("c5")],
        [ok('id with "quotes" and ü'), bad("\ud800 lone surrogate", "f\udfff")],  # any string round-trips
    ],
)
def test_pack_round_trip(results: list[CaseResult]) -> None:
    assert unpack(pack(results)) == results


def test_packed_20000_cases_are_small() -> None:
    results = [bad(f"case-{i}", "party") if i % 7 == 0 else ok(f"case-{i}") for i in range(20_000)]
    blob = pack(results)
    assert unpack(blob) == results
    assert len(blob) < 100_000  # ~5 bytes a case; 20,000 wide rows would be megabytes


def test_unpack_refuses_what_it_cannot_read() -> None:
    with pytest.raises(PackError):
        unpack(b"not zlib")
    import json
    import zlib

    with pytest.raises(PackError, match="format 2"):
        unpack(zlib.compress(json.dumps({"v": 2}).encode()))
    with pytest.raises(PackError, match="damaged"):
        unpack(zlib.compress(json.dumps({"v": 1, "ids": ["a"], "fields": [], "fail": [[0, 3]]}).encode()))
