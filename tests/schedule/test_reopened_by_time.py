"""SPEC §8, "in production the gaps keep being checked": a gap that time alone reopens (the owner's
check-in goes unanswered past its grace period, no command runs) is told once to the owner and the
escalation channel, by the scheduler, on Slack through the real notifier and the fake Web API, with
two replicas ticking on one database; the owner is a real mention in the channel. The change-driven
and the time-driven path share one key, so the same reopening is never told twice; a paused or
retired pilot is told nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from adapters.slack.client import make_slack_client
from adapters.slack.notifier import SlackNotifier
from bot.clock import FixedClock
from bot.core import Core, build_core
from bot.ports import Actor
from bot.replies import render_text
from bot.schedule.deliver import Delivery
from storage.db import make_engine, session_scope
from storage.models import Escalation, EscalationKind, GapTransition
from tests.schedule.recording import RecordingNotifier
from tests.slack.conftest import slack_settings
from tests.slack.fake_slack import FakeSlack

UB = Actor("slack", "UB", "Berta")
START = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # a Monday, an hour after the default 09:00 check-in
W46_DUE = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)  # the first check-in the scheduler sends
W46_MISSED = W46_DUE + timedelta(hours=48)  # the default grace: the owner gap reopens (at risk)
REOPENED = "p1 is in production and its owner gap reopened: the last check-in was missed"


def meet_the_gate(core: Core, owner: str = "<@UB|Berta>", channel: str = "<#CE|esc>", actor: Actor = UB) -> None:
    """`p1`, owned by `actor`, meeting the ship gate at START (the clock must be there)."""
    for text in (
        "new p1 Support drafts",
        f"owner p1 {owner}",
        f"escalate p1 {channel}",
        "baseline p1 handle_time 14 min lower at 2026-10-20",
        "golive p1 2026-10-26",
        "threshold p1 90 min-cases 100",
        "eval p1 95% cases 120",
        "path p1 integration done",
        "path p1 monitoring done",
        "path p1 rollback done",
        "measure p1 handle_time 10",
        "answer p1 handle_time 9",
    ):
        reply = core.router.handle(text, actor)
        assert reply.ok, (text, render_text(reply))


def ship_p1(core: Core) -> None:
    meet_the_gate(core)
    assert core.router.handle("ship p1", UB).ok


def reopened_rows(core: Core) -> list[Escalation]:
    with session_scope(core.engine) as s:
        q = select(Escalation).where(col(Escalation.kind) == EscalationKind.gap_reopened.value)
        return list(s.exec(q.order_by(col(Escalation.id))))


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = await FakeSlack().start()
    yield server
    await server.stop()


@pytest.fixture
def slack_core(fake: FakeSlack, db_url: str, clock: FixedClock) -> Core:
    settings = slack_settings(db_url, fake.api_url).model_copy(update={"pilotbot_scheduler": False})
    return build_core(settings, clock, migrate=False)


def _posts(fake: FakeSlack, text: str) -> list[tuple[str, str, str]]:
    """(channel, text, blocks) of every accepted chat.postMessage whose text has `text`."""
    out = []
    for c in fake.of("chat.postMessage"):
        if text in str(c.params.get("text", "")):
            out.append((str(c.params["channel"]), str(c.params["text"]), str(c.params.get("blocks", ""))))
    return out


async def test_a_missed_checkin_reopens_a_production_gap_told_once_by_two_replicas(
    fake: FakeSlack, slack_core: Core, clock: FixedClock
) -> None:
    clock.set(START)
    ship_p1(slack_core)
    settings = slack_core.settings
    second_engine = make_engine(settings.database_url)  # the other replica: its own process, same database
    a = Delivery(slack_core.engine, settings, clock, {"slack": SlackNotifier(make_slack_client(settings))})
    b = Delivery(second_engine, settings, clock, {"slack": SlackNotifier(make_slack_client(settings))})
    try:

        async def tick_both() -> None:
            await a.tick()
            await b.tick()

        await tick_both()
        assert [ch for ch, _, _ in _posts(fake, "shipped to production")] == ["CE"]

        # The W46 check-in goes out and is never answered; hour by hour up to its grace's end.
        clock.set(W46_DUE - timedelta(hours=1))
        while clock.now() < W46_MISSED - timedelta(hours=1):
            clock.advance(timedelta(hours=1))
            await tick_both()
        assert [ch for ch, _, _ in _posts(fake, "Weekly check-in for Support drafts (p1), 2026-W46")] == ["DUB"]
        assert _posts(fake, "gap reopened") == [] and reopened_rows(slack_core) == []

        clock.set(W46_MISSED)  # no command: time alone reopens the owner gap; both replicas tick at once
        await asyncio.gather(a.tick(), b.tick(), a.tick())
        for _ in range(6):  # more ticks, on either replica, change nothing
            clock.advance(timedelta(hours=1))
            await tick_both()

        posts = _posts(fake, "gap reopened")
        assert sorted(ch for ch, _, _ in posts) == ["CE", "DUB"], posts
        channel = next(p for p in posts if p[0] == "CE")
        dm = next(p for p in posts if p[0] == "DUB")
        assert channel[1].startswith(REOPENED) and dm[1].startswith(REOPENED)
        assert "<@UB>" in channel[1] and "<@UB>" in channel[2]  # a real mention of the owner, text and blocks
        assert "<@UB>" not in dm[1]  # the owner's own copy does not ping them
        assert "\ue000" not in channel[1] + channel[2]
        [row] = reopened_rows(slack_core)
        assert row.targets == ["slack:user:UB", "slack:channel:CE"] and row.sent_at is not None
        assert row.facts is not None and (row.facts["gap"], row.facts["state"]) == ("owner", "at_risk")

        # The next week is missed too (at risk -> orphaned): still the same reopening, not told again.
        while clock.now() < W46_MISSED + timedelta(days=7, hours=6):
            clock.advance(timedelta(hours=3))
            await tick_both()
        assert len(_posts(fake, "gap reopened")) == 2
        with session_scope(slack_core.engine) as s:
            owner = s.exec(select(GapTransition).where(col(GapTransition.gap) == "owner")).all()
        assert [(t.from_state, t.to_state) for t in owner][-2:] == [("closed", "at_risk"), ("at_risk", "open")]

        # The owner answers W48: the gap closes. W49 goes unanswered: a new reopening, told once more.
        clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
        await tick_both()
        clock.set(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
        await tick_both()
        assert slack_core.router.handle("answer p1 handle_time 9", UB).ok
        await tick_both()
        assert len(_posts(fake, "gap reopened")) == 2
        while clock.now() < datetime(2026, 12, 2, 12, 0, tzinfo=UTC):
            clock.advance(timedelta(hours=3))
            await tick_both()
        assert sorted(ch for ch, _, _ in _posts(fake, "gap reopened")) == ["CE", "CE", "DUB", "DUB"]
        assert len({r.dedupe_key for r in reopened_rows(slack_core)}) == 2
    finally:
        second_engine.dispose()


def _recording(core: Core, clock: FixedClock) -> tuple[Delivery, RecordingNotifier]:
    slack = RecordingNotifier("slack", clock)
    return Delivery(core.engine, core.settings, clock, {"slack": slack}), slack


def test_a_reopening_time_made_and_a_change_then_saw_is_told_once(core: Core, clock: FixedClock) -> None:
    """The grace ends, and before any tick a change is recorded: the change's unit of work stores
    the transition and tells it; the next tick finds nothing new. One row, one message each."""
    clock.set(START)
    ship_p1(core)
    delivery, slack = _recording(core, clock)
    clock.set(W46_DUE)
    asyncio.run(delivery.tick())  # the W46 check-in goes out
    clock.set(W46_MISSED + timedelta(minutes=5))
    assert core.router.handle("measure p1 handle_time 9", UB).ok  # a change, before the tick
    [row] = reopened_rows(core)
    assert row.facts is not None and row.facts["gap"] == "owner"
    for _ in range(3):
        asyncio.run(delivery.tick())
        clock.advance(timedelta(hours=1))
    told = [m for m in slack.sent if "gap reopened" in m.text]
    assert sorted((m.dest, m.is_channel) for m in told) == [("CE", True), ("UB", False)]
    assert len(reopened_rows(core)) == 1


def test_the_change_path_and_the_tick_compute_the_same_key(core: Core, clock: FixedClock) -> None:
    """An eval below the bar reopens the quality gap (the change's path); the key names the moment
    that gap last closed, which is what the tick's path would name for it too."""
    clock.set(START)
    ship_p1(core)
    clock.advance(timedelta(hours=1))
    assert core.router.handle("eval p1 80% cases 120", UB).ok
    [row] = reopened_rows(core)
    with session_scope(core.engine) as s:
        closed = s.exec(
            select(GapTransition).where(col(GapTransition.gap) == "quality", col(GapTransition.to_state) == "closed")
        ).one()
    assert row.dedupe_key == f"reopen:{row.pilot_id}:quality:{closed.at.astimezone(UTC).isoformat()}"


@pytest.mark.parametrize("stage_command", ["pause p1 vendor outage", "retire p1 replaced by v2"])
def test_a_paused_or_retired_pilot_is_told_nothing(core: Core, clock: FixedClock, stage_command: str) -> None:
    """The W46 check-in went out, then the pilot is paused (or retired): its grace ends with no
    notice, and a paused pilot resumed later is not told about it either (no backlog)."""
    clock.set(START)
    ship_p1(core)
    delivery, slack = _recording(core, clock)
    clock.set(W46_DUE)
    asyncio.run(delivery.tick())
    assert core.router.handle(stage_command, UB).ok
    while clock.now() < W46_MISSED + timedelta(days=3):
        clock.advance(timedelta(hours=3))
        asyncio.run(delivery.tick())
    if stage_command.startswith("pause"):
        assert core.router.handle("resume p1", UB).ok
        for _ in range(4):
            clock.advance(timedelta(hours=1))
            asyncio.run(delivery.tick())
    assert reopened_rows(core) == []
    assert not [m for m in slack.sent if "gap reopened" in m.text]
    with session_scope(core.engine) as s:  # the gap did move: only the notice is withheld
        moved = s.exec(select(GapTransition).where(col(GapTransition.gap) == "owner")).all()
    assert ("closed", "at_risk") in [(t.from_state, t.to_state) for t in moved]
