"""Send what plan.py planned, exactly once, through the platform Notifiers (claim -> send -> mark).

One `tick()`: plan rows, then drain due check-ins and outbox rows with claim -> send -> mark
(storage/outbox.py explains the protocol, why PostgreSQL uses SKIP LOCKED, and the one window
where a duplicate remains possible). Database work runs in worker threads (sync sessions); sends
run concurrently up to `concurrency`. Each message is worded just before it is sent (compose.py).
A failed send releases its claim with backoff (`next_attempt_at`; never before the Retry-After of a
`Throttled` send) and is told to the `on_send_failure` observers (the /metrics counter); after
`outbox.MAX_ATTEMPTS` failures the row is undeliverable: logged, listed by `pilotbot schedule`,
counted in the digest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.clock import Clock
from bot.config import Settings
from bot.ports import Destination, MessageRef, Notifier, Notifiers, Throttled, Unreachable
from bot.replies import Reply
from bot.reports import pilot_reports
from bot.schedule import channels
from bot.schedule.compose import checkin_reply_for, escalation_reply, facts_of
from bot.schedule.plan import Planned, grace_of, owner_destination, plan, plan_owner_unreachable
from storage import outbox
from storage.db import session_scope
from storage.models import CheckIn, Escalation, EscalationKind, Pilot

log = logging.getLogger(__name__)


@dataclass
class TickStats:
    planned: Planned = field(default_factory=Planned)
    sent: int = 0
    recovered: int = 0  # found already delivered after a crash, so recorded instead of resent
    failed: int = 0
    undeliverable: int = 0


PUSH_PLATFORMS = frozenset({"slack", "teams"})

T = TypeVar("T")


@dataclass(frozen=True)
class CheckinJob:
    row_id: int
    dest: Destination  # the owner; `conversation` is last week's DM when one is known
    reply: Reply | None
    error: str | None = None
    lapsed_claim: datetime | None = None  # claimed before by a process that never finished: maybe sent


class NoNotifier(RuntimeError):
    """A Slack/Teams destination in a process where that platform is not configured."""

    def __init__(self, dest: Destination) -> None:
        self.platform = dest.platform
        super().__init__(f"no {dest.platform} notifier configured for {dest.key}")


class GroupCommit:
    """Marks sent check-ins in as few transactions as possible: whatever finished while the last
    commit ran goes into the next one. Each sender waits for its own commit, so the window between
    "the platform accepted it" and "sent_at is durable" stays one short commit wide."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.pending: list[tuple[int, dict[str, Any], asyncio.Future[None]]] = []
        self.task: asyncio.Task[None] | None = None

    async def mark(self, row_id: int, ref: dict[str, Any]) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((row_id, ref, fut))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._flush())
        await fut

    def _commit(self, refs: list[tuple[int, dict[str, Any]]]) -> None:
        with session_scope(self.engine) as s:
            outbox.mark_sent_many(s, CheckIn, refs, self.clock.now())

    async def _flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                await asyncio.to_thread(self._commit, [(i, ref) for i, ref, _ in batch])
            except Exception as exc:  # noqa: BLE001
                for *_, fut in batch:
                    fut.set_exception(exc)
            else:
                for *_, fut in batch:
                    fut.set_result(None)


@dataclass(frozen=True)
class Job:
    dest: Destination
    reply: Reply | None  # None: no notifier for this platform here (the console): skipped
    in_reply_to: MessageRef | None = None  # the message whose thread this answers


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


