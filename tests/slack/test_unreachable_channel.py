"""An escalation channel Slack refuses posts to (`not_in_channel`: a private channel the bot is not
in), through signed slash commands into the running server and the fake Web API: the owner still
gets the alert, whoever set `escalate` gets one DM saying to invite the bot, `status <slug>` says it
until `escalate` names a reachable channel or a post gets through, and the refused post is not
retried."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from adapters import scheduling
from adapters.server import build_web_app
from bot.clock import FixedClock
from bot.config import Settings
from bot.core import build_core
from bot.ports import Actor
from storage.db import session_scope
from storage.models import Escalation, EscalationKind
from tests.slack.fake_slack import FakeSlack
from tests.slack.test_app import Slack

DANA = Actor("slack", "U1", "dana")
INVITE = "Invite @pilotbot to #ai-pilots so escalations can reach it."
SETTER_DM = "DUADMIN"  # the fake's DM channel with UADMIN, who ran `escalate`
_age = itertools.count(1)


def fresh() -> int:
    """A request timestamp no earlier request used: the same command twice is two requests, not a replay."""
    return int(time.time()) - next(_age)


@pytest.fixture
async def slack(fake: FakeSlack, fake_settings: Settings) -> AsyncIterator[Slack]:
    core = build_core(fake_settings.model_copy(update={"pilotbot_scheduler": False}), FixedClock(), migrate=False)
    for text in (
        "new support-drafts Support reply drafts",
        "owner support-drafts <@U1|dana>",
        "baseline support-drafts handle_time 14 min lower at 2026-09-14",
        "threshold support-drafts 95 min-cases 100",
        "eval support-drafts 97 cases 120",
    ):
        assert core.router.handle(text, DANA).ok, text
    http = TestClient(TestServer(build_web_app(core)))
    await http.start_server()
    try:
        yield Slack(http, fake, core)
    finally:
        await http.close()
        core.engine.dispose()


async def settle(slack: Slack) -> None:
    app = slack.http.app
    assert app is not None
    await app[scheduling.DELIVER_NOW_KEY].settle()


async def escalate(slack: Slack, channel: str) -> dict[str, object]:
    """`escalate` run by the admin UADMIN (not the owner), then its reach check (after the ack)."""
    before = len(slack.fake.of("conversations.info"))
    reply = await slack.ask(f"escalate support-drafts {channel}", user_id="UADMIN", user_name="root", ts=fresh())
    assert str(reply["text"]).startswith("Escalations for `support-drafts` go to"), reply
    await slack.fake.wait_for("conversations.info", before + 1)
    await settle(slack)
    return reply


async def eval_run(slack: Slack, pct: int) -> None:
    slack.core.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    reply = await slack.ask(f"eval support-drafts {pct} cases 120", ts=fresh())
    assert "Recorded" in str(reply["text"]) or "eval" in str(reply["text"]), reply
    await settle(slack)


def posts(fake: FakeSlack, channel: str) -> list[str]:
    """Texts of the chat.postMessage calls to `channel`, refused ones included."""
    return [str(c.params["text"]) for c in fake.of("chat.postMessage") if c.params.get("channel") == channel]


def told(fake: FakeSlack) -> list[str]:
    """The first line (the sentence) of each DM to the setter."""
    return [t.split("\n")[0] for t in posts(fake, SETTER_DM)]


async def status_text(slack: Slack) -> str:
    return json.dumps(await slack.ask("status support-drafts", ts=fresh()), ensure_ascii=False)


async def test_a_refused_channel_tells_the_setter_once_and_status_until_escalate_moves(slack: Slack) -> None:
    await escalate(slack, "<#CESC|ai-pilots>")  # public then: the check passes, nothing said
    assert INVITE not in await status_text(slack)
    slack.fake.close_channel("CESC")  # made private, or the bot removed from it

    await eval_run(slack, 90)
    owner = [t for t in posts(slack.fake, "DU1") if "fell below the bar" in t]
    assert len(owner) == 1  # the owner's DM went out although the channel refused its copy
    assert len([t for t in posts(slack.fake, "CESC") if "fell below the bar" in t]) == 1  # tried once
    assert told(slack.fake) == [INVITE]  # the setter, not the owner, is told
    assert "The eval alert of `support-drafts` could not be posted to #ai-pilots." in posts(slack.fake, SETTER_DM)[0]
    assert INVITE not in "".join(posts(slack.fake, "DU1"))
    assert f"⚠️ {INVITE}" in await status_text(slack)

    # The refused target is recorded, not retried: ticks a day later post nothing more to CESC.
    delivery = slack.http.app[scheduling.DELIVERY_KEY]  # type: ignore[index]
    tried = len(posts(slack.fake, "CESC"))
    for _ in range(3):
        slack.core.clock.advance(timedelta(hours=8))  # type: ignore[attr-defined]
        await delivery.tick()
    assert len(posts(slack.fake, "CESC")) == tried
    with session_scope(slack.core.engine) as s:
        page = [e for e in s.exec(select(Escalation)).all() if e.kind == EscalationKind.eval_below_bar.value][0]
        assert page.sent_at is not None
        assert page.payload["delivered"]["slack:channel:CESC"] == {"unreachable": "not_in_channel"}

    # A second refused post in the same episode (the recovery, then a new page): no second DM.
    await eval_run(slack, 99)
    await eval_run(slack, 90)
    assert len([t for t in posts(slack.fake, "CESC") if "eval" in t]) == 3
    assert told(slack.fake) == [INVITE]
    assert f"⚠️ {INVITE}" in await status_text(slack)

    await escalate(slack, "<#COPS|ai-ops>")  # a channel the bot can reach: the line goes
    said = await status_text(slack)
    assert "Invite @pilotbot" not in said and "Escalations" not in said
    assert told(slack.fake) == [INVITE]


async def test_a_post_that_gets_through_again_clears_it_and_a_new_refusal_tells_again(slack: Slack) -> None:
    await escalate(slack, "<#CESC|ai-pilots>")
    slack.fake.close_channel("CESC")
    await eval_run(slack, 90)
    assert told(slack.fake) == [INVITE]
    slack.fake.open_channel("CESC")  # someone invited the bot
    await eval_run(slack, 99)  # the recovery reaches the channel
    assert any("recovered" in t for t in posts(slack.fake, "CESC"))
    assert INVITE not in await status_text(slack)
    slack.fake.close_channel("CESC")  # removed again: a new episode, told again
    await eval_run(slack, 90)
    assert told(slack.fake) == [INVITE, INVITE]
    assert f"⚠️ {INVITE}" in await status_text(slack)


async def test_escalate_to_a_channel_the_bot_is_not_in_says_it_then_and_in_status_but_dms_no_one(
    slack: Slack,
) -> None:
    slack.fake.close_channel("CESC")
    await escalate(slack, "<#CESC|ai-pilots>")
    assert (await slack.answer(1))["text"] == INVITE  # ephemeral, to the one who ran it
    assert f"⚠️ {INVITE}" in await status_text(slack)
    await eval_run(slack, 90)  # refused: the setter was told already, this episode sends no DM
    assert told(slack.fake) == []
    assert len([t for t in posts(slack.fake, "DU1") if "fell below the bar" in t]) == 1
    assert f"⚠️ {INVITE}" in await status_text(slack)


ARCHIVED = (
    "#ai-pilots is archived: unarchive it, or name another channel with `escalate support-drafts #channel`, "
    "so escalations can reach it."
)


async def test_an_archived_channel_is_unreachable_too_and_says_what_helps(slack: Slack) -> None:
    await escalate(slack, "<#CESC|ai-pilots>")
    slack.fake.close_channel("CESC", "is_archived")
    await eval_run(slack, 90)
    assert told(slack.fake) == [ARCHIVED]
    assert f"⚠️ {ARCHIVED}" in await status_text(slack)
    with session_scope(slack.core.engine) as s:
        row = [e for e in s.exec(select(Escalation)).all() if e.kind == EscalationKind.channel_unreachable.value][0]
        assert row.facts is not None and row.facts["reason"] == "is_archived"
