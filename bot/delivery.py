"""Send what bot/duework.py planned, exactly once, through the platform Notifiers.

One `tick()`: plan rows, then drain due check-ins and outbox rows with claim -> send -> mark
(storage/outbox.py explains the protocol, why PostgreSQL uses SKIP LOCKED, and the one window
where a duplicate remains possible). Database work runs in worker threads (sync sessions); sends
run concurrently up to `concurrency`. A failed send releases its claim with backoff
(`next_attempt_at`); after `outbox.MAX_ATTEMPTS` failures the row is undeliverable: logged, listed
by `pilotbot schedule`, counted in the digest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.engine import Engine

from bot.clock import Clock
from bot.config import Settings
from bot.duework import Planned, checkin_reply, escalation_reply, grace_of, plan
from bot.ports import Destination, Notifier
from bot.replies import Reply
from storage import outbox
from storage.db import session_scope
from storage.models import CheckIn, Escalation, EscalationKind

log = logging.getLogger(__name__)


@dataclass
class TickStats:
    planned: Planned = field(default_factory=Planned)
    sent: int = 0
    failed: int = 0
    undeliverable: int = 0


@runtime_checkable
class ThreadedNotifier(Protocol):
    """Optional: a notifier that can answer in a message's thread (Slack's `SlackNotifier.post`)."""

    async def post(self, channel: str, reply: Reply, thread_ts: str | None = None) -> dict[str, str]: ...


@dataclass(frozen=True)
class Job:
    target: str
    dest: Destination
    reply: Reply | None  # None: no notifier for this platform here
    thread: tuple[str, str] | None = None  # (channel, ts) to answer in


def parse_target(target: str) -> Destination:
    """`slack:user:U1` / `teams:channel:19:abc@thread` -> Destination."""
    platform, kind, ident = target.split(":", 2)
    return Destination(platform=platform, id=ident, is_channel=kind == "channel")


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


class Delivery:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Clock,
        notifiers: Mapping[str, Notifier],
        concurrency: int | None = None,
        batch: int | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.notifiers = dict(notifiers)
        self.concurrency = max(1, concurrency or settings.pilotbot_send_concurrency)
        self.batch = batch or max(50, self.concurrency * 4)
        self.lease = timedelta(seconds=settings.pilotbot_claim_lease_seconds)
        # Every send is cut off well inside the lease, so no other replica can re-claim a row whose
        # send is still running; a cut-off send counts as failed (it may still have arrived: the
        # same narrow window as a crash, see storage/outbox.py).
        self.send_timeout = self.lease.total_seconds() * 0.8
        self._inflight: set[tuple[str, int]] = set()
        self._lock = asyncio.Lock()

    async def tick(self) -> TickStats:
        """Plan, then deliver everything due now. Ticks of one process never overlap."""
        async with self._lock:
            stats = TickStats()
            stats.planned = await asyncio.to_thread(plan, self.engine, self.settings, self.clock.now())
            await self._drain(self._claim_checkins, self._send_checkin, stats)
            await self._drain(self._claim_escalations, self._send_escalation, stats)
            if stats.sent or stats.failed:
                log.info("tick: sent %d, failed %d, undeliverable %d", stats.sent, stats.failed, stats.undeliverable)
            return stats

    async def _drain(
        self,
        claim: Callable[[], list[int]],
        send: Callable[[int, TickStats], Awaitable[None]],
        stats: TickStats,
    ) -> None:
        # A producer claims batches while `concurrency` workers send: the pipeline never waits for
        # a whole batch to finish. Rows that fail get a future next_attempt_at, so the loop ends.
        queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=self.batch)

        async def produce() -> None:
            try:
                while True:
                    ids = await asyncio.to_thread(claim)
                    if not ids:
                        return
                    for i in ids:
                        await queue.put(i)
            finally:
                for _ in range(self.concurrency):
                    await queue.put(None)

        async def work() -> None:
            while (row_id := await queue.get()) is not None:
                key = (claim.__name__, row_id)
                if key in self._inflight:
                    continue  # our own send is still running (re-claimed only because the lease ran out)
                self._inflight.add(key)
                try:
                    await send(row_id, stats)
                finally:
                    self._inflight.discard(key)

        await asyncio.gather(produce(), *(work() for _ in range(self.concurrency)))

    # ---- check-ins ----

    def _claim_checkins(self) -> list[int]:
        with session_scope(self.engine) as s:
            return outbox.claim_checkins(s, self.clock.now(), self.lease, sorted(self.notifiers), self.batch)

    def _checkin_job(self, row_id: int) -> tuple[Destination, Reply] | None:
        with session_scope(self.engine) as s:
            c = s.get(CheckIn, row_id)
            if c is None or c.owner_ref is None or c.sent_at is not None:
                return None
            platform, _, user = c.owner_ref.partition(":")
            return Destination(platform, user), checkin_reply(s, c, self.clock.now(), grace_of(self.settings))

    async def _send_checkin(self, row_id: int, stats: TickStats) -> None:
        try:
            job = await asyncio.to_thread(self._checkin_job, row_id)
            if job is None:
                return
            dest, reply = job
            ref = await asyncio.wait_for(self.notifiers[dest.platform].send_dm(dest, reply), self.send_timeout)
        except Exception as exc:  # noqa: BLE001 — any failure leaves the row pending with backoff
            await self._failed(CheckIn, row_id, exc, stats)
            return
        await asyncio.to_thread(self._mark, CheckIn, row_id, {"message_ref": dict(ref or {})})
        stats.sent += 1

    # ---- escalations, reminders, notes, digests (the outbox) ----

    def _claim_escalations(self) -> list[int]:
        with session_scope(self.engine) as s:
            return outbox.claim_escalations(s, self.clock.now(), self.lease, self.batch)

    def _escalation_jobs(self, row_id: int) -> list[Job]:
        with session_scope(self.engine) as s:
            e = s.get(Escalation, row_id)
            if e is None or e.sent_at is not None:
                return []
            done = dict(e.payload.get("delivered") or {})
            thread = None
            if e.kind == EscalationKind.checkin_reminder.value and e.payload.get("checkin_id"):
                # SPEC §5: on Slack the reminder is a reply in the check-in's thread.
                checkin = s.get(CheckIn, e.payload["checkin_id"])
                ref = (checkin.message_ref if checkin else None) or {}
                if ref.get("channel") and ref.get("ts"):
                    thread = (str(ref["channel"]), str(ref["ts"]))
            jobs: list[Job] = []
            for target in e.targets:
                if target in done:
                    continue
                dest = parse_target(target)
                if dest.platform not in self.notifiers:
                    jobs.append(Job(target, dest, None))  # recorded as skipped: no surface for it here
                    continue
                reply = escalation_reply(s, e, target, self.settings, self.clock.now())
                jobs.append(Job(target, dest, reply, thread))
            return jobs

    async def _send_escalation(self, row_id: int, stats: TickStats) -> None:
        # Each target is delivered and recorded on its own (payload["delivered"]), so a retry after
        # a partial failure never repeats a target that already got the message.
        try:
            jobs = await asyncio.to_thread(self._escalation_jobs, row_id)
            for job in jobs:
                ref = await self._deliver(job)
                await asyncio.to_thread(self._record_target, row_id, job.target, ref)
        except Exception as exc:  # noqa: BLE001
            await self._failed(Escalation, row_id, exc, stats)
            return
        await asyncio.to_thread(self._mark, Escalation, row_id, {})
        stats.sent += 1

    async def _deliver(self, job: Job) -> dict[str, Any]:
        dest, reply = job.dest, job.reply
        if reply is None:
            return {"skipped": f"no {dest.platform} notifier"}
        notifier = self.notifiers[dest.platform]
        if job.thread and isinstance(notifier, ThreadedNotifier):
            call = notifier.post(job.thread[0], reply, thread_ts=job.thread[1])
        elif dest.is_channel:
            call = notifier.send_channel(dest, reply)
        else:
            call = notifier.send_dm(dest, reply)
        return dict(await asyncio.wait_for(call, self.send_timeout) or {})

    def _record_target(self, row_id: int, target: str, ref: dict[str, Any]) -> None:
        with session_scope(self.engine) as s:
            e = s.get(Escalation, row_id)
            if e is None:
                return
            payload = dict(e.payload)
            payload["delivered"] = {**(payload.get("delivered") or {}), target: ref}
            e.payload = payload  # a new object: JSON columns do not track in-place changes
            s.add(e)
            s.commit()

    # ---- bookkeeping ----

    def _mark(self, model: Any, row_id: int, values: dict[str, Any]) -> None:
        with session_scope(self.engine) as s:
            outbox.mark_sent(s, model, row_id, self.clock.now(), **values)

    async def _failed(self, model: Any, row_id: int, exc: BaseException, stats: TickStats) -> None:
        def record() -> int:
            with session_scope(self.engine) as s:
                return outbox.mark_failed(
                    s, model, row_id, self.clock.now(), _error_text(exc), self.settings.pilotbot_tick_seconds
                )

        attempts = await asyncio.to_thread(record)
        stats.failed += 1
        if attempts >= outbox.MAX_ATTEMPTS:
            stats.undeliverable += 1
            log.error("%s %s undeliverable after %d attempts: %s", model.__tablename__, row_id, attempts, exc)
        else:
            log.warning("%s %s send failed (attempt %d): %s", model.__tablename__, row_id, attempts, exc)
