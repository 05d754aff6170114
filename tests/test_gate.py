"""Table-driven tests of the ship gate (SPEC §8): every condition alone and together, the boundaries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.gaps import CheckInFacts, EvalFacts, GapReport, MetricFacts, PilotFacts, evaluate
from bot.gate import (
    GateFacts,
    GateMetric,
    GateVerdict,
    Unmet,
    UnmetCode,
    gate,
    gate_hint,
    local_day,
    refusal_sentence,
    roi_line,
    roi_lines,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
GRACE = timedelta(hours=48)
GO_LIVE = date(2026, 10, 1)
BEFORE = date(2026, 9, 1)
DONE = {"integration": "done", "monitoring": "done", "rollback": "done"}
C = UnmetCode


def pilot(**kw: object) -> PilotFacts:
    """A pilot whose four gaps are closed; keywords break one thing."""
    base: dict[str, object] = dict(
        slug="p1",
        name="P1",
        go_live=GO_LIVE,
        has_owner=True,
        baseline_dates=(BEFORE,),
        threshold=95.0,
        min_cases=100,
        latest_eval=EvalFacts(96.0, 150, NOW),
        path_states=dict(DONE),
        due_checkins=(CheckInFacts(NOW - timedelta(days=7), NOW - timedelta(days=7) + timedelta(hours=1)),),
    )
    base.update(kw)
    return PilotFacts(**base)  # type: ignore[arg-type]


def metric(
    key: str = "handle_time",
    latest: float | None = 9,
    *,
    direction: str = "lower",
    baseline: float = 14,
    unit: str = "min",
    on: tuple[date, ...] = (GO_LIVE + timedelta(days=7),),
) -> GateMetric:
    return GateMetric(MetricFacts(key, unit, direction, baseline, BEFORE, latest), on)


def gate_facts(**kw: object) -> GateFacts:
    """Gate facts that meet every condition beyond the gaps; keywords break one thing."""
    base: dict[str, object] = dict(go_live=GO_LIVE, today=TODAY, metrics=(metric(),), owner_answered=1)
    base.update(kw)
    return GateFacts(**base)  # type: ignore[arg-type]


def report(p: PilotFacts) -> GapReport:
    return evaluate(p, NOW, GRACE)


def run(p: PilotFacts | None = None, g: GateFacts | None = None) -> GateVerdict:
    return gate(report(p or pilot()), g or gate_facts())


def test_everything_met() -> None:
    v = run()
    assert v.met
    assert v.unmet == ()
    assert v.gaps_closed


# Each condition alone: the pilot facts (for the gap conditions) or the gate facts break one
# thing, everything else holds. Expected: the codes in order and the command of the first.
@pytest.mark.parametrize(
    ("p_kw", "g_kw", "codes", "command"),
    [
        # the four gaps (§3), each alone
        (dict(baseline_dates=()), {}, [C.baseline_gap], "baseline p1 <metric> <value> <unit>"),
        (
            dict(baseline_dates=(GO_LIVE + timedelta(days=1),)),
            {},
            [C.baseline_gap],
            "baseline p1 <metric> <value> at <YYYY-MM-DD>",
        ),
        (dict(has_owner=False), {}, [C.owner_gap], "owner p1 @someone"),
        (
            dict(due_checkins=(CheckInFacts(NOW - timedelta(days=7), None),)),
            {},
            [C.owner_gap],
            "answer p1 handle_time <value>",
        ),
        (
            dict(
                due_checkins=(CheckInFacts(NOW - timedelta(days=7), None), CheckInFacts(NOW - timedelta(days=14), None))
            ),
            {},
            [C.owner_gap],
            "owner p1 @someone",
        ),
        (dict(threshold=None), {}, [C.quality_gap], "threshold p1 <pct> min-cases <n>"),
        (dict(latest_eval=None), {}, [C.quality_gap], "eval p1 <pct> cases <n>"),
        (dict(latest_eval=EvalFacts(99.0, 20, NOW)), {}, [C.quality_gap], "eval p1 <pct> cases <n>"),
        (dict(latest_eval=EvalFacts(91.3, 150, NOW)), {}, [C.quality_gap], "eval p1 <pct> cases <n>"),
        (dict(path_states={**DONE, "rollback": "todo"}), {}, [C.path_gap], "path p1 rollback done"),
        (dict(path_states={}), {}, [C.path_gap], "path p1 <item> done"),
        # go-live: unset or in the future also leaves every metric unmeasured "after go-live"
        (dict(go_live=None), dict(go_live=None), [C.no_go_live, C.not_measured], "golive p1 <YYYY-MM-DD>"),
        (
            dict(go_live=date(2027, 3, 1)),
            dict(go_live=date(2027, 3, 1), metrics=(metric(on=(date(2027, 3, 2),)),)),
            [C.go_live_future, C.not_measured],
            "golive p1 <YYYY-MM-DD>",
        ),
        # measured after go-live
        ({}, dict(metrics=(metric(latest=None, on=()),)), [C.not_measured], "measure p1 handle_time <value>"),
        ({}, dict(metrics=(metric(on=(BEFORE,)),)), [C.not_measured], "measure p1 handle_time <value>"),
        # not worse than the baseline, by direction
        ({}, dict(metrics=(metric(latest=15),)), [C.worse_than_baseline], "measure p1 handle_time <value>"),
        (
            {},
            dict(metrics=(metric("csat", 4.1, direction="higher", baseline=4.5, unit=""),)),
            [C.worse_than_baseline],
            "measure p1 csat <value>",
        ),
        # the current owner's check-in
        ({}, dict(owner_answered=0), [C.no_checkin_answered], "answer p1 handle_time <value>"),
    ],
)
def test_each_condition_alone(
    p_kw: dict[str, object], g_kw: dict[str, object], codes: list[UnmetCode], command: str
) -> None:
    v = run(pilot(**p_kw), gate_facts(**g_kw))
    assert not v.met
    assert list(v.codes) == codes
    assert v.unmet[0].command == command


@pytest.mark.parametrize(
    ("m", "met"),
    [
        # on the go-live day itself: not "after" (§3 counts that day as "before" for baselines)
        (metric(on=(GO_LIVE,)), False),
        (metric(on=(GO_LIVE + timedelta(days=1),)), True),
        (metric(on=(GO_LIVE - timedelta(days=1), GO_LIVE)), False),
        (metric(on=(GO_LIVE, GO_LIVE + timedelta(days=1))), True),
        # latest equal to the baseline is "no change", not worse
        (metric(latest=14), True),
        (metric(latest=14.01), False),
        (metric(latest=13.99), True),
        # direction higher: up is better, down is worse, equal passes
        (metric("csat", 4.6, direction="higher", baseline=4.5, unit=""), True),
        (metric("csat", 4.5, direction="higher", baseline=4.5, unit=""), True),
        (metric("csat", 4.4, direction="higher", baseline=4.5, unit=""), False),
        (metric("revision_rate", 21, baseline=38, unit="%"), True),
        # a zero baseline still has a direction
        (metric("incidents", 0, baseline=0, unit=""), True),
        (metric("incidents", 1, baseline=0, unit=""), False),
    ],
)
def test_metric_boundaries(m: GateMetric, met: bool) -> None:
    assert run(g=gate_facts(metrics=(m,))).met is met


def test_go_live_today_is_not_in_the_future() -> None:
    g = gate_facts(go_live=TODAY, metrics=(metric(on=(TODAY,)),))
    assert run(pilot(go_live=TODAY), g).codes == (C.not_measured,)  # live, but nothing measured after yet
    g_next = gate_facts(
        go_live=TODAY, today=TODAY + timedelta(days=1), metrics=(metric(on=(TODAY + timedelta(days=1),)),)
    )
    assert run(pilot(go_live=TODAY), g_next).met


def test_every_metric_is_checked_and_named() -> None:
    ms = (
        metric(),
        metric("revision_rate", None, baseline=38, unit="%", on=()),
        metric("csat", 3, direction="higher", baseline=4, unit=""),
    )
    v = run(g=gate_facts(metrics=ms))
    assert [(u.code, u.metric) for u in v.unmet] == [
        (C.not_measured, "revision_rate"),
        (C.worse_than_baseline, "csat"),
    ]
    # the check-in command asks for every metric
    v2 = run(g=gate_facts(metrics=ms, owner_answered=0))
    assert v2.unmet[-1].command == "answer p1 handle_time <value> revision_rate <value> csat <value>"


def test_a_pilot_without_metrics_cannot_ship() -> None:
    # No metric means no baseline: the baseline gap is open, which already blocks the gate; the
    # metric conditions are vacuous and add nothing of their own.
    v = run(pilot(baseline_dates=()), gate_facts(metrics=()))
    assert v.codes == (C.baseline_gap,)
    assert v.unmet[0].sentence == "the baseline gap is open (no baseline recorded)"
    assert gate_hint("p1", v) is None


def test_a_measurement_before_go_live_that_is_worse_counts_twice() -> None:
    # Latest value measured before go-live only: it neither proves ROI nor may be worse.
    v = run(g=gate_facts(metrics=(metric(latest=16, on=(BEFORE,)),)))
    assert v.codes == (C.not_measured, C.worse_than_baseline)


def test_all_conditions_together_in_a_fixed_order() -> None:
    p = pilot(
        go_live=None,
        has_owner=False,
        baseline_dates=(BEFORE,),
        threshold=None,
        path_states={},
    )
    g = GateFacts(go_live=None, today=TODAY, metrics=(metric(latest=15, on=()),), owner_answered=0)
    v = run(p, g)
    assert v.codes == (
        C.owner_gap,
        C.quality_gap,
        C.path_gap,
        C.no_go_live,
        C.not_measured,
        C.worse_than_baseline,
        C.no_checkin_answered,
    )
    assert refusal_sentence("p1", v) == (
        "p1 cannot ship yet: "
        "the owner gap is open (no owner) — `owner p1 @someone`; "
        "the quality control gap is open (no acceptance bar set) — `threshold p1 <pct> min-cases <n>`; "
        "the production path gap is open (to do: integration, monitoring, rollback) — `path p1 <item> done`; "
        "go-live is not set — `golive p1 <YYYY-MM-DD>`; "
        "handle_time has no measurement after go-live — `measure p1 handle_time <value>`; "
        "handle_time is worse than its baseline: 14 → 15 min (+7%, worse) — `measure p1 handle_time <value>`; "
        "the current owner has not answered a weekly check-in yet — `answer p1 handle_time <value>`."
    )


def test_refusal_sentence_is_one_sentence_and_can_offer_the_override() -> None:
    v = run(g=gate_facts(owner_answered=0, metrics=(metric(on=(GO_LIVE,)),)))
    text = refusal_sentence("p1", v, offer_override=True)
    assert text == (
        "p1 cannot ship yet: "
        "handle_time has no measurement after go-live 2026-10-01 — `measure p1 handle_time <value>`; "
        "the current owner has not answered a weekly check-in yet — `answer p1 handle_time <value>`; "
        "or, as an admin, ship it anyway with `ship p1 override <reason>`."
    )
    assert text.endswith(".") and ". " not in text and "\n" not in text
    assert refusal_sentence("p1", run()) == "p1 meets the ship gate: `ship p1`."


@pytest.mark.parametrize(
    ("p_kw", "g_kw", "hint"),
    [
        ({}, {}, "ready: `ship p1`"),
        (dict(path_states={}), {}, None),  # a gap is open: the card's next steps speak
        (dict(baseline_dates=(GO_LIVE + timedelta(days=1),)), {}, None),  # at risk counts as not closed
        (
            {},
            dict(owner_answered=0),
            "the ship gate still needs: the current owner has not answered a weekly check-in yet — "
            "`answer p1 handle_time <value>`",
        ),
        (
            dict(go_live=None),
            dict(go_live=None),
            "the ship gate still needs: go-live is not set — `golive p1 <YYYY-MM-DD>`; "
            "handle_time has no measurement after go-live — `measure p1 handle_time <value>`",
        ),
    ],
)
def test_gate_hint(p_kw: dict[str, object], g_kw: dict[str, object], hint: str | None) -> None:
    assert gate_hint("p1", run(pilot(**p_kw), gate_facts(**g_kw))) == hint


@pytest.mark.parametrize(
    ("at", "tz", "counts"),
    [
        # 22:30 UTC on the eve is already the go-live day in Berlin: not after go-live
        (datetime(2026, 9, 30, 22, 30, tzinfo=UTC), "Europe/Berlin", False),
        (datetime(2026, 10, 1, 21, 59, tzinfo=UTC), "Europe/Berlin", False),
        (datetime(2026, 10, 1, 22, 0, tzinfo=UTC), "Europe/Berlin", True),
        # and still the go-live day in New York at 03:00 UTC the next day
        (datetime(2026, 10, 2, 3, 0, tzinfo=UTC), "America/New_York", False),
        (datetime(2026, 10, 2, 4, 0, tzinfo=UTC), "America/New_York", True),
        (datetime(2026, 10, 2, 0, 0, tzinfo=UTC), "UTC", True),
    ],
)
def test_local_day_decides_the_go_live_boundary_in_the_pilots_zone(at: datetime, tz: str, counts: bool) -> None:
    m = metric(on=(local_day(at, tz),))
    assert run(g=gate_facts(metrics=(m,))).met is counts


def test_verdict_is_consistent() -> None:
    with pytest.raises(ValueError):
        GateVerdict(met=True, unmet=(Unmet(C.no_go_live, "go-live is not set", "golive p1 <YYYY-MM-DD>"),))
    with pytest.raises(ValueError):
        GateVerdict(met=False)


def test_roi_lines_reuse_the_improvement_format() -> None:
    ms = [
        MetricFacts("handle_time", "min", "lower", 14, BEFORE, 9),
        MetricFacts("revision_rate", "%", "lower", 38, BEFORE, 21),
    ]
    assert roi_lines(ms) == (
        "handle_time 14 → 9 min (−36%, better)",
        "revision_rate 38% → 21% (−17 pts, −45%, better)",
    )
    assert roi_line(ms) == "handle_time 14 → 9 min (−36%, better); revision_rate 38% → 21% (−17 pts, −45%, better)"
    assert roi_line([]) == "no metric recorded"


def test_gate_reads_the_slug_from_the_report() -> None:
    v = gate(replace(report(pilot(path_states={})), slug="support-drafts"), gate_facts())
    assert v.unmet[0].command == "path support-drafts <item> done"
