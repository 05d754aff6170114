"""SPEC §8 in the scheduler: a paused pilot gets nothing for a month (no check-in, reminder,
escalation or eval alert; the check-in sent just before the pause is not escalated), and once
resumed continues from the next cadence moment with no backlog of missed weeks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.clock import FixedClock
from bot.commands import ChannelRef, UserRef
from bot.core import Core
from bot.ports import Actor
from bot.schedule.deliver import Delivery
from tests.schedule.recording import RecordingNotifier

PAULA = Actor("slack", "UP", "Paula")  # Europe/Berlin Mondays 09:00, never answers
START = datetime(2026, 10, 11, 10, 0, tzinfo=UTC)  # a Sunday
PAUSE_AT = datetime(2026, 10, 12, 12, 0, tzinfo=UTC)  # the W42 check-in went out at 07:00 UTC
RESUME_AT = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)  # a Wednesday, a month later
END = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
STEP = timedelta(hours=1)


def test_paused_pilot_gets_nothing_for_a_month_and_resumes_without_backlog(core: Core, clock: FixedClock) -> None:
    clock.set(START)
    s = core.services
    s.new_pilot(PAULA, "paused-bot", None)
    s.set_owner(PAULA, "paused-bot", UserRef("UP", "Paula"))
    s.set_cadence(PAULA, "paused-bot", 0, "09:00", "Europe/Berlin")
    s.set_escalation(PAULA, "paused-bot", ChannelRef("CP", "pilots"))
    s.set_threshold(PAULA, "paused-bot", 90, 10, None)
    slack = RecordingNotifier("slack", clock)
    delivery = Delivery(core.engine, core.settings, clock, {"slack": slack})

    async def run_until(end: datetime) -> None:
        while clock.now() < end:
            await delivery.tick()
            clock.advance(STEP)

    asyncio.run(run_until(PAUSE_AT))
    assert [m.reply.form.period for m in slack.sent if m.reply.form] == ["2026-W42"]
    s.pause(PAULA, "paused-bot", "vendor outage")
    sent_before_pause = len(slack.sent)

    asyncio.run(run_until(PAUSE_AT + timedelta(days=14)))
    out = s.record_eval(PAULA, "paused-bot", 50, 20, None)  # far below the bar: no alert while paused
    assert out.alerts == []
    asyncio.run(run_until(RESUME_AT))
    assert slack.sent[sent_before_pause:] == [], [m.text for m in slack.sent[sent_before_pause:]]

    s.resume(PAULA, "paused-bot")
    asyncio.run(run_until(END))
    after = slack.sent[sent_before_pause:]
    checkins = [m for m in after if m.reply.form is not None]
    # W46's moment (Mon Nov 9) passed while paused: not caught up. The next moment is Mon Nov 16.
    assert [(m.reply.form.period, m.at) for m in checkins] == [("2026-W47", datetime(2026, 11, 16, 8, 0, tzinfo=UTC))]
    reminders = [m for m in after if m.text.startswith("Reminder")]
    assert [m.at for m in reminders] == [datetime(2026, 11, 17, 8, 0, tzinfo=UTC)]
    # The W42 check-in sent before the pause is never escalated, not even after the resume.
    assert not [m for m in after if "2026-W42" in m.text]
    # The only escalation is W47's own, due + 48 h after the resumed check-in went unanswered.
    assert [m.at for m in after if m.dest == "CP"] == [datetime(2026, 11, 18, 8, 0, tzinfo=UTC)]


def test_a_checkin_still_pending_when_the_pilot_is_paused_is_not_sent(core: Core, clock: FixedClock) -> None:
    """The Monday check-in is refused once (pending, in backoff); the owner pauses the pilot: no
    retry delivers it while paused, nor after the resume (no backlog): the next one is next week's."""
    clock.set(START)
    s = core.services
    s.new_pilot(PAULA, "paused-bot", None)
    s.set_owner(PAULA, "paused-bot", UserRef("UP", "Paula"))
    s.set_cadence(PAULA, "paused-bot", 0, "09:00", "Europe/Berlin")
    slack = RecordingNotifier("slack", clock, fail_next=1)
    delivery = Delivery(core.engine, core.settings, clock, {"slack": slack})
    clock.set(datetime(2026, 10, 12, 7, 0, tzinfo=UTC))  # W42's moment: the send is refused
    assert asyncio.run(delivery.tick()).failed == 1
    s.pause(PAULA, "paused-bot", "vendor outage")
    for _ in range(48):
        clock.advance(STEP)
        asyncio.run(delivery.tick())
    assert [m for m in slack.sent if m.reply.form is not None] == []
    s.resume(PAULA, "paused-bot")
    while clock.now() < datetime(2026, 10, 19, 8, 0, tzinfo=UTC):  # past W43's moment (09:00 Berlin)
        clock.advance(STEP)
        asyncio.run(delivery.tick())
    assert [m.reply.form.period for m in slack.sent if m.reply.form is not None] == ["2026-W43"]
