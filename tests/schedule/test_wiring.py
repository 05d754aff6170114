"""The APScheduler wiring inside an aiohttp app, and the `pilotbot schedule` operator command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from adapters import scheduling
from bot.clock import FixedClock
from bot.commands import UserRef
from bot.core import Core
from bot.ports import Actor
from tests.schedule.recording import RecordingNotifier

UB = Actor("slack", "UB", "Berta")


async def test_startup_tick_catches_up_in_the_running_loop(core: Core, clock: FixedClock) -> None:
    clock.set(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    core.services.new_pilot(UB, "p1", None)
    core.services.set_owner(UB, "p1", UserRef("UB", "Berta"))
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))  # the server was down at Monday 09:00
    slack = RecordingNotifier("slack", clock)
    app = web.Application()
    scheduling.mount(app, core, {"slack": slack})
    runner = web.AppRunner(app)
    await runner.setup()  # on_startup: the scheduler starts and runs one tick now
    try:
        scheduler = app[scheduling.SCHEDULER_KEY]
        job = scheduler.get_job(scheduling.TICK_JOB)
        assert job.trigger.interval == timedelta(seconds=core.settings.pilotbot_tick_seconds)
        assert (job.coalesce, job.max_instances) == (True, 1) and job.misfire_grace_time >= 60
        for _ in range(200):  # wait for the start-up tick (it runs at once; this is not a schedule)
            if slack.sent:
                break
            await asyncio.sleep(0.02)
        assert [(m.dest, m.reply.form.period) for m in slack.sent if m.reply.form] == [("UB", "2026-W48")]
    finally:
        await runner.cleanup()
    assert not scheduler.running


def test_schedule_command_lists_whats_next(core: Core, clock: FixedClock, tmp_path: Path) -> None:
    clock.set(datetime.now(UTC) - timedelta(days=1))
    core.services.new_pilot(UB, "owned", None)
    core.services.set_owner(UB, "owned", UserRef("UB", "Berta"))
    core.services.set_cadence(UB, "owned", 2, "14:30", "Europe/Berlin")
    core.services.new_pilot(UB, "orphan", None)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PILOTBOT_", "DATABASE"))}
    env["DATABASE_URL"] = core.settings.database_url
    out = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "schedule"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "owned: @Berta, Wednesday 14:30 Europe/Berlin — next Wed " in out.stdout
    assert " local (" in out.stdout and "UTC)" in out.stdout
    assert "orphan: no owner, Monday 09:00 UTC — next none (no owner)" in out.stdout


async def test_scheduler_can_be_turned_off_for_a_chat_only_replica(core: Core, clock: FixedClock) -> None:
    """No tick in a chat-only replica, yet what it records still goes out at once (SPEC §5)."""
    off = core.settings.model_copy(update={"pilotbot_scheduler": False})
    chat_only = Core(off, core.engine, core.services, core.router, core.clock)
    slack = RecordingNotifier("slack", clock)
    app = web.Application()
    scheduling.mount(app, chat_only, {"slack": slack})
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        assert scheduling.SCHEDULER_KEY not in app
        for text in ("new p1 P one", "owner p1 <@UB|Berta>", "threshold p1 90", "eval p1 95 cases 100"):
            assert chat_only.router.handle(text, UB).ok, text
        assert chat_only.router.handle("eval p1 80 cases 100", UB).ok
        await app[scheduling.DELIVER_NOW_KEY].settle()
        headline = "Page: `p1` eval fell below the bar: 95% → 80%, bar 90%."
        assert [(m.dest, m.reply.text) for m in slack.sent] == [("UB", headline)]
    finally:
        await runner.cleanup()
    assert core.services.deliver_now == []  # unregistered at shutdown


def test_the_server_registers_each_configured_surfaces_notifier(core: Core) -> None:
    from pydantic import SecretStr

    from adapters.server import build_web_app
    from adapters.slack.notifier import SlackNotifier
    from adapters.teams.app import TEAMS_NOTIFIER

    assert build_web_app(core)[scheduling.DELIVERY_KEY].notifiers.platforms == []  # no chat surface configured
    both = core.settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-test"), "teams_allow_anonymous": True})
    app = build_web_app(Core(both, core.engine, core.services, core.router, core.clock))
    notifiers = app[scheduling.DELIVERY_KEY].notifiers
    assert notifiers.platforms == ["slack", "teams"]
    assert notifiers.get("teams") is app[TEAMS_NOTIFIER]
    assert isinstance(notifiers.get("slack"), SlackNotifier) and notifiers.check("slack") is not None
