"""At once, exactly once (SPEC §5): the process that records a change delivers the outbox rows it
created right after the commit, through the same claim as the tick. No tick runs in these tests
unless one is called by hand; `DeliverNow.settle()` only waits for the sends already started."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from sqlmodel import select

from adapters import scheduling
from bot.clock import FixedClock
from bot.core import Core
from bot.ports import Actor
from storage.db import session_scope
from storage.models import Escalation
from tests.schedule.recording import RecordingNotifier

UB = Actor("slack", "UB", "Berta")


async def _replica(core: Core, notifier: RecordingNotifier) -> tuple[web.AppRunner, web.Application]:
    """One server process: no interval tick (scheduler off), the deliver-now hook on."""
    off = core.settings.model_copy(update={"pilotbot_scheduler": False})
    app = web.Application()
    scheduling.mount(app, Core(off, core.engine, core.services, core.router, core.clock), {"slack": notifier})
    runner = web.AppRunner(app)
    await runner.setup()
    return runner, app


@pytest.fixture
async def pilot(core: Core) -> AsyncIterator[Core]:
    for text in (
        "new p1 P one",
        "owner p1 <@UB|Berta>",
        "escalate p1 <#C1|pilots>",
        "threshold p1 90",
        "eval p1 95 cases 100",
    ):
        assert core.router.handle(text, UB).ok, text
    yield core


def alerts(core: Core) -> list[Escalation]:
    with session_scope(core.engine) as s:
        return list(s.exec(select(Escalation)))


async def test_an_alert_goes_out_right_after_the_commit_without_a_tick(pilot: Core, clock: FixedClock) -> None:
    slack = RecordingNotifier("slack", clock)
    runner, app = await _replica(pilot, slack)
    try:
        out = await asyncio.to_thread(pilot.services.record_eval, UB, "p1", 80.0, 100, "v2")
        assert out.alerts
        await app[scheduling.DELIVER_NOW_KEY].settle()
        assert sorted((m.dest, m.is_channel) for m in slack.sent) == [("C1", True), ("UB", False)]
        assert all(m.at == clock.now() for m in slack.sent)  # at the recording's moment, not a tick later
        [row] = alerts(pilot)
        assert row.sent_at == clock.now() and set(row.payload["delivered"]) == {"slack:user:UB", "slack:channel:C1"}
        assert (await app[scheduling.DELIVERY_KEY].tick()).sent == 0  # the tick finds nothing left
    finally:
        await runner.cleanup()


async def test_ten_concurrent_evals_below_the_bar_on_two_replicas_send_one_alert_per_destination(
    pilot: Core, clock: FixedClock
) -> None:
    one, two = RecordingNotifier("slack", clock), RecordingNotifier("slack", clock)
    (r1, a1), (r2, a2) = await _replica(pilot, one), await _replica(pilot, two)
    try:
        # Both replicas' hooks hear every commit (as if each change ran on either): the claim decides.
        await asyncio.gather(
            *(asyncio.to_thread(pilot.services.record_eval, UB, "p1", 80.0 + i / 10, 100, f"v{i}") for i in range(10))
        )
        await a1[scheduling.DELIVER_NOW_KEY].settle()
        await a2[scheduling.DELIVER_NOW_KEY].settle()
        sent = one.sent + two.sent
        assert sorted((m.dest, m.is_channel) for m in sent) == [("C1", True), ("UB", False)]
        assert all("fell below the bar" in m.text for m in sent)
        [row] = alerts(pilot)  # one breach, one row: the other nine inserts lost on the dedupe key
        assert row.sent_at is not None
        for app in (a1, a2):
            assert (await app[scheduling.DELIVERY_KEY].tick()).sent == 0
        assert len(one.sent + two.sent) == 2
    finally:
        await r1.cleanup()
        await r2.cleanup()


async def test_a_failed_at_once_send_is_left_to_the_tick(pilot: Core, clock: FixedClock) -> None:
    from datetime import timedelta

    slack = RecordingNotifier("slack", clock, fail_next=1)
    runner, app = await _replica(pilot, slack)
    try:
        pilot.router.handle("eval p1 70 cases 100", UB)  # on the loop's own thread, as the console does
        await app[scheduling.DELIVER_NOW_KEY].settle()
        [row] = alerts(pilot)
        assert slack.sent == [] and row.sent_at is None and row.attempts == 1
        clock.advance(timedelta(minutes=1))
        assert (await app[scheduling.DELIVERY_KEY].tick()).sent == 1
        assert sorted(m.dest for m in slack.sent) == ["C1", "UB"]
    finally:
        await runner.cleanup()


async def test_a_new_breach_after_the_bar_was_cleared_again_alerts_again(pilot: Core, clock: FixedClock) -> None:
    slack = RecordingNotifier("slack", clock)
    runner, app = await _replica(pilot, slack)
    try:
        for score in ("80", "82", "93", "85"):  # below (page), still below (nothing), cleared (recovery), below again
            assert pilot.router.handle(f"eval p1 {score} cases 100", UB).ok
            await app[scheduling.DELIVER_NOW_KEY].settle()
        assert [m.dest for m in slack.sent if not m.is_channel] == ["UB", "UB", "UB"]
        assert [a.kind for a in alerts(pilot)] == ["eval_below_bar", "eval_recovered", "eval_below_bar"]
    finally:
        await runner.cleanup()
