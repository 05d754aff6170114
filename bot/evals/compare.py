"""Per-case comparisons of labelled runs (SPEC §10). Pure: plain values in, plain values out.

- Flips: a case that passed in the previous labelled run and fails now has *regressed*; one that
  failed and passes now is *fixed*. Cases in only one of the two runs are not flips (a case set
  that grew or shrank says nothing about those cases). Listed: the first MAX_LISTED of each and
  the totals; regressed cases that name a must-not-miss field come first (a JUnit failure names
  none unless the test recorded `failing_fields`), then in the current file's order.
- Flaky: a case whose result changed at least FLAKY_CHANGES times over the last RECENT_RUNS
  labelled runs (counting only the runs that include it).
- Always failing: a case that failed in every one of those runs that include it, and at least
  MIN_RUNS_ALWAYS of them do (one failed run is a failure, not a pattern).
Both lists cover the cases of the latest run only: a case dropped from the set is history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.cases import RECENT_RUNS, CaseResult

MAX_LISTED = 10
MAX_FIELDS_SHOWN = 3
FLAKY_CHANGES = 2
MIN_RUNS_ALWAYS = 2


@dataclass(frozen=True)
class Flips:
    compared: bool  # False: no previous labelled run to compare with
    regressed: tuple[CaseResult, ...] = ()  # the first MAX_LISTED, must-not-miss field failures first
    regressed_total: int = 0
    fixed: tuple[CaseResult, ...] = ()  # the first MAX_LISTED, in file order
    fixed_total: int = 0

    @property
    def flipped(self) -> bool:
        return bool(self.regressed_total or self.fixed_total)


@dataclass(frozen=True)
class FlakyCase:
    id: str
    changes: int  # result changes across the runs that include it
    runs: int  # how many of the recent runs include it
    passed_last: bool


@dataclass(frozen=True)
class CaseHistory:
    runs: int  # labelled runs looked at (at most RECENT_RUNS)
    flaky: tuple[FlakyCase, ...]  # most changes first, then the latest run's order
    always_failing: tuple[str, ...]  # ids, in the latest run's order


def flips(current: Sequence[CaseResult], previous: Sequence[CaseResult] | None) -> Flips:
    if previous is None:
        return Flips(compared=False)
    before = {r.id: r.passed for r in previous}
    regressed: list[CaseResult] = []
    fixed: list[CaseResult] = []
    for r in current:
        was = before.get(r.id)
        if was is None or was == r.passed:
            continue
        (fixed if r.passed else regressed).append(r)
    regressed.sort(key=lambda r: not r.failing)  # stable: file order within each group
    return Flips(True, tuple(regressed[:MAX_LISTED]), len(regressed), tuple(fixed[:MAX_LISTED]), len(fixed))


def case_label(r: CaseResult) -> str:
    """`c17 party`, `c3 party+amount`, or the bare id when no field is named."""
    if not r.failing:
        return r.id
    shown = "+".join(r.failing[:MAX_FIELDS_SHOWN])
    more = f"+{len(r.failing) - MAX_FIELDS_SHOWN} more" if len(r.failing) > MAX_FIELDS_SHOWN else ""
    return f"{r.id} {shown}{more}"


def _listed(items: Sequence[CaseResult], total: int) -> str:
    names = ", ".join(case_label(r) for r in items)
    return names + (f" and {total - len(items)} more" if total > len(items) else "")


def flips_text(f: Flips) -> str:
    """`3 cases regressed (c17 party, c42 amount, c88 party), 1 fixed (c5)` (SPEC §10)."""
    if not f.compared:
        return "First labelled run: no earlier run to compare cases with."
    if not f.flipped:
        return "No case flipped since the previous labelled run."
    noun = "case" if f.regressed_total == 1 else "cases"
    head = f"{f.regressed_total} {noun} regressed"
    if f.regressed_total:
        head += f" ({_listed(f.regressed, f.regressed_total)})"
    tail = f"{f.fixed_total} fixed" + (f" ({_listed(f.fixed, f.fixed_total)})" if f.fixed_total else "")
    return f"{head}, {tail}"


def case_history(runs: Sequence[Sequence[CaseResult]]) -> CaseHistory:
    """`runs` oldest first (storage/cases.py `recent`); only the last RECENT_RUNS count."""
    window = list(runs)[-RECENT_RUNS:]
    if not window:
        return CaseHistory(0, (), ())
    seen: dict[str, list[bool]] = {r.id: [] for r in window[-1]}
    for run in window:
        for r in run:
            outcomes = seen.get(r.id)
            if outcomes is not None:
                outcomes.append(r.passed)
    flaky: list[FlakyCase] = []
    always: list[str] = []
    for cid, outcomes in seen.items():
        changes = sum(1 for a, b in zip(outcomes, outcomes[1:], strict=False) if a != b)
        if changes >= FLAKY_CHANGES:
            flaky.append(FlakyCase(cid, changes, len(outcomes), outcomes[-1]))
        elif len(outcomes) >= MIN_RUNS_ALWAYS and not any(outcomes):
            always.append(cid)
    flaky.sort(key=lambda c: -c.changes)
    return CaseHistory(len(window), tuple(flaky), tuple(always))


def _flaky_label(c: FlakyCase) -> str:
    return f"{c.id} ({c.changes} changes, {'passes' if c.passed_last else 'fails'} now)"


def history_lines(h: CaseHistory, limit: int = MAX_LISTED) -> list[str]:
    """The `cases <slug>` body: flaky, then always-failing cases (the first `limit` of each)."""
    if h.runs == 0:
        return ["No labelled eval run yet: import one with `pilotbot eval import` or the REST API."]
    runs = f"the last {h.runs} labelled runs" if h.runs > 1 else "the only labelled run"
    lines = []
    if h.flaky:
        shown = ", ".join(_flaky_label(c) for c in h.flaky[:limit])
        more = f" and {len(h.flaky) - limit} more" if len(h.flaky) > limit else ""
        lines.append(f"{len(h.flaky)} flaky in {runs}: {shown}{more}.")
    else:
        lines.append(f"No flaky case in {runs}.")
    if h.always_failing:
        shown = ", ".join(h.always_failing[:limit])
        more = f" and {len(h.always_failing) - limit} more" if len(h.always_failing) > limit else ""
        lines.append(f"{len(h.always_failing)} always failing in {runs}: {shown}{more}.")
    else:
        lines.append(f"No case failed in every one of {runs}.")
    return lines
