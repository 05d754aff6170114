"""Arbitrary text never makes the executor raise, and a refused command never writes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import FixedClock
from bot.commands import COMMAND_NAMES
from bot.config import Settings
from bot.core import build_core
from bot.ports import Actor
from tests.helpers import row_counts

WORDS = list(COMMAND_NAMES) + [
    "demo-pilot",
    "other",
    "handle_time",
    "95%",
    "0.95",
    "cases",
    "150",
    "version",
    "min-cases",
    "kill-below",
    "80",
    "lower",
    "higher",
    "at",
    "2026-01-01",
    "<@U1|bob>",
    "@bob",
    "<#C1|ops>",
    "#ops",
    "done",
    "todo",
    "rollback",
    "monday",
    "09:00",
    "Europe/Berlin",
    "9,5",
    "-1",
    "1e9",
    "<",
    ">",
    "|",
    "`",
    "\x00",
    "\u202e",
    "eval",
    "note",
    "eval_score",
    "triage",
    "pb.eval_score",
    "override",
    "vendor outage",
]
texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=8).map(" ".join),
    # the one-line check-in answer: metric/value pairs, eval and note in any order and shape
    st.lists(st.sampled_from(WORDS[len(COMMAND_NAMES) :]), max_size=7).map(
        lambda words: "answer demo-pilot " + " ".join(words)
    ),
)


def test_executor_never_raises_and_refusals_never_write(tmp_path: Path, sqlite_template: Path) -> None:
    db = tmp_path / "prop.db"
    shutil.copy(sqlite_template, db)
    core = build_core(
        Settings(_env_file=None, database_url=f"sqlite:///{db}"),  # type: ignore[call-arg]
        FixedClock(),
    )
    owner = Actor("console", "bob", "bob")
    core.router.handle("new demo-pilot Demo", owner)
    core.router.handle("owner demo-pilot @bob", owner)
    core.router.handle("baseline demo-pilot handle_time 14 min", owner)
    actors = [owner, Actor("console", "eve", "eve"), Actor("slack", "U1", None)]

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(text=texts, who=st.sampled_from(actors))
    def check(text: str, who: Actor) -> None:
        before = row_counts(core.engine)
        reply = core.router.handle(text, who)  # must not raise
        assert isinstance(reply.text, str)
        assert "Traceback" not in reply.text
        if not reply.ok:
            assert row_counts(core.engine) == before, f"refused {text!r} but wrote"
            assert reply.text and "\n" not in reply.text

    check()


def test_cases_never_raises_and_never_writes(tmp_path: Path, sqlite_template: Path) -> None:
    """`cases <slug>` (SPEC §10) with arbitrary arguments, on a pilot with labelled runs: a read that
    never writes, whether it answers or refuses."""
    from storage.cases import CaseResult

    db = tmp_path / "prop.db"
    shutil.copy(sqlite_template, db)
    core = build_core(Settings(_env_file=None, database_url=f"sqlite:///{db}"), FixedClock())  # type: ignore[call-arg]
    owner = Actor("console", "bob", "bob")
    core.router.handle("new demo-pilot Demo", owner)
    for flip in (False, True, False):
        results = [CaseResult("c1", flip), CaseResult("c2", False, ("party",)), CaseResult("c3", True)]
        core.services.record_eval(owner, "demo-pilot", 66.7, 3, None, results=results)
    assert "1 flaky in the last 3 labelled runs: c1" in "\n".join(core.router.handle("cases demo-pilot", owner).lines)
    tails = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=4).map(" ".join)

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(tail=tails, who=st.sampled_from([owner, Actor("slack", "U1", None)]))
    def check(tail: str, who: Actor) -> None:
        before = row_counts(core.engine)
        reply = core.router.handle(f"cases {tail}", who)  # must not raise
        assert "Traceback" not in reply.text
        assert row_counts(core.engine) == before, f"cases {tail!r} wrote"


LIFECYCLE = ["ship", "pause", "resume", "retire", "void", "eval", "measure", "baseline", "override", "status"]


def _fingerprint(core: Any) -> tuple[Any, ...]:
    """Row counts plus what a lifecycle or void command changes in place (stage, void marks)."""
    from sqlmodel import Session, col, func, select

    from storage.models import EvalRun, Measurement, Metric, Pilot

    with Session(core.engine) as s:
        stages = tuple(s.exec(select(Pilot.stage, Pilot.paused_from, Pilot.flag_on).order_by(col(Pilot.id))).all())
        voided = tuple(
            s.exec(select(func.count()).select_from(m).where(col(m.voided_at).is_not(None))).one()
            for m in (EvalRun, Measurement, Metric)
        )
    return (tuple(sorted(row_counts(core.engine).items())), stages, voided)


def test_lifecycle_commands_never_raise_and_refusals_change_nothing(tmp_path: Path, sqlite_template: Path) -> None:
    """ship/pause/resume/retire/void with random arguments: a refusal leaves the stage and every
    void mark as it was (they are updates, which row counts alone would not see)."""
    db = tmp_path / "life.db"
    shutil.copy(sqlite_template, db)
    core = build_core(
        Settings(_env_file=None, database_url=f"sqlite:///{db}", pilotbot_admins="console:root"),  # type: ignore[call-arg]
        FixedClock(),
    )
    owner = Actor("console", "bob", "bob")
    for cmd in (
        "new demo-pilot Demo",
        "owner demo-pilot @bob",
        "baseline demo-pilot handle_time 14 min at 2026-01-01",
        "measure demo-pilot handle_time 9",
        "threshold demo-pilot 90",
        "eval demo-pilot 95% cases 150",
    ):
        assert core.router.handle(cmd, owner).ok, cmd
    actors = [owner, Actor("console", "eve", "eve"), Actor("console", "root", "root")]
    words = [*LIFECYCLE, "demo-pilot", "other", "handle_time", "eval", "reason text", "9", "95%", "cases", "150"]

    @settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(text=st.lists(st.sampled_from(words), min_size=1, max_size=5).map(" ".join), who=st.sampled_from(actors))
    def check(text: str, who: Actor) -> None:
        before = _fingerprint(core)
        reply = core.router.handle(text, who)
        assert "Traceback" not in reply.text
        if not reply.ok:
            assert _fingerprint(core) == before, f"refused {text!r} but changed something"
            assert reply.text and "\n" not in reply.text

    check()
