"""Thin APScheduler 3.x wiring for `pilotbot serve`: one interval job that calls `Delivery.tick()`.

The database is the source of truth (bot/schedule/, storage/outbox.py); the scheduler only says
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

from adapters.metrics import get_metrics
from bot.core import Core
from bot.ports import Notifier, Notifiers
from bot.schedule.deliver import Delivery, TickStats

log = logging.getLogger(__name__)

SCHEDULER_KEY: web.AppKey[AsyncIOScheduler] = web.AppKey("scheduler", AsyncIOScheduler)
DELIVERY_KEY: web.AppKey[Delivery] = web.AppKey("delivery", Delivery)
TICK_JOB = "pilotbot-tick"


async def _tick(delivery: Delivery) -> TickStats | None:
    try:
        return await delivery.tick()
    except Exception:  # a failed tick is logged; the next one retries from the database
        log.exception("scheduler tick failed")
        return None


def mount(app: web.Application, core: Core, notifiers: Notifiers | Mapping[str, Notifier] | None = None) -> None:
    """Start the scheduler in the server's running loop on start-up; stop it on cleanup.

    `notifiers`: those the surfaces registered (adapters/server.py); read at each tick, so one
    registered after this call still counts. Failed sends are counted on /metrics when it is mounted.
    """
    if not core.settings.pilotbot_scheduler:
        log.info("scheduler: off in this process (PILOTBOT_SCHEDULER=false)")
        return
    delivery = Delivery(core.engine, core.settings, core.clock, notifiers or Notifiers())
    metrics = get_metrics(app)
    if metrics is not None:
        delivery.on_send_failure.append(metrics.delivery_failed)
    app[DELIVERY_KEY] = delivery
    seconds = core.settings.pilotbot_tick_seconds

    async def start(app: web.Application) -> None:
        chosen = delivery.notifiers.platforms
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
