"""Thin APScheduler 3.x wiring for `pilotbot serve`: one interval job that calls `Delivery.tick()`,
and the "deliver now" hook that sends what a change created right after its commit.

The database is the source of truth (bot/schedule/, storage/outbox.py); the scheduler only says
"look now". Jobs live in memory; the first tick runs at start-up so a downtime that spanned a due
time is caught up. Two replicas each run their own scheduler; the database claim keeps every
message exactly once.

At once (SPEC §5): every unit of work that saved outbox rows hands their ids to `DeliverNow` after
its commit (bot.core.Core.deliver_now); it starts `Delivery.deliver(ids)` in this process's event
loop (from whichever thread the change ran in) without waiting for the tick. The tick remains the
safety net for whatever that attempt could not send. `pilotbot chat` / `eval import` use the same
through `BackgroundDelivery` (a loop in a thread) when Slack or Teams settings are present.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
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


class DeliverNow:
    """The post-commit hook bound to one Delivery and one running event loop. Called from any
    thread (a change runs in a worker thread or on the loop itself); never blocks the change."""

    def __init__(self, delivery: Delivery, loop: asyncio.AbstractEventLoop) -> None:
        self.delivery = delivery
        self.loop = loop
        self.tasks: set[asyncio.Task[TickStats]] = set()

    def __call__(self, ids: Sequence[int]) -> None:
        self.loop.call_soon_threadsafe(self._start, list(ids))

    def _start(self, ids: list[int]) -> None:
        task = self.loop.create_task(self.delivery.deliver(ids))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[TickStats]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("deliver-now failed; the tick retries", exc_info=task.exception())

    async def settle(self) -> None:
        """Wait until every delivery started so far has finished (tests, shutdown)."""
        await asyncio.sleep(0)  # let call_soon_threadsafe callbacks already queued create their tasks
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
            await asyncio.sleep(0)


class BackgroundDelivery:
    """Deliver-now for a process without a server loop (`pilotbot chat`, `eval import`): an event
    loop in a daemon thread; each change waits (up to the send timeout) for its own delivery, so a
    one-shot command has sent its alert before it exits."""

    def __init__(self, core: Core, notifiers: Notifiers) -> None:
        self.delivery = Delivery(core.engine, core.settings, core.clock, notifiers)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pilotbot-deliver", daemon=True)
        self.thread.start()
        self.unregister = core.deliver_now(self)

    def __call__(self, ids: Sequence[int]) -> None:
        future = asyncio.run_coroutine_threadsafe(self.delivery.deliver(list(ids)), self.loop)
        try:
            future.result(timeout=self.delivery.send_timeout + 5)
        except Exception:  # noqa: BLE001 — pending in the database: a server's tick sends it
            log.exception("could not deliver outbox rows %s now; a running server's tick will", list(ids))

    def close(self) -> None:
        self.unregister()
        asyncio.run_coroutine_threadsafe(self.delivery.close(), self.loop).result(timeout=35)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


DELIVER_NOW_KEY: web.AppKey[DeliverNow] = web.AppKey("deliver_now", DeliverNow)


def mount(app: web.Application, core: Core, notifiers: Notifiers | Mapping[str, Notifier] | None = None) -> None:
    """Start the scheduler in the server's running loop on start-up; stop it on cleanup. The
    deliver-now hook is registered either way (a chat-only replica still sends what it records).

    `notifiers`: those the surfaces registered (adapters/server.py); read at each tick, so one
    registered after this call still counts. Failed sends are counted on /metrics when it is mounted.
    """
    delivery = Delivery(core.engine, core.settings, core.clock, notifiers or Notifiers())
    metrics = get_metrics(app)
    if metrics is not None:
        delivery.on_send_failure.append(metrics.delivery_failed)
    app[DELIVERY_KEY] = delivery
    seconds = core.settings.pilotbot_tick_seconds
    unregister: list[Any] = []

    async def start_now(app: web.Application) -> None:
        hook = DeliverNow(delivery, asyncio.get_running_loop())
        app[DELIVER_NOW_KEY] = hook
        unregister.append(core.deliver_now(hook))

    async def stop_now(app: web.Application) -> None:
        for undo in unregister:
            undo()
        await delivery.close()

    app.on_startup.append(start_now)
    app.on_cleanup.append(stop_now)
    if not core.settings.pilotbot_scheduler:
        log.info("scheduler: off in this process (PILOTBOT_SCHEDULER=false); changes still deliver at once")
        return

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
