"""Table-driven tests of the four gap rules (SPEC §3) and the improvement formatting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.gaps import (
    CheckInFacts,
    EvalFacts,
    Gap,
    GapState,
    MetricFacts,
    PilotFacts,
    Reason,
    evaluate,
    improvement,
    ready_line,
)
from bot.views import next_step

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
GRACE = timedelta(hours=48)
GO_LIVE = date(2026, 10, 1)
DONE = {"integration": "done", "monitoring": "done", "rollback": "done"}


def facts(**kw: object) -> PilotFacts:
    base: dict[str, object] = dict(
        slug="p1",
        name="P1",
        go_live=GO_LIVE,
        has_owner=True,
        baseline_dates=(date(2026, 9, 1),),
        threshold=95.0,
        min_cases=100,
        latest_eval=EvalFacts(96.0, 150, NOW),
        path_states=dict(DONE),
        due_checkins=(),
    )
    base.update(kw)
    return PilotFacts(**base)  # type: ignore[arg-type]


def state(f: PilotFacts, gap: Gap, now: datetime = NOW) -> tuple[GapState, str]:
    r = next(r for r in evaluate(f, now, GRACE).results if r.gap is gap)
    return r.state, r.reason


def ci(days_ago: float, answered_after_h: float | None) -> CheckInFacts:
    due = NOW - timedelta(days=days_ago)
    return CheckInFacts(due, None if answered_after_h is None else due + timedelta(hours=answered_after_h))


@pytest.mark.parametrize(
    ("kw", "expected", "reason_part"),
    [
        (dict(baseline_dates=()), GapState.open, "no baseline"),
        (dict(baseline_dates=(date(2026, 9, 1),)), GapState.closed, "on or before go-live"),
        (dict(baseline_dates=(GO_LIVE,)), GapState.closed, "on or before go-live"),  # equal to go-live
        (dict(baseline_dates=(GO_LIVE + timedelta(days=1),)), GapState.at_risk, "reconstructed"),
        (dict(baseline_dates=(GO_LIVE + timedelta(days=1), date(2026, 9, 30))), GapState.closed, "1 of 2"),
        (dict(baseline_dates=(date(2027, 1, 1),), go_live=None), GapState.closed, "go-live not set"),
        (dict(baseline_dates=(), go_live=None), GapState.open, "no baseline"),
    ],
)
def test_baseline_gap(kw: dict[str, object], expected: GapState, reason_part: str) -> None:
    st, reason = state(facts(**kw), Gap.baseline)
    assert st is expected
    assert reason_part in reason


@pytest.mark.parametrize(
    ("kw", "expected", "reason_part"),
    [
        (dict(has_owner=False), GapState.open, "no owner"),
        (dict(has_owner=False, due_checkins=(ci(7, 1),)), GapState.open, "no owner"),
        (dict(due_checkins=()), GapState.closed, "no check-in due yet"),
        (dict(due_checkins=(ci(7, 1), ci(14, 1))), GapState.closed, "answered"),
        # one missed: the most recent
        (dict(due_checkins=(ci(7, None), ci(14, 1))), GapState.at_risk, "missed"),
        # two missed in a row: orphaned
        (dict(due_checkins=(ci(7, None), ci(14, None))), GapState.open, "orphaned"),
        # the older one missed, the newest answered: fine again
        (dict(due_checkins=(ci(7, 2), ci(14, None))), GapState.closed, "answered"),
        # answered, but after the grace period: still missed
        (dict(due_checkins=(ci(7, 49), ci(14, 1))), GapState.at_risk, "missed"),
        # answered exactly at the end of grace: late, as the escalation sent at that instant said
        (dict(due_checkins=(ci(7, 48), ci(14, 1))), GapState.at_risk, "missed"),
        (dict(due_checkins=(ci(7, 47.99), ci(14, 1))), GapState.closed, "answered"),
        # newest still inside its grace period and unanswered: no verdict yet, the previous counts
        (dict(due_checkins=(ci(1, None), ci(8, 1))), GapState.closed, "answered"),
        (dict(due_checkins=(ci(1, None), ci(8, None))), GapState.at_risk, "missed"),
        (dict(due_checkins=(ci(1, None), ci(8, None), ci(15, None))), GapState.open, "orphaned"),
        # exactly at the end of grace, unanswered: missed
        (dict(due_checkins=(ci(2, None),)), GapState.at_risk, "missed"),
        # a check-in not yet due does not count
        (dict(due_checkins=(ci(-1, None), ci(7, 1))), GapState.closed, "answered"),
    ],
)
def test_owner_gap(kw: dict[str, object], expected: GapState, reason_part: str) -> None:
    st, reason = state(facts(**kw), Gap.owner)
    assert st is expected
    assert reason_part in reason


@pytest.mark.parametrize(
    ("kw", "expected", "reason"),
    [
        (dict(threshold=None), GapState.open, "no acceptance bar set"),
        (dict(latest_eval=None), GapState.open, "no eval run yet (95% bar)"),
        (dict(latest_eval=EvalFacts(99.0, 99, NOW)), GapState.open, "latest eval has 99 cases < 100 needed"),
        (dict(latest_eval=EvalFacts(99.0, 100, NOW)), GapState.closed, "latest eval 99% ≥ 95% bar on 100 cases"),
        (dict(latest_eval=EvalFacts(91.3, 150, NOW)), GapState.open, "latest eval 91.3% < 95% bar"),
        (dict(latest_eval=EvalFacts(95.0, 150, NOW)), GapState.closed, "latest eval 95% ≥ 95% bar on 150 cases"),
        (dict(latest_eval=EvalFacts(94.99, 150, NOW)), GapState.open, "latest eval 94.99% < 95% bar"),
        (
            dict(threshold=95.5, latest_eval=EvalFacts(96, 150, NOW)),
            GapState.closed,
            "latest eval 96% ≥ 95.5% bar on 150 cases",
        ),
    ],
)
def test_quality_gap(kw: dict[str, object], expected: GapState, reason: str) -> None:
    st, got = state(facts(**kw), Gap.quality)
    assert st is expected
    assert got == reason


@pytest.mark.parametrize(
    ("path", "expected", "reason"),
    [
        ({}, GapState.open, "to do: integration, monitoring, rollback"),
        ({"integration": "done"}, GapState.open, "to do: monitoring, rollback"),
        ({**DONE, "rollback": "todo"}, GapState.open, "to do: rollback"),
        (DONE, GapState.closed, "integration, monitoring and rollback done"),
        ({**DONE, "kill-switch": "todo"}, GapState.closed, "integration, monitoring and rollback done"),
        ({"kill-switch": "done", "audit-log": "done"}, GapState.open, "to do: integration, monitoring, rollback"),
    ],
)
def test_path_gap(path: dict[str, str], expected: GapState, reason: str) -> None:
    st, got = state(facts(path_states=path), Gap.path)
    assert st is expected
    assert got == reason


# Every reason code, the facts that produce it, and the advice it leads to (bot/views.py next_step).
CODES: list[tuple[dict[str, object], Gap, GapState, Reason, str]] = [
    (dict(baseline_dates=()), Gap.baseline, GapState.open, Reason.no_baseline, "record a baseline"),
    (dict(go_live=None), Gap.baseline, GapState.closed, Reason.golive_unset, ""),
    (
        dict(baseline_dates=(GO_LIVE + timedelta(days=1),)),
        Gap.baseline,
        GapState.at_risk,
        Reason.baselines_after_golive,
        "find a pre-go-live baseline",
    ),
    (dict(), Gap.baseline, GapState.closed, Reason.ok, ""),
    (dict(has_owner=False), Gap.owner, GapState.open, Reason.no_owner, "name an owner"),
    (dict(due_checkins=(ci(7, None), ci(14, None))), Gap.owner, GapState.open, Reason.orphaned, "owner missed 2"),
    (dict(due_checkins=(ci(7, None), ci(14, 1))), Gap.owner, GapState.at_risk, Reason.missed_last, "answer the"),
    (dict(due_checkins=()), Gap.owner, GapState.closed, Reason.no_checkin_due, ""),
    (dict(due_checkins=(ci(7, 1),)), Gap.owner, GapState.closed, Reason.ok, ""),
    (dict(threshold=None), Gap.quality, GapState.open, Reason.no_threshold, "set an eval bar"),
    (dict(latest_eval=None), Gap.quality, GapState.open, Reason.no_eval, "run the eval"),
    (dict(latest_eval=EvalFacts(99.0, 99, NOW)), Gap.quality, GapState.open, Reason.too_few_cases, "grow the"),
    (dict(latest_eval=EvalFacts(91.3, 150, NOW)), Gap.quality, GapState.open, Reason.below_bar, "fix quality"),
    (dict(), Gap.quality, GapState.closed, Reason.ok, ""),
    (dict(path_states={}), Gap.path, GapState.open, Reason.path_todo, "finish the production path"),
    (dict(), Gap.path, GapState.closed, Reason.ok, ""),
]


@pytest.mark.parametrize(("kw", "gap", "expected", "code", "advice"), CODES)
def test_reason_codes_and_their_advice(
    kw: dict[str, object], gap: Gap, expected: GapState, code: Reason, advice: str
) -> None:
    r = next(r for r in evaluate(facts(**kw), NOW, GRACE).results if r.gap is gap)
    assert (r.state, r.code) == (expected, code)
    short, full = next_step("p1", r, short=True), next_step("p1", r)
    assert short.startswith(advice) if advice else short == full == ""
    if advice:
        assert full and full != short  # the full sentence, with the command to write where there is one


def test_every_reason_code_is_in_the_table() -> None:
    assert {code for *_, code, _ in CODES} == set(Reason)


def test_advice_quotes_the_reason_where_it_says_what_is_missing() -> None:
    path = evaluate(facts(path_states={"integration": "done"}), NOW, GRACE).results[3]
    assert next_step("p1", path) == "Finish the production path (monitoring, rollback): `path p1 <item> done`"
    cases = evaluate(facts(latest_eval=EvalFacts(99.0, 99, NOW)), NOW, GRACE).results[2]
    assert next_step("p1", cases) == "Grow the labelled eval set (latest eval has 99 cases < 100 needed)"


def test_ready_needs_all_four_closed() -> None:
    assert evaluate(facts(), NOW, GRACE).ready
    assert not evaluate(facts(path_states={}), NOW, GRACE).ready
    assert not evaluate(facts(baseline_dates=(GO_LIVE + timedelta(days=3),)), NOW, GRACE).ready


@pytest.mark.parametrize(
    ("metric", "text"),
    [
        (MetricFacts("handle_time", "min", "lower", 14, GO_LIVE, 9), "handle_time 14 → 9 min (−36%, better)"),
        (
            MetricFacts("revision_rate", "%", "lower", 38, GO_LIVE, 21),
            "revision_rate 38% → 21% (−17 pts, −45%, better)",
        ),
        # higher is better, and it got worse
        (MetricFacts("csat", "", "higher", 4.5, GO_LIVE, 4.1), "csat 4.5 → 4.1 (−9%, worse)"),
        (MetricFacts("deflection", "%", "higher", 20, GO_LIVE, 30), "deflection 20% → 30% (+10 pts, +50%, better)"),
        (MetricFacts("handle_time", "min", "lower", 14, GO_LIVE, 15), "handle_time 14 → 15 min (+7%, worse)"),
        (MetricFacts("errors", "", "lower", 5, GO_LIVE, 5), "errors 5 → 5 (0%, no change)"),
        (MetricFacts("cost", "$", "lower", 1200, GO_LIVE, 900), "cost $1200 → $900 (−25%, better)"),
        # a zero baseline has no relative change
        (MetricFacts("incidents", "", "lower", 0, GO_LIVE, 2), "incidents 0 → 2 (worse)"),
        # rounding to the nearest whole percent: 14 -> 7.07 is -49.5% -> -50%
        (MetricFacts("t", "s", "lower", 14, GO_LIVE, 7.07), "t 14 → 7.07 s (−50%, better)"),
    ],
)
def test_improvement(metric: MetricFacts, text: str) -> None:
    assert improvement(metric) == text


def test_improvement_without_measurement() -> None:
    m = MetricFacts("handle_time", "min", "lower", 14, GO_LIVE)
    assert improvement(m) == "handle_time baseline 14 min (lower is better), no measurement yet"


@pytest.mark.parametrize(
    ("ready", "total", "text"),
    [
        (1, 3, "1 of 3 pilots ready to ship (33%)"),
        (2, 3, "2 of 3 pilots ready to ship (67%)"),
        (0, 0, "0 of 0 pilots ready to ship (0%)"),
        (1, 1, "1 of 1 pilot ready to ship (100%)"),
    ],
)
def test_ready_line(ready: int, total: int, text: str) -> None:
    assert ready_line(ready, total) == text
