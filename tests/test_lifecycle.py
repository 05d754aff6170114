"""Table-driven tests of the stage rules (SPEC §8): transitions, refusals, override, schedule, header."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.errors import UserError
from bot.gaps import CheckInFacts, EvalFacts, MetricFacts, PilotFacts, evaluate
from bot.gate import GateFacts, GateMetric, GateVerdict, UnmetCode, gate
from bot.lifecycle import (
    ACTIVE_STAGES,
    StageChange,
    Transition,
    pause,
    policy,
    portfolio_line,
    resume,
    retire,
    ship,
)
from storage.models import Stage

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
GO_LIVE = date(2026, 10, 1)
S = Stage


def verdict(*, answered: int = 1, path_done: bool = True) -> GateVerdict:
    """A real gate verdict: met by default; `answered=0` or `path_done=False` leave it unmet."""
    done = {"integration": "done", "monitoring": "done", "rollback": "done"} if path_done else {}
    due = NOW - timedelta(days=7)
    facts = PilotFacts(
        slug="p1",
        name="P1",
        go_live=GO_LIVE,
        has_owner=True,
        baseline_dates=(date(2026, 9, 1),),
        threshold=95.0,
        latest_eval=EvalFacts(96.0, 150, NOW),
        path_states=done,
        due_checkins=(CheckInFacts(due, due + timedelta(hours=1)),),
    )
    m = GateMetric(MetricFacts("handle_time", "min", "lower", 14, date(2026, 9, 1), 9), (date(2026, 10, 8),))
    g = GateFacts(go_live=GO_LIVE, today=NOW.date(), metrics=(m,), owner_answered=answered)
    return gate(evaluate(facts, NOW, timedelta(hours=48)), g)


MET = verdict()
UNMET = verdict(answered=0)


def refused(fn: object, *args: object, **kw: object) -> str:
    with pytest.raises(UserError) as info:
        fn(*args, **kw)  # type: ignore[operator]
    return info.value.sentence


# --- ship ---------------------------------------------------------------------------------


def test_ship_through_the_gate() -> None:
    change = ship("p1", S.pilot, MET)
    assert (change.transition, change.before, change.after) == (Transition.ship, S.pilot, S.production)
    assert change.overridden == () and change.reason is None and change.resume_to is None
    assert change.audit_after() == {"stage": "production"}


def test_ship_refused_lists_every_unmet_condition() -> None:
    v = verdict(answered=0, path_done=False)
    text = refused(ship, "p1", "pilot", v)
    assert text == (
        "p1 cannot ship yet: the production path gap is open (to do: integration, monitoring, rollback) — "
        "`path p1 <item> done`; the current owner has not answered a weekly check-in yet — "
        "`answer p1 handle_time <value>`."
    )
    # an admin is told the way past the gate too
    assert refused(ship, "p1", "pilot", v, admin=True).endswith(
        "; or, as an admin, ship it anyway with `ship p1 override <reason>`."
    )


def test_admin_override_records_the_unmet_codes() -> None:
    v = verdict(answered=0, path_done=False)
    change = ship("p1", S.pilot, v, override="  launch deadline, path signed off on paper ", admin=True)
    assert change.after is S.production
    assert change.reason == "launch deadline, path signed off on paper"
    assert change.override_codes == (UnmetCode.path_gap, UnmetCode.no_checkin_answered)
    assert change.audit_after() == {
        "stage": "production",
        "reason": "launch deadline, path signed off on paper",
        "override": ["path_gap", "no_checkin_answered"],
        "unmet": [u.sentence for u in v.unmet],
    }


@pytest.mark.parametrize(
    ("stage", "v", "kw", "sentence"),
    [
        (
            S.pilot,
            UNMET,
            dict(override="ship it", admin=False),
            "Only an admin may use `ship p1 override <reason>`, and p1 cannot ship yet: ",
        ),
        (
            S.pilot,
            UNMET,
            dict(override="   ", admin=True),
            "An override needs a reason: write `ship p1 override <reason>`.",
        ),
        (S.pilot, MET, dict(override="", admin=True), "An override needs a reason: write `ship p1 override <reason>`."),
        (S.production, MET, {}, "p1 is already in production."),
        (S.production, UNMET, dict(override="again", admin=True), "p1 is already in production."),
        (S.paused, MET, {}, "p1 is paused: `resume p1` first, then `ship p1`."),
        (S.paused, UNMET, dict(override="now", admin=True), "p1 is paused: `resume p1` first, then `ship p1`."),
        (S.retired, MET, {}, "p1 is retired: its records stay, but it cannot be shipped."),
    ],
)
def test_ship_refusals(stage: Stage, v: GateVerdict, kw: dict[str, object], sentence: str) -> None:
    text = refused(ship, "p1", stage, v, **kw)
    assert text.startswith(sentence)
    assert text.endswith(".") and "\n" not in text


def test_override_on_a_met_gate_is_a_plain_ship() -> None:
    for admin in (True, False):
        change = ship("p1", S.pilot, MET, override="belt and braces", admin=admin)
        assert change.after is S.production
        assert change.overridden == () and change.override_codes == ()
        assert "override" not in change.audit_after()


# --- pause, resume, retire ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "stage", "args", "after", "resume_to"),
    [
        (pause, S.pilot, ("holiday",), S.paused, S.pilot),
        (pause, S.production, (None,), S.paused, S.production),
        (resume, S.paused, (S.pilot,), S.pilot, None),
        (resume, S.paused, (S.production,), S.production, None),
        (resume, S.paused, ("production",), S.production, None),
        # no remembered stage (or a nonsensical one): back to pilot, never production by accident
        (resume, S.paused, (None,), S.pilot, None),
        (resume, S.paused, (S.retired,), S.pilot, None),
        (retire, S.pilot, ("done",), S.retired, None),
        (retire, S.production, (None,), S.retired, None),
        (retire, S.paused, ("",), S.retired, None),
    ],
)
def test_transitions(fn: object, stage: Stage, args: tuple[object, ...], after: Stage, resume_to: Stage | None) -> None:
    change: StageChange = fn("p1", stage, *args)  # type: ignore[operator]
    assert change.before is stage
    assert change.after is after
    assert change.resume_to is resume_to
    assert change.flag_off is (after is S.retired)


def test_pause_and_resume_round_trip_keeps_production() -> None:
    paused = pause("p1", "production", "reorg")
    assert paused.audit_after() == {"stage": "paused", "resume_to": "production", "reason": "reorg"}
    back = resume("p1", paused.after, paused.resume_to)
    assert back.after is S.production and back.transition is Transition.resume
    assert retire("p1", S.paused, "  ").reason is None


@pytest.mark.parametrize(
    ("fn", "stage", "args", "sentence"),
    [
        (pause, S.paused, (), "p1 is already paused: `resume p1` to continue."),
        (pause, S.retired, (), "p1 is retired: its records stay, but it cannot be paused."),
        (resume, S.pilot, (None,), "p1 is not paused (it is a running pilot): there is nothing to resume."),
        (resume, S.production, (None,), "p1 is not paused (it is in production): there is nothing to resume."),
        (resume, S.retired, (S.pilot,), "p1 is retired: its records stay, but it cannot be resumed."),
        (retire, S.retired, (), "p1 is already retired."),
    ],
)
def test_stage_refusals(fn: object, stage: Stage, args: tuple[object, ...], sentence: str) -> None:
    assert refused(fn, "p1", stage, *args) == sentence


def test_every_stage_is_covered_by_exactly_the_allowed_transitions() -> None:
    # The whole table at once: which (transition, from-stage) pairs succeed.
    allowed = set()
    for stage in S:
        for name, call in (
            ("ship", lambda st: ship("p1", st, MET)),
            ("pause", lambda st: pause("p1", st)),
            ("resume", lambda st: resume("p1", st, S.pilot)),
            ("retire", lambda st: retire("p1", st)),
        ):
            try:
                call(stage)
            except UserError:
                continue
            allowed.add((name, stage.value))
    assert allowed == {
        ("ship", "pilot"),
        ("pause", "pilot"),
        ("pause", "production"),
        ("resume", "paused"),
        ("retire", "pilot"),
        ("retire", "production"),
        ("retire", "paused"),
    }


# --- what the scheduler gives each stage ---------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "scheduled", "counted", "listed"),
    [
        (S.pilot, True, True, True),
        (S.production, True, True, True),
        (S.paused, False, False, True),
        (S.retired, False, False, False),
    ],
)
def test_policy(stage: Stage, scheduled: bool, counted: bool, listed: bool) -> None:
    p = policy(stage.value)
    assert (p.checkins, p.reminders, p.escalations, p.alerts) == (scheduled,) * 4
    assert p.counted is counted and p.listed is listed
    assert (stage in ACTIVE_STAGES) is counted


# --- the portfolio header -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pilots", "line"),
    [
        ([], "0 of 0 pilots ready to ship (0%)"),
        ([("pilot", True), ("pilot", False), ("pilot", False)], "1 of 3 pilots ready to ship (33%)"),
        # SPEC §8's example
        (
            [("production", True), ("pilot", True), ("pilot", False)],
            "2 of 3 pilots ready to ship (67%) · 1 in production",
        ),
        # paused and retired pilots are in neither number, ready or not
        (
            [("production", True), ("pilot", False), ("paused", True), ("retired", True), ("retired", False)],
            "1 of 2 pilots ready to ship (50%) · 1 in production",
        ),
        # a production pilot whose gap reopened is still in production but not ready
        ([(S.production, False), (S.production, True)], "1 of 2 pilots ready to ship (50%) · 2 in production"),
        ([(S.production, True)], "1 of 1 pilot ready to ship (100%) · 1 in production"),
        ([(S.paused, True), (S.retired, True)], "0 of 0 pilots ready to ship (0%)"),
    ],
)
def test_portfolio_line(pilots: list[tuple[Stage | str, bool]], line: str) -> None:
    assert portfolio_line(pilots) == line
