"""Thin APScheduler 3.x wiring for `pilotbot serve`: one interval job that calls `Delivery.tick()`.

The database is the source of truth (bot/duework.py, storage/outbox.py); the scheduler only says
"look now". Jobs live in memory; the first tick runs at start-up so a downtime that spanned a due
time is caught up. Two replicas each run their own scheduler; the database claim keeps every
message exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.core import Core
from bot.delivery import Delivery, TickStats
from bot.ports import Destination, Notifier
from bot.replies import Reply

log = logging.getLogger(__name__)

SCHEDULER_KEY: web.AppKey[AsyncIOScheduler] = web.AppKey("scheduler", AsyncIOScheduler)
DELIVERY_KEY: web.AppKey[Delivery] = web.AppKey("delivery", Delivery)
TICK_JOB = "pilotbot-tick"


def default_notifiers(app: web.Application, core: Core) -> dict[str, Notifier]:
    """A Notifier per platform: any a surface put on the app (Teams mounts `app[TEAMS_NOTIFIER]`),
    and Slack's built from the settings (SlackNotifier + make_slack_client with retry handlers)."""
    out: dict[str, Notifier] = {}
    for value in app.values():
        if all(hasattr(value, a) for a in ("platform", "send_dm", "send_channel")):
            out.setdefault(str(value.platform), value)
    if "slack" not in out and core.settings.slack_bot_token:
        from adapters.slack.notifier import SlackNotifier, make_slack_client

        out["slack"] = SlackNotifier(make_slack_client(core.settings))
    return out


class SlackDeliveryCheck:
    """After a crash, asks Slack whether a check-in DM already arrived (conversations.history of the
    DM since the lapsed claim) before sending it again. Needs the `im:history` scope; without it
    (or on any error) it answers "unknown" and the message is sent, as without this check."""

    def __init__(self, notifier: Any) -> None:
        self.notifier = notifier  # SlackNotifier: .client and .dm_channel(user_id)

    async def find_sent(
        self, dest: Destination, channel: str | None, reply: Reply, since: datetime
    ) -> dict[str, str] | None:
        if not reply.text:
            return None
        try:
            channel = channel or await self.notifier.dm_channel(dest.id)
            resp = await self.notifier.client.conversations_history(
                channel=channel, oldest=f"{since.timestamp() - 60:.6f}", limit=200
            )
        except Exception as exc:  # noqa: BLE001 — unknown: send (a possible duplicate beats a lost message)
            log.warning("slack: could not check the DM history of %s: %s", dest.id, exc)
            return None
        from adapters.slack.render import escape

        headline = escape(reply.text)  # the check-in headline names the pilot and the period
        for m in resp.get("messages") or []:
            if m.get("bot_id") and headline in str(m.get("text", "")):
                return {"channel": str(channel), "ts": str(m.get("ts"))}
        return None


async def _tick(delivery: Delivery) -> TickStats | None:
    try:
        return await delivery.tick()
    except Exception:  # a failed tick is logged; the next one retries from the database
        log.exception("scheduler tick failed")
        return None


def mount(app: web.Application, core: Core, notifiers: Mapping[str, Notifier] | None = None) -> None:
    """Start the scheduler in the server's running loop on start-up; stop it on cleanup."""
    if not core.settings.pilotbot_scheduler:
        log.info("scheduler: off in this process (PILOTBOT_SCHEDULER=false)")
        return
    delivery = Delivery(core.engine, core.settings, core.clock, dict(notifiers or {}))
    app[DELIVERY_KEY] = delivery
    seconds = core.settings.pilotbot_tick_seconds

    async def start(app: web.Application) -> None:
        if notifiers is None:  # resolved now: every surface has mounted by start-up
            delivery.notifiers = default_notifiers(app, core)
            slack = delivery.notifiers.get("slack")
            if slack is not None and hasattr(slack, "dm_channel") and hasattr(slack, "client"):
                delivery.checks["slack"] = SlackDeliveryCheck(slack)
        chosen = delivery.notifiers
        # AsyncIOScheduler must start inside the running loop (PLATFORM-NOTES).
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            _tick,
            "interval",
            args=[delivery],
            seconds=seconds,
            id=TICK_JOB,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(60, int(seconds * 10)),  # a busy loop must not silently skip ticks
            next_run_time=datetime.now(UTC),  # the catch-up tick at start-up
        )
        scheduler.start()
        app[SCHEDULER_KEY] = scheduler
        log.info("scheduler started: tick every %ss, notifiers: %s", seconds, ", ".join(sorted(chosen)) or "none")

    async def stop(app: web.Application) -> None:
        await delivery.close()  # finish the running tick's sends before the executor cancels it
        scheduler = app.get(SCHEDULER_KEY)
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a call_soon callback

    app.on_startup.append(start)
    app.on_cleanup.append(stop)


def describe(app: web.Application) -> dict[str, Any]:
    scheduler = app.get(SCHEDULER_KEY)
    job = scheduler.get_job(TICK_JOB) if scheduler else None
    return {"running": bool(scheduler and scheduler.running), "next_tick": job.next_run_time if job else None}