class Delivery:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Clock,
        notifiers: Notifiers | Mapping[str, Notifier],
        concurrency: int | None = None,
        batch: int | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.notifiers = Notifiers.of(notifiers)  # held, not copied: registrations before start count
        self.on_send_failure: list[Callable[[str], None]] = []  # told the platform of each failed send
        self.concurrency = max(1, concurrency or settings.pilotbot_send_concurrency)
        self.batch = batch or max(50, self.concurrency * 4)
        self.lease = timedelta(seconds=settings.pilotbot_claim_lease_seconds)
        # Every send is cut off well inside the lease, so no other replica can re-claim a row whose
        # send is still running; a cut-off send counts as failed (it may still have arrived: the
        # same narrow window as a crash, see storage/outbox.py).
        self.send_timeout = self.lease.total_seconds() * 0.8
        self._inflight: set[tuple[str, int]] = set()
        self._lock = asyncio.Lock()
        self._closing = False
        self._marks = GroupCommit(engine, clock)
        self._now_tasks: set[asyncio.Task[Any]] = set()  # deliver-now calls in progress (close waits for them)

    async def tick(self) -> TickStats:
        """Plan, then deliver everything due now. Ticks of one process never overlap."""
        async with self._lock:
            stats = TickStats()
            if self._closing:
                return stats
            stats.planned = await asyncio.to_thread(plan, self.engine, self.settings, self.clock.now())
            await self._drain(self._claim_checkins, self._send_checkin, stats)
            await self._drain(self._claim_escalations, self._send_escalation, stats)
            if stats.sent or stats.failed:
                log.info("tick: sent %d, failed %d, undeliverable %d", stats.sent, stats.failed, stats.undeliverable)
            return stats

    async def deliver(self, ids: Sequence[int]) -> TickStats:
        """Deliver exactly these outbox rows now: what a change just created (the deliver-now hook,
        adapters/scheduling.py). The same claim -> send -> mark as the tick, so a row another
        replica's tick (or this one's) claimed first is left to it; does not wait for a running tick.
        Whatever fails here stays pending with backoff, and the tick retries it."""
        stats = TickStats()
        if self._closing or not ids:
            return stats
        task = asyncio.current_task()
        if task is not None:
            self._now_tasks.add(task)
        try:
            claimed = await asyncio.to_thread(self._claim_escalations, list(ids))
            await asyncio.gather(*(self._once(("escalation", i), self._send_escalation(i, stats)) for i in claimed))
        finally:
            self._now_tasks.discard(task)  # type: ignore[arg-type]
        return stats

    async def _once(self, key: tuple[str, int], send: Coroutine[Any, Any, None]) -> None:
        """Runs a claimed send unless this process is already sending that row (its claim lapsed
        only because the lease ran out, or a tick and a deliver-now both hold it)."""
        if key in self._inflight:
            send.close()  # never awaited: dropped
            return
        self._inflight.add(key)
        try:
            await send
        finally:
            self._inflight.discard(key)

    async def _drain(
        self,
        claim: Callable[[], list[T]],
        send: Callable[[T, TickStats], Coroutine[Any, Any, None]],
        stats: TickStats,
    ) -> None:
        # A producer claims batches while `concurrency` workers send: the pipeline never waits for
        # a whole batch to finish. Rows that fail get a future next_attempt_at, so the loop ends.
        queue: asyncio.Queue[T | None] = asyncio.Queue(maxsize=self.batch)

        async def produce() -> None:
            try:
                while not self._closing:
                    ids = await asyncio.to_thread(claim)
                    if not ids:
                        return
                    for i in ids:
                        await queue.put(i)
            finally:
                for _ in range(self.concurrency):
                    await queue.put(None)

        async def work() -> None:
            while (item := await queue.get()) is not None:
                if isinstance(item, int):
                    await self._once(("escalation", item), send(item, stats))
                else:
                    await self._once(("checkin", getattr(item, "row_id", 0)), send(item, stats))

        await asyncio.gather(produce(), *(work() for _ in range(self.concurrency)))

    async def close(self, timeout: float = 30.0) -> None:
        """Stop claiming; let the sends already claimed finish and be marked (a cancelled send
        could have been accepted by the platform without being recorded)."""
        self._closing = True
        try:
            await asyncio.wait_for(self._idle(), timeout)
        except TimeoutError:
            log.warning("delivery still busy after %ss at shutdown; unfinished claims retry after the lease", timeout)

    async def _idle(self) -> None:
        async with self._lock:
            pass
        # deliver-now sends that started before the close
        await asyncio.gather(*(t for t in self._now_tasks if t is not asyncio.current_task()), return_exceptions=True)

    # ---- check-ins ----

    def _claim_checkins(self) -> list[CheckinJob]:
        """Claim a batch and build its DMs in one unit of work (a fixed number of statements)."""
        now = self.clock.now()
        with session_scope(self.engine) as s:
            claimed = outbox.claim_checkins(s, now, self.lease, self.notifiers.platforms, self.batch)
            if not claimed:
                return []
            rows = list(s.exec(select(CheckIn).where(col(CheckIn.id).in_(list(claimed)))))
            pilots = list(s.exec(select(Pilot).where(col(Pilot.id).in_({c.pilot_id for c in rows}))))
            reports = pilot_reports(s, pilots, now, grace_of(self.settings))
            # Slack: post straight into the DM channel last week's check-in went to, instead of
            # conversations.open + post for every owner after each restart (the IM id is stable).
            channels = outbox.last_dm_channels(s, sorted({c.owner_ref for c in rows if c.owner_ref}))
            jobs = []
            for c in rows:
                assert c.id is not None and c.owner_ref is not None
                dest = replace(owner_destination(c.owner_ref), conversation=channels.get(c.owner_ref))
                report = reports.get(c.pilot_id)
                try:
                    if report is None:
                        raise LookupError(f"pilot {c.pilot_id} is gone")
                    jobs.append(CheckinJob(c.id, dest, checkin_reply_for(report, c.period), None, claimed.get(c.id)))
                except Exception as exc:  # noqa: BLE001 — one bad row must not stop the batch
                    jobs.append(CheckinJob(c.id, dest, None, _error_text(exc)))
            return jobs

    async def _send_checkin(self, job: CheckinJob, stats: TickStats) -> None:
        if job.reply is None:  # the message could not be built: no send was tried
            await self._failed(CheckIn, job.row_id, RuntimeError(job.error or "no message"), stats, None)
            return
        try:
            found = await self._already_sent(job)
            if found is not None:  # it did arrive before the crash: record it, do not send again
                log.info("check-in %s was already delivered before a crash; recorded, not resent", job.row_id)
                await self._marks.mark(job.row_id, found.to_json())
                stats.recovered += 1
                return
            ref = await self._send(job.dest, job.reply)
        except Exception as exc:  # noqa: BLE001 — any failure leaves the row pending with backoff
            await self._failed(CheckIn, job.row_id, exc, stats, job.dest.platform)
            return
        try:
            await self._marks.mark(job.row_id, ref.to_json())
        except Exception:  # the message went out but is not recorded: resent after the lease (logged)
            log.exception("check-in %s was sent but could not be marked sent", job.row_id)
            return
        stats.sent += 1

    async def _already_sent(self, job: CheckinJob) -> MessageRef | None:
        """After a lapsed claim, ask the platform (when it can be asked) whether it arrived."""
        check = self.notifiers.check(job.dest.platform)
        if job.lapsed_claim is None or check is None or job.reply is None:
            return None
        return await asyncio.wait_for(check.find_sent(job.dest, job.reply, job.lapsed_claim), self.send_timeout)

    # ---- escalations, reminders, notes, digests (the outbox) ----

    def _claim_escalations(self, ids: Sequence[int] | None = None) -> list[int]:
        with session_scope(self.engine) as s:
            return outbox.claim_escalations(s, self.clock.now(), self.lease, self.batch, ids)

    def _escalation_jobs(self, row_id: int) -> list[Job]:
        with session_scope(self.engine) as s:
            e = s.get(Escalation, row_id)
            if e is None or e.sent_at is not None:
                return []
            done = dict(e.payload.get("delivered") or {})
            thread = None
            facts = facts_of(e)
            if e.kind == EscalationKind.checkin_reminder.value and facts.get("checkin_id"):
                # SPEC §5: on Slack the reminder is a reply in the check-in's thread.
                checkin = s.get(CheckIn, facts["checkin_id"])
                thread = MessageRef.from_json(checkin.message_ref if checkin else None)
            jobs: list[Job] = []
            for dest in (Destination.parse(t) for t in e.targets if t not in done):
                if dest.platform not in self.notifiers:
                    if dest.platform in PUSH_PLATFORMS:
                        # Slack/Teams not configured in this process: keep it pending (backoff, then
                        # undeliverable and visible in `status`) rather than dropping it.
                        raise NoNotifier(dest)
                    jobs.append(Job(dest, None))  # the console has no push channel: skipped
                    continue
                reply = escalation_reply(s, e, dest, self.settings, self.clock.now())
                same = thread is not None and thread.platform == dest.platform
                jobs.append(Job(dest, reply, thread if same else None))
            return jobs

    async def _send_escalation(self, row_id: int, stats: TickStats) -> None:
        # Each target is delivered and recorded on its own (payload["delivered"]), so a retry after
        # a partial failure never repeats a target that already got the message.
        sending: str | None = None  # the platform of the send in flight, for the failure counter
        told: list[int] = []  # DMs opened by a channel that refused the post (channels.py)
        try:
            jobs = await asyncio.to_thread(self._escalation_jobs, row_id)
            while jobs:
                job = jobs.pop(0)
                sending = job.dest.platform
                try:
                    ref = await self._deliver(job)
                except Unreachable as exc:
                    if not job.dest.is_channel:
                        raise  # a person may still install the app: retried with backoff
                    # A channel the bot cannot post to stays so until someone invites it: recorded as
                    # refused (never retried), whoever set `escalate` is told once, the other targets
                    # still get the message.
                    self._tell_failure(job.dest.platform)
                    log.warning("escalation %s: %s refused the post: %s", row_id, job.dest.key, exc.reason or exc)
                    ref = {"unreachable": exc.reason or "unreachable"}
                    told.extend(await asyncio.to_thread(self._channel_refused, row_id, job.dest, exc.reason))
                    await asyncio.to_thread(self._record_target, row_id, job.dest, ref)
                    # The rest is worded again, knowing the channel was not told (the owner's copy
                    # of a missed review says "#x was told" only when it was).
                    jobs = await asyncio.to_thread(self._escalation_jobs, row_id)
                    continue
                sending = None
                await asyncio.to_thread(self._record_target, row_id, job.dest, ref)
        except Exception as exc:  # noqa: BLE001
            await self._failed(Escalation, row_id, exc, stats, getattr(exc, "platform", sending))
            return
        await asyncio.to_thread(self._mark, Escalation, row_id, {})
        stats.sent += 1
        if told:
            more = await self.deliver(told)
            stats.sent, stats.failed = stats.sent + more.sent, stats.failed + more.failed

    async def _deliver(self, job: Job) -> dict[str, Any]:
        if job.reply is None:
            return {"skipped": f"no {job.dest.platform} notifier"}
        return (await self._send(job.dest, job.reply, job.in_reply_to)).to_json()

    async def _send(self, dest: Destination, reply: Reply, in_reply_to: MessageRef | None = None) -> MessageRef:
        notifier = self.notifiers.get(dest.platform)
        if notifier is None:
            raise NoNotifier(dest)
        return await asyncio.wait_for(notifier.send(dest, reply, in_reply_to), self.send_timeout)

    def _record_target(self, row_id: int, dest: Destination, ref: dict[str, Any]) -> None:
        with session_scope(self.engine) as s:
            e = s.get(Escalation, row_id)
            if e is None:
                return
            payload = dict(e.payload)
            payload["delivered"] = {**(payload.get("delivered") or {}), dest.key: ref}
            e.payload = payload  # a new object: JSON columns do not track in-place changes
            s.add(e)
            if dest.is_channel and e.pilot_id is not None and "unreachable" not in ref:
                channels.cleared(s, e.pilot_id, self.clock.now(), "post", dest.key)  # it reaches the channel again
            s.commit()

    def _channel_refused(self, row_id: int, channel: Destination, reason: str | None) -> list[int]:
        """The outbox rows to send now because `channel` refused row `row_id` for good."""
        with session_scope(self.engine) as s:
            e = s.get(Escalation, row_id)
            pilot = s.get(Pilot, e.pilot_id) if e is not None and e.pilot_id is not None else None
            if e is None or pilot is None:
                log.warning("%s cannot be posted to (no pilot to record it on)", channel.key)
                return []
            new_id = channels.opened(s, pilot, channel, self.clock.now(), e.kind, reason)
            s.commit()
            return [new_id] if new_id is not None else []

    # ---- bookkeeping ----

    def _mark(self, model: Any, row_id: int, values: dict[str, Any]) -> None:
        with session_scope(self.engine) as s:
            outbox.mark_sent(s, model, row_id, self.clock.now(), **values)

    def _owner_unreachable(self, checkin_id: int, unreachable: Destination) -> None:
        with session_scope(self.engine) as s:
            if not plan_owner_unreachable(s, checkin_id, unreachable, self.clock.now()):
                log.warning(
                    "check-in %s: %s cannot be reached (no escalation channel to tell)", checkin_id, unreachable.key
                )

    async def _failed(
        self, model: Any, row_id: int, exc: BaseException, stats: TickStats, platform: str | None
    ) -> None:
        """`platform`: the platform whose send failed (None: no send was tried)."""

        def record() -> int:
            with session_scope(self.engine) as s:
                return outbox.mark_failed(
                    s,
                    model,
                    row_id,
                    self.clock.now(),
                    _error_text(exc),
                    self.settings.pilotbot_tick_seconds,
                    not_before=exc.retry_after if isinstance(exc, Throttled) else 0.0,
                )

        attempts = await asyncio.to_thread(record)
        stats.failed += 1
        if platform is not None:
            self._tell_failure(platform)
        if model is CheckIn and isinstance(exc, Unreachable):
            # SPEC §5 / Teams: the owner must install the app; the escalation channel is told once.
            await asyncio.to_thread(self._owner_unreachable, row_id, exc.destination)
        if attempts >= outbox.MAX_ATTEMPTS:
            stats.undeliverable += 1
            log.error("%s %s undeliverable after %d attempts: %s", model.__tablename__, row_id, attempts, exc)
        else:
            log.warning("%s %s send failed (attempt %d): %s", model.__tablename__, row_id, attempts, exc)

    def _tell_failure(self, platform: str) -> None:
        for observe in self.on_send_failure:
            try:
                observe(platform)
            except Exception:  # a broken observer must not stop delivery
                log.exception("send-failure observer failed")
