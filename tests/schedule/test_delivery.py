"""Delivery rules on both databases: first check-in after the owner, eval alerts, backoff, replicas."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from bot.clock import FixedClock
from bot.commands import ChannelRef, UserRef
from bot.config import Settings
from bot.core import Core
from bot.ports import Actor, MessageRef
from bot.replies import render_text
from bot.schedule.deliver import Delivery
from bot.schedule.operator import schedule
from storage import outbox
from storage.db import session_scope
from storage.models import CheckIn, Escalation
from tests.schedule.recording import RecordingNotifier

UB = Actor("slack", "UB", "Berta")
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 09:00 UTC: the default cadence


def _setup(core: Core, slug: str = "p1", channel: bool = True) -> None:
    core.services.new_pilot(UB, slug, None)
    core.services.set_owner(UB, slug, UserRef("UB", "Berta"))
    if channel:
        core.services.set_escalation(UB, slug, ChannelRef("CE", "esc"))


def _delivery(core: Core, clock: FixedClock, **kw: object) -> tuple[Delivery, RecordingNotifier]:
    slack = RecordingNotifier("slack", clock)
    return Delivery(core.engine, core.settings, clock, {"slack": slack}, **kw), slack  # type: ignore[arg-type]


def test_first_checkin_is_the_first_cadence_moment_after_the_owner(core: Core, clock: FixedClock) -> None:
    clock.set(MONDAY + timedelta(days=1))  # owner named on Tuesday
    _setup(core)
    delivery, slack = _delivery(core, clock)
    asyncio.run(delivery.tick())
    assert slack.sent == []  # none for the Monday before the owner existed
    clock.set(MONDAY + timedelta(days=7) - timedelta(minutes=1))
    asyncio.run(delivery.tick())
    assert slack.sent == []
    clock.set(MONDAY + timedelta(days=7))
    asyncio.run(delivery.tick())
    asyncio.run(delivery.tick())
    assert [(m.dest, m.reply.form.period) for m in slack.sent if m.reply.form] == [("UB", "2026-W49")]


def test_no_owner_gets_no_checkin(core: Core, clock: FixedClock) -> None:
    clock.set(MONDAY - timedelta(days=1))
    core.services.new_pilot(UB, "lonely", None)
    delivery, slack = _delivery(core, clock)
    clock.set(MONDAY + timedelta(hours=1))
    asyncio.run(delivery.tick())
    assert slack.sent == []  # and no channel: the digest says it
    with session_scope(core.engine) as s:
        assert len(s.exec(select(CheckIn)).all()) == 0


def test_answered_early_is_not_sent(core: Core, clock: FixedClock) -> None:
    clock.set(MONDAY - timedelta(days=2))
    _setup(core)
    clock.set(MONDAY - timedelta(hours=1))
    core.services.answer_checkin(UB, "p1", {})
    delivery, slack = _delivery(core, clock)
    clock.set(MONDAY + timedelta(hours=50))
    asyncio.run(delivery.tick())
    assert slack.sent == []


def test_eval_alert_goes_to_owner_and_channel_once(core: Core, clock: FixedClock) -> None:
    _setup(core)
    core.services.set_threshold(UB, "p1", 95, 100, None)
    core.services.record_eval(UB, "p1", 96.0, 150, None)
    out = core.services.record_eval(UB, "p1", 91.3, 150, "prompt-v7")
    assert out.alerts
    delivery, slack = _delivery(core, clock)
    asyncio.run(delivery.tick())
    asyncio.run(delivery.tick())
    alerts = [m for m in slack.sent if "eval" in m.reply.text]
    assert sorted((m.dest, m.is_channel) for m in alerts) == [("CE", True), ("UB", False)]
    text = alerts[0].reply.text
    assert "96%" in text and "91.3%" in text and "bar 95%" in text and "prompt-v7" in text
    assert "re-run" in render_text(alerts[0].reply)


def test_failed_send_backs_off_then_becomes_undeliverable(core: Core, clock: FixedClock) -> None:
    clock.set(MONDAY - timedelta(days=1))
    _setup(core, channel=False)
    clock.set(MONDAY)
    delivery, slack = _delivery(core, clock)
    slack.fail_next = 10**6
    asyncio.run(delivery.tick())
    with session_scope(core.engine) as s:
        row = s.exec(select(CheckIn)).one()
        assert (row.attempts, row.sent_at, row.claimed_at) == (1, None, None)
        assert row.next_attempt_at == MONDAY + timedelta(seconds=30)
        assert "platform said no" in (row.last_error or "")
    asyncio.run(delivery.tick())  # inside the backoff: not tried
    with session_scope(core.engine) as s:
        assert s.exec(select(CheckIn)).one().attempts == 1
    for _ in range(outbox.MAX_ATTEMPTS + 2):
        clock.advance(timedelta(hours=1))
        asyncio.run(delivery.tick())
    with session_scope(core.engine) as s:
        assert s.exec(select(CheckIn)).one().attempts >= outbox.MAX_ATTEMPTS
    assert "1 undeliverable" in render_text(schedule(core.engine, core.settings, clock.now()))
    for text in ("status", "status p1"):
        status = render_text(core.router.handle(text, UB))
        assert "1 scheduled message(s) failed 6 or more times and are retried hourly" in status
        assert "platform said no" not in status  # the platform's error text is for operators only
    slack.fail_next = 0  # the platform recovers: the check-in still arrives, once
    clock.advance(timedelta(hours=1))
    asyncio.run(delivery.tick())
    asyncio.run(delivery.tick())
    assert len([m for m in slack.sent if m.reply.form]) == 1
    assert "undeliverable" not in render_text(core.router.handle("status p1", UB))


def test_recovers_after_transient_failures(core: Core, clock: FixedClock) -> None:
    clock.set(MONDAY - timedelta(days=1))
    _setup(core)
    clock.set(MONDAY)
    delivery, slack = _delivery(core, clock)
    slack.fail_next = 2
    asyncio.run(delivery.tick())
    clock.advance(timedelta(seconds=30))
    asyncio.run(delivery.tick())
    clock.advance(timedelta(minutes=1))
    asyncio.run(delivery.tick())
    assert len([m for m in slack.sent if m.reply.form]) == 1


def test_partial_target_failure_does_not_repeat_the_delivered_target(core: Core, clock: FixedClock) -> None:
    clock.set(MONDAY - timedelta(days=1))
    _setup(core)
    delivery, slack = _delivery(core, clock)
    clock.set(MONDAY + timedelta(hours=48))  # the server was down: the check-in goes out late
    asyncio.run(delivery.tick())
    assert not [m for m in slack.sent if m.text.startswith("You missed")]  # not a miss it never received
    clock.advance(timedelta(hours=24, minutes=1))  # a day after it went out, still unanswered
    slack.fail_channels = True
    asyncio.run(delivery.tick())
    slack.fail_channels = False
    clock.advance(timedelta(minutes=5))
    asyncio.run(delivery.tick())
    told = [m for m in slack.sent if m.text.startswith("You missed")]
    channel = [m for m in slack.sent if m.dest == "CE"]
    assert len(told) == 1 and len(channel) == 1
    assert channel[0].text.startswith("@Berta missed the weekly review of p1")


def test_two_replicas_send_each_checkin_once(core: Core, clock: FixedClock) -> None:
    clock.set(MONDAY - timedelta(days=1))
    for i in range(60):
        core.services.new_pilot(UB, f"p{i:02d}", None)
        core.services.set_owner(UB, f"p{i:02d}", UserRef(f"U{i:02d}", None))
    clock.set(MONDAY)
    a, sa = _delivery(core, clock, concurrency=4, batch=7)
    b, sb = _delivery(core, clock, concurrency=4, batch=7)

    async def both() -> None:
        await asyncio.gather(a.tick(), b.tick(), a.tick())

    asyncio.run(both())
    sent = [m.dest for m in sa.sent + sb.sent if m.reply.form]
    assert sorted(sent) == sorted(f"U{i:02d}" for i in range(60))
    with session_scope(core.engine) as s:
        assert len(s.exec(select(CheckIn).where(col(CheckIn.sent_at).is_(None))).all()) == 0


def test_reminder_answers_in_the_checkin_thread(core: Core, clock: FixedClock) -> None:
    clock.set(MONDAY - timedelta(days=1))
    _setup(core)
    delivery, slack = _delivery(core, clock)
    clock.set(MONDAY)
    asyncio.run(delivery.tick())
    clock.set(MONDAY + timedelta(hours=24))
    asyncio.run(delivery.tick())
    [checkin, reminder] = slack.sent
    assert checkin.reply.form and checkin.in_reply_to is None
    assert reminder.text.startswith("Reminder:") and reminder.dest == "UB"
    assert reminder.in_reply_to == MessageRef("slack", "UB", "1")  # the check-in's message
    with session_scope(core.engine) as s:
        assert s.exec(select(CheckIn)).one().reminded_at == MONDAY + timedelta(hours=24)
        assert s.exec(select(Escalation).where(col(Escalation.kind) == "checkin_reminder")).one().sent_at is not None


def test_weekly_digest(core: Core, clock: FixedClock, settings: Settings) -> None:
    clock.set(MONDAY - timedelta(days=9))
    _setup(core)
    core.services.new_pilot(UB, "orphan", None)
    settings = settings.model_copy(update={"pilotbot_digest_channel": "slack:CDIGEST"})
    slack = RecordingNotifier("slack", clock)
    delivery = Delivery(core.engine, settings, clock, {"slack": slack})
    clock.set(MONDAY - timedelta(days=7))  # the previous Monday: its check-in is missed by now
    asyncio.run(delivery.tick())
    slack.sent.clear()
    clock.set(MONDAY + timedelta(minutes=1))
    asyncio.run(delivery.tick())
    asyncio.run(delivery.tick())
    digests = [m for m in slack.sent if m.dest == "CDIGEST"]
    assert len(digests) == 1
    text = digests[0].text
    assert "Weekly pilot digest, 2026-W48" in text
    assert "0 of 2 pilots ready to ship" in text
    assert "Missed check-ins this week: 1 (p1 (2026-W47, @Berta))" in text  # the owner, mentioned
    assert "Escalations this week: 1" in text
    assert "Without an owner: orphan" in text


def test_next_weeks_checkin_reuses_the_known_dm_channel(core: Core, clock: FixedClock) -> None:
    clock.set(MONDAY - timedelta(days=1))
    _setup(core, channel=False)
    slack = RecordingNotifier("slack", clock)
    clock.set(MONDAY)
    asyncio.run(Delivery(core.engine, core.settings, clock, {"slack": slack}).tick())
    core.services.answer_checkin(UB, "p1", {})
    assert [m.reply.form.period for m in slack.sent if m.reply.form] == ["2026-W48"]  # opened a DM
    clock.set(MONDAY + timedelta(days=7))  # a fresh process next week: no in-memory DM cache
    asyncio.run(Delivery(core.engine, core.settings, clock, {"slack": slack}).tick())
    got = [(m.reply.form.period, m.conversation) for m in slack.sent if m.reply.form]
    assert got == [("2026-W48", None), ("2026-W49", "UB")]  # week 2 names last week's DM conversation


def test_reassigned_owner_is_not_escalated_for_the_previous_owners_checkin(core: Core, clock: FixedClock) -> None:
    clock.set(MONDAY - timedelta(days=1))
    _setup(core)
    delivery, slack = _delivery(core, clock)
    clock.set(MONDAY)
    asyncio.run(delivery.tick())
    clock.set(MONDAY + timedelta(hours=30))
    core.services.set_owner(UB, "p1", UserRef("UC", "Carl"))
    clock.set(MONDAY + timedelta(hours=49))
    asyncio.run(delivery.tick())
    assert not [m for m in slack.sent if m.dest == "CE"]
    assert [m.dest for m in slack.sent if m.reply.form] == ["UB"]  # Carl's first comes next Monday


def test_an_alert_for_an_unconfigured_platform_stays_pending(core: Core, clock: FixedClock) -> None:
    """A Slack target in a process without Slack is kept (backoff, then undeliverable), never dropped."""
    from storage.models import Escalation

    _setup(core)
    core.services.set_threshold(UB, "p1", 95, 100, None)
    core.services.record_eval(UB, "p1", 96.0, 150, None)
    core.services.record_eval(UB, "p1", 91.3, 150, None)
    delivery = Delivery(core.engine, core.settings, clock, {})  # no notifiers at all
    asyncio.run(delivery.tick())
    with session_scope(core.engine) as s:
        row = s.exec(select(Escalation).where(Escalation.kind == "eval_below_bar")).one()
        assert row.sent_at is None and row.attempts == 1
        assert "no slack notifier configured" in (row.last_error or "")
