"""A simulated month across two DST changes with a moving clock: check-ins, reminders, escalations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FixedClock
from bot.commands import ChannelRef, UserRef
from bot.core import Core
from bot.gaps import Gap, GapState
from bot.ports import Actor
from bot.schedule.deliver import Delivery
from tests.schedule.recording import RecordingNotifier

BERTA = Actor("slack", "UB", "Berta")  # Europe/Berlin, never answers
NED = Actor("teams", "29:NY", "Ned")  # America/New_York, never answers
ANNA = Actor("slack", "UA", "Anna")  # Europe/Berlin Tuesdays 14:30, answers within the hour
OSCAR = Actor("slack", "UO", "Oscar")  # creates a pilot and never names an owner

START = datetime(2026, 10, 11, 10, 0, tzinfo=UTC)  # a Sunday, two weeks before both DST ends
DAYS = 35
STEP = timedelta(minutes=30)


def _pilot(core: Core, actor: Actor, slug: str, weekday: int, hhmm: str, tz: str, channel: str | None) -> None:
    s = core.services
    s.new_pilot(actor, slug, None)
    s.set_owner(actor, slug, UserRef(actor.user_id, actor.display_name))
    s.set_cadence(actor, slug, weekday, hhmm, tz)
    if channel:
        s.set_escalation(actor, slug, ChannelRef(channel, channel.lower()))


@pytest.fixture
def month(core: Core, clock: FixedClock) -> tuple[Core, FixedClock, RecordingNotifier, RecordingNotifier, list]:  # type: ignore[type-arg]
    clock.set(START)
    _pilot(core, BERTA, "berlin-bot", 0, "09:00", "Europe/Berlin", "CB")
    _pilot(core, NED, "ny-bot", 0, "09:00", "America/New_York", "19:ny@thread")
    _pilot(core, ANNA, "answered", 1, "14:30", "Europe/Berlin", None)
    core.services.new_pilot(OSCAR, "orphan", None)
    core.services.set_escalation(OSCAR, "orphan", ChannelRef("CO", "orphans"))
    slack, teams = RecordingNotifier("slack", clock), RecordingNotifier("teams", clock)
    delivery = Delivery(core.engine, core.settings, clock, {"slack": slack, "teams": teams})
    owner_states: list[tuple[datetime, str, GapState]] = []
    clock.set(START)
    end = START + timedelta(days=DAYS)
    import asyncio

    async def run() -> None:
        while clock.now() < end:
            await delivery.tick()
            # Anna answers every check-in she got, right away.
            for m in slack.sent:
                if m.dest == "UA" and m.reply.form is not None and not getattr(m, "answered", False):
                    core.services.answer_checkin(ANNA, "answered", {})
                    m.answered = True  # type: ignore[attr-defined]
            for slug in ("berlin-bot", "answered"):
                owner_states.append((clock.now(), slug, core.services.pilot_report(slug).gaps.state(Gap.owner)))
            clock.advance(STEP)

    asyncio.run(run())
    return core, clock, slack, teams, owner_states


def _local(at: datetime, tz: str) -> datetime:
    return at.astimezone(ZoneInfo(tz))


def test_simulated_month_across_dst(month) -> None:  # type: ignore[no-untyped-def]
    core, clock, slack, teams, owner_states = month
    checkins = [m for m in slack.sent + teams.sent if m.reply.form is not None]
    by_owner: dict[str, list] = {}  # type: ignore[type-arg]
    for m in checkins:
        by_owner.setdefault(m.dest, []).append(m)

    # Every owner: exactly one check-in per ISO week, always at the local wall time.
    berlin = by_owner["UB"]
    assert [m.reply.form.period for m in berlin] == ["2026-W42", "2026-W43", "2026-W44", "2026-W45", "2026-W46"]
    assert {
        (_local(m.at, "Europe/Berlin").weekday(), _local(m.at, "Europe/Berlin").strftime("%H:%M")) for m in berlin
    } == {(0, "09:00")}
    # DST: 07:00 UTC in summer time (Oct 19), 08:00 UTC after Oct 25.
    assert berlin[1].at == datetime(2026, 10, 19, 7, 0, tzinfo=UTC)
    assert berlin[2].at == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)

    ny = by_owner["29:NY"]
    assert [m.platform for m in ny] == ["teams"] * 5
    assert len({m.reply.form.period for m in ny}) == len(ny) == 5
    assert {_local(m.at, "America/New_York").strftime("%a %H:%M") for m in ny} == {"Mon 09:00"}
    assert ny[2].at == datetime(2026, 10, 26, 13, 0, tzinfo=UTC)  # EDT
    assert ny[3].at == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # EST after Nov 1

    anna = by_owner["UA"]
    assert len({m.reply.form.period for m in anna}) == len(anna) == 5
    assert {_local(m.at, "Europe/Berlin").strftime("%a %H:%M") for m in anna} == {"Tue 14:30"}

    # No owner -> no check-in; the escalation channel hears it once per week.
    notes = [m for m in slack.sent if m.dest == "CO"]
    assert len(notes) == 5 and all("has no owner" in m.text for m in notes)
    assert len({_local(m.at, "UTC").isocalendar().week for m in notes}) == 5

    # Reminders at due + 24 h, escalation at due + 48 h (channel + owner), only for Berta; none for Anna.
    reminders = [m for m in slack.sent if m.dest == "UB" and m.text.startswith("Reminder")]
    assert [m.at - c.at for m, c in zip(reminders, berlin, strict=False)] == [timedelta(hours=24)] * len(reminders)
    assert len(reminders) == 5
    missed = [m for m in slack.sent if m.dest == "CB"]
    assert len(missed) == 5
    assert missed[0].text.startswith("@Berta missed the weekly review of berlin-bot")
    assert [m.at - c.at for m, c in zip(missed, berlin, strict=False)] == [timedelta(hours=48)] * 5
    told = [m for m in slack.sent if m.dest == "UB" and m.text.startswith("You missed")]
    assert len(told) == 5
    ny_missed = [m for m in teams.sent if m.dest == "19:ny@thread"]
    assert len(ny_missed) == 5 and ny_missed[0].is_channel
    assert not [m for m in slack.sent if m.dest == "UA" and m.reply.form is None]

    # Owner gap: closed until the first grace passes, at_risk after one miss, open after two.
    def state_at(slug: str, at: datetime) -> GapState:
        return next(s for t, sl, s in owner_states if sl == slug and t == at)

    first = berlin[0].at
    assert state_at("berlin-bot", first + timedelta(hours=47, minutes=30)) is GapState.closed
    assert state_at("berlin-bot", first + timedelta(hours=48)) is GapState.at_risk
    second = berlin[1].at
    assert state_at("berlin-bot", second + timedelta(hours=47, minutes=30)) is GapState.at_risk
    assert state_at("berlin-bot", second + timedelta(hours=48)) is GapState.open
    assert {s for _, sl, s in owner_states if sl == "answered"} == {GapState.closed}
