"""Escalation channels that refuse posts for good (bot/schedule/channels.py), on both databases, with
a notifier that raises `Unreachable` for a closed channel: every other target still gets the
message, the refused one is not retried, the setter (else the owner) is told once per episode, and
the episode ends when a post gets through or `escalate` is set again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.clock import FixedClock
from bot.commands import ChannelRef, UserRef
from bot.config import Settings
from bot.core import Core, build_core
from bot.ports import Actor, Destination, MessageRef, Unreachable
from bot.replies import Reply
from bot.schedule.deliver import Delivery
from storage.db import session_scope
from storage.models import Escalation, EscalationKind
from tests.schedule.recording import RecordingNotifier

UB = Actor("slack", "UB", "Berta")  # the owner
ROOT = Actor("slack", "UADMIN", "root")  # an admin: sets `escalate`
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
INVITE = "Invite @pilotbot to #esc so escalations can reach it."


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(_env_file=None, database_url=db_url, pilotbot_admins="console:root,slack:UADMIN")  # type: ignore[call-arg]


@dataclass
class ClosedChannels(RecordingNotifier):
    closed: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)

    async def send(self, dest: Destination, reply: Reply, in_reply_to: MessageRef | None = None) -> MessageRef:
        if dest.is_channel and dest.id in self.closed:
            self.refused.append(dest.id)
            raise Unreachable(dest, "not_in_channel")
        return await super().send(dest, reply, in_reply_to)


def _pilot(core: Core, clock: FixedClock, setter: Actor = ROOT) -> None:
    clock.set(MONDAY - timedelta(days=1))
    s = core.services
    s.new_pilot(UB, "p1", None)
    s.set_owner(UB, "p1", UserRef("UB", "Berta"))
    s.set_escalation(setter, "p1", ChannelRef("CE", "esc"))
    s.set_threshold(UB, "p1", 90, 100, None)


def _delivery(core: Core, clock: FixedClock, **kw: object) -> tuple[Delivery, ClosedChannels]:
    slack = ClosedChannels("slack", clock)
    return Delivery(core.engine, core.settings, clock, {"slack": slack}, **kw), slack  # type: ignore[arg-type]


def _told(slack: ClosedChannels, who: str) -> list[str]:
    return [m.reply.text for m in slack.sent if m.dest == who and m.reply.text.startswith("Invite")]


def _episodes(core: Core) -> list[Escalation]:
    with session_scope(core.engine) as s:
        kind = EscalationKind.channel_unreachable.value
        return list(s.exec(select(Escalation).where(col(Escalation.kind) == kind).order_by(col(Escalation.id))))


def _status(core: Core) -> str:
    from bot.replies import render_text

    return render_text(core.router.handle("status p1", UB))


def test_the_missed_review_still_reaches_the_owner_and_the_setter_is_told_once(core: Core, clock: FixedClock) -> None:
    _pilot(core, clock)
    delivery, slack = _delivery(core, clock)
    slack.closed.add("CE")
    clock.set(MONDAY)
    asyncio.run(delivery.tick())  # the check-in goes out
    clock.set(MONDAY + timedelta(hours=48, minutes=1))  # grace over, unanswered: channel first, then owner
    asyncio.run(delivery.tick())
    assert slack.refused == ["CE"]
    assert [m.text.split("\n")[0] for m in slack.sent if m.dest == "UB" and m.text.startswith("You missed")] == [
        "You missed the weekly review of p1 (2026-W48)."  # not "#esc was told": it was not
    ]
    assert _told(slack, "UADMIN") == [INVITE]
    dm = [m for m in slack.sent if m.dest == "UADMIN"][0]
    assert "The missed-review escalation of `p1` could not be posted to #esc." in dm.text
    for _ in range(4):  # not retried: the refusal is recorded as that target's outcome
        clock.advance(timedelta(hours=2))
        asyncio.run(delivery.tick())
    assert slack.refused == ["CE"]
    with session_scope(core.engine) as s:
        missed = s.exec(select(Escalation).where(col(Escalation.kind) == "checkin_missed")).one()
        assert missed.sent_at is not None and missed.attempts == 0
        assert missed.payload["delivered"]["slack:channel:CE"] == {"unreachable": "not_in_channel"}
    assert f"⚠️ {INVITE}" in _status(core)


def test_posts_refused_at_the_same_moment_open_one_episode(core: Core, clock: FixedClock) -> None:
    _pilot(core, clock)
    core.services.record_eval(UB, "p1", 95, 150, None)
    clock.advance(timedelta(minutes=1))
    core.services.record_eval(UB, "p1", 80, 150, None)  # a page: owner and #esc
    core.services.set_threshold(UB, "p1", 70, 100, None)  # lowered: owner and #esc
    delivery, slack = _delivery(core, clock, concurrency=4)
    slack.closed.add("CE")
    asyncio.run(delivery.tick())
    assert len(slack.refused) >= 2  # the page and the lowered bar, at least, sent concurrently
    assert _told(slack, "UADMIN") == [INVITE]
    assert len(_episodes(core)) == 1


def test_a_post_that_gets_through_ends_the_episode_and_escalate_ends_it_too(core: Core, clock: FixedClock) -> None:
    _pilot(core, clock)
    delivery, slack = _delivery(core, clock)
    slack.closed.add("CE")
    core.services.record_eval(UB, "p1", 80, 150, None)
    asyncio.run(delivery.tick())
    assert _told(slack, "UADMIN") == [INVITE] and f"⚠️ {INVITE}" in _status(core)
    slack.closed.clear()
    clock.advance(timedelta(minutes=1))
    core.services.record_eval(UB, "p1", 95, 150, None)  # the recovery reaches #esc
    asyncio.run(delivery.tick())
    assert "Invite" not in _status(core)
    assert _episodes(core)[0].facts["cleared_by"] == "post"  # type: ignore[index]

    slack.closed.add("CE")
    clock.advance(timedelta(minutes=1))
    core.services.record_eval(UB, "p1", 80, 150, None)  # a new breach, refused: a new episode
    asyncio.run(delivery.tick())
    assert _told(slack, "UADMIN") == [INVITE, INVITE] and f"⚠️ {INVITE}" in _status(core)
    core.services.set_escalation(ROOT, "p1", ChannelRef("CE", "esc"))  # set again (the adapter re-checks)
    assert "Invite" not in _status(core)
    assert [e.facts["cleared_by"] for e in _episodes(core)] == ["post", "escalate"]  # type: ignore[index]


def test_set_from_the_console_the_owner_is_told(core: Core, clock: FixedClock) -> None:
    _pilot(core, clock, setter=Actor("console", "root"))  # an admin on the console: nobody to DM there
    delivery, slack = _delivery(core, clock)
    slack.closed.add("CE")
    core.services.record_eval(UB, "p1", 80, 150, None)
    asyncio.run(delivery.tick())
    assert _told(slack, "UB") == [INVITE]


def test_a_channel_that_is_no_longer_the_escalation_channel_opens_nothing(core: Core, clock: FixedClock) -> None:
    _pilot(core, clock)
    core.services.record_eval(UB, "p1", 80, 150, None)  # planned for #esc ...
    core.services.set_escalation(ROOT, "p1", ChannelRef("CNEW", "new"))  # ... moved before it was sent
    delivery, slack = _delivery(core, clock)
    slack.closed.add("CE")
    asyncio.run(delivery.tick())
    assert slack.refused == ["CE"] and _episodes(core) == []
    assert [m.dest for m in slack.sent] == ["UB"]


def test_a_person_who_cannot_be_reached_is_still_retried(core: Core, clock: FixedClock) -> None:
    """Only channels are given up on: a Teams user may install the app any time."""

    @dataclass
    class NoDMs(RecordingNotifier):
        async def send(self, dest: Destination, reply: Reply, in_reply_to: MessageRef | None = None) -> MessageRef:
            if not dest.is_channel:
                raise Unreachable(dest)
            return await super().send(dest, reply, in_reply_to)

    _pilot(core, clock)
    core.services.record_eval(UB, "p1", 80, 150, None)
    slack = NoDMs("slack", clock)
    asyncio.run(Delivery(core.engine, core.settings, clock, {"slack": slack}).tick())
    with session_scope(core.engine) as s:
        page = s.exec(select(Escalation).where(col(Escalation.kind) == "eval_below_bar")).one()
        assert page.sent_at is None and page.attempts == 1  # pending, with backoff
    assert _episodes(core) == []


def test_the_console_shows_it_under_status(sqlite_url: str, clock: FixedClock, tmp_path: Path) -> None:
    """`pilotbot chat -c "status p1"` in its own process, against the database Slack's refusal was
    recorded in: the transcript has the same sentence (the console renders the same reply)."""
    settings = Settings(_env_file=None, database_url=sqlite_url, pilotbot_admins="slack:UADMIN")  # type: ignore[call-arg]
    core = build_core(settings, clock, migrate=False)
    _pilot(core, clock)
    delivery, slack = _delivery(core, clock)
    slack.closed.add("CE")
    core.services.record_eval(UB, "p1", 80, 150, None)
    asyncio.run(delivery.tick())
    core.engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PILOTBOT_", "DATABASE", "MICROSOFT"))}
    out = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "chat", "-c", "status p1"],
        env={**env, "DATABASE_URL": sqlite_url},
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"⚠️ {INVITE}" in out.stdout.splitlines()
