"""Real mentions on Slack: the missed-review channel post and the eval alert notify the owner
(`<@U…>` in the text chat.postMessage gets, and in its blocks), through the server's own delivery
against the fake Web API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters import scheduling
from adapters.server import build_web_app
from adapters.slack.render import escape, fallback_text, reply_blocks
from bot.clock import FixedClock
from bot.config import Settings
from bot.core import Core, build_core
from bot.ports import Actor
from bot.replies import Reply, mention, render_text
from tests.slack.fake_slack import FakeSlack
from tests.slack.payloads import assert_valid_blocks

UB = Actor("slack", "UB", "Berta")


@pytest.fixture
def slack_core(fake_settings: Settings, clock: FixedClock) -> Core:
    return build_core(fake_settings.model_copy(update={"pilotbot_scheduler": False}), clock)


@pytest.fixture
async def server(slack_core: Core) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_web_app(slack_core), host="127.0.0.1", port=0)) as c:
        yield c


def posts_to(fake: FakeSlack, channel: str) -> list[dict[str, object]]:
    return [c.params for c in fake.of("chat.postMessage") if c.params.get("channel") == channel]


async def test_the_missed_review_post_mentions_the_owner(
    server: TestClient, fake: FakeSlack, slack_core: Core
) -> None:
    for text in ("new p1 P one", "owner p1 <@UB|Berta>", "escalate p1 <#C1|pilots>"):
        assert slack_core.router.handle(text, UB).ok, text
    clock = slack_core.clock
    assert isinstance(clock, FixedClock)
    assert server.app is not None
    delivery = server.app[scheduling.DELIVERY_KEY]
    clock.advance(timedelta(days=5))  # Monday 12:00: the check-in goes out
    assert (await delivery.tick()).sent == 1
    clock.advance(timedelta(hours=49))  # past the 48 h grace, 24 h after it arrived
    await delivery.tick()
    [post] = posts_to(fake, "C1")
    assert str(post["text"]).startswith("<@UB> missed the weekly review of p1")
    assert "<@UB> missed the weekly review of p1" in str(post["blocks"])
    assert "\ue000" not in str(post)  # no token left anywhere


async def test_the_eval_alert_in_the_channel_pings_the_owner(
    server: TestClient, fake: FakeSlack, slack_core: Core
) -> None:
    for text in ("new p1 P one", "owner p1 <@UB|Berta>", "escalate p1 <#C1|pilots>", "threshold p1 90"):
        assert slack_core.router.handle(text, UB).ok, text
    reply = slack_core.router.handle("eval p1 80 cases 100", UB)
    assert "Pinging @Berta and #pilots." in render_text(reply)  # the console/plain form
    assert server.app is not None
    await server.app[scheduling.DELIVER_NOW_KEY].settle()
    [post] = posts_to(fake, "C1")
    assert "Pinging <@UB>." in str(post["text"]) and "Pinging <@UB>." in str(post["blocks"])


def test_mentions_are_escaped_text_first_then_real_mentions() -> None:
    teams_person = mention("teams", "aad-1", "Dana <Ops>")
    reply = Reply(text=f"{mention('slack', 'UB', 'Berta')} & {teams_person} <b>", lines=(f"cc {teams_person}",))
    assert escape(reply.text) == "<@UB> &amp; @Dana &lt;Ops&gt; &lt;b&gt;"  # another platform's person: @name
    assert fallback_text(reply).startswith("<@UB> &amp; @Dana &lt;Ops&gt;")
    blocks = reply_blocks(reply)
    assert_valid_blocks(blocks)
    assert "<@UB>" in str(blocks) and "\ue000" not in str(blocks)
