"""`pilotbot_delivery_failures_total{platform}`: every failed send is counted, by the platform it
failed on, in `pilotbot serve` (the real server wiring, a fake Slack Web API, /metrics scraped)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlmodel import select

from adapters.server import build_web_app
from bot.clock import FixedClock
from bot.commands import ChannelRef, UserRef
from bot.core import Core
from bot.ports import Actor
from bot.schedule.deliver import Delivery
from storage.db import session_scope
from storage.models import CheckIn
from tests.api.test_metrics import samples
from tests.schedule.recording import RecordingNotifier
from tests.slack.fake_slack import FakeSlack

UB = Actor("slack", "UB", "Berta")
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FAILURES = "pilotbot_delivery_failures_total"


def _owned_pilot(core: Core, clock: FixedClock, channel: bool = False) -> None:
    clock.set(MONDAY - timedelta(days=1))
    core.services.new_pilot(UB, "p1", None)
    core.services.set_owner(UB, "p1", UserRef("UB", "Berta"))
    if channel:
        core.services.set_escalation(UB, "p1", ChannelRef("CE", "esc"))
    clock.set(MONDAY)  # the check-in is due


def _attempts(core: Core) -> int:
    with session_scope(core.engine) as s:
        row = s.exec(select(CheckIn)).first()
        return row.attempts if row else 0


async def test_a_failed_slack_send_is_counted_on_metrics(core: Core, clock: FixedClock) -> None:
    _owned_pilot(core, clock)
    fake = await FakeSlack().start()
    fake.fail("chat.postMessage", status=400, times=1)  # not retried by slack_sdk: one failed send
    # Only the bot token: Slack's scheduled messages are sent without the Slack surface mounted.
    token = {"slack_bot_token": SecretStr("xoxb-test"), "slack_api_url": fake.api_url}
    settings = core.settings.model_copy(update=token)
    served = Core(settings, core.engine, core.services, core.router, core.clock)
    client = TestClient(TestServer(build_web_app(served)))
    await client.start_server()  # on start-up the scheduler's catch-up tick runs
    try:
        for _ in range(300):  # wait for that tick (it runs at once; this is not a schedule)
            if _attempts(core):
                break
            await asyncio.sleep(0.02)
        assert _attempts(core) == 1 and fake.of("chat.postMessage")
        got = samples(await (await client.get("/metrics")).text())
        assert got[(FAILURES, (("platform", "slack"),))] == 1
    finally:
        await client.close()
        await fake.stop()


def test_each_failed_send_is_told_with_its_platform(core: Core, clock: FixedClock) -> None:
    _owned_pilot(core, clock, channel=True)
    slack, teams = RecordingNotifier("slack", clock), RecordingNotifier("teams", clock)
    delivery = Delivery(core.engine, core.settings, clock, {"slack": slack, "teams": teams})
    failed: list[str] = []
    delivery.on_send_failure.append(failed.append)
    slack.fail_next = 1
    asyncio.run(delivery.tick())  # the check-in DM fails once
    assert failed == ["slack"]
    clock.advance(timedelta(minutes=1))
    asyncio.run(delivery.tick())  # retried and sent: nothing more counted
    assert failed == ["slack"] and [m.dest for m in slack.sent] == ["UB"]

    core.services.set_threshold(UB, "p1", 95, 100, None)
    core.services.record_eval(UB, "p1", 96.0, 150, None)
    core.services.record_eval(UB, "p1", 91.3, 150, None)  # an alert to @Berta and #esc
    slack.fail_channels = True
    asyncio.run(delivery.tick())
    assert failed == ["slack", "slack"]  # the channel post failed; the DM went out
    alone = Delivery(core.engine, core.settings, clock, {})  # a process without Slack configured
    alone.on_send_failure.append(failed.append)
    clock.advance(timedelta(hours=1))
    asyncio.run(alone.tick())
    assert failed == ["slack", "slack", "slack"]  # the alert stays pending, counted against Slack
