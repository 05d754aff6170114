from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError

from adapters.slack.notifier import SlackNotifier
from bot.ports import Destination, Notifier
from bot.replies import Reply
from tests.slack.fake_slack import FakeSlack

REPLY = Reply(text="`support-drafts` eval dropped 3 pts: 96% → 93%, bar 95%.", lines=("Owner: @dana",))


def test_implements_the_notifier_protocol(client) -> None:  # type: ignore[no-untyped-def]
    notifier: Notifier = SlackNotifier(client)
    assert notifier.platform == "slack"


async def test_send_dm_opens_the_im_then_posts_blocks_and_text(fake: FakeSlack, client) -> None:  # type: ignore[no-untyped-def]
    notifier = SlackNotifier(client)
    out = await notifier.send_dm(Destination("slack", "U1", "dana"), REPLY)
    assert out["channel"] == "DU1" and out["ts"]
    assert fake.of("conversations.open")[0].params["users"] == "U1"
    post = fake.of("chat.postMessage")[0].params
    assert post["channel"] == "DU1"
    assert "eval dropped 3 pts" in post["text"]
    assert post["blocks"][0]["type"] == "section"
    # The IM channel is cached: a second DM does not reopen it.
    await notifier.send_dm(Destination("slack", "U1", "dana"), REPLY)
    assert len(fake.of("conversations.open")) == 1
    assert len(fake.of("chat.postMessage")) == 2


async def test_send_channel_posts_to_the_channel(fake: FakeSlack, client) -> None:  # type: ignore[no-untyped-def]
    out = await SlackNotifier(client).send_channel(Destination("slack", "C9", "ai-pilots", is_channel=True), REPLY)
    assert out["channel"] == "C9"
    assert fake.of("chat.postMessage")[0].params["channel"] == "C9"
    assert not fake.of("conversations.open")


async def test_429_with_retry_after_is_retried(fake: FakeSlack, client) -> None:  # type: ignore[no-untyped-def]
    fake.fail("chat.postMessage", status=429, retry_after=0, times=2)
    out = await SlackNotifier(client).send_channel(Destination("slack", "C9"), REPLY)
    assert out["channel"] == "C9"
    assert len(fake.of("chat.postMessage")) == 3  # two 429s, then success


async def test_500_is_retried_with_backoff(fake: FakeSlack, client) -> None:  # type: ignore[no-untyped-def]
    fake.fail("chat.postMessage", status=500, times=1)
    out = await SlackNotifier(client).send_channel(Destination("slack", "C9"), REPLY)
    assert out["ts"]
    assert len(fake.of("chat.postMessage")) == 2


async def test_persistent_failure_raises_so_the_caller_keeps_it_pending(fake: FakeSlack, client) -> None:  # type: ignore[no-untyped-def]
    fake.fail("chat.postMessage", status=500, times=10)
    with pytest.raises(SlackApiError):
        await SlackNotifier(client).send_channel(Destination("slack", "C9"), REPLY)
    assert len(fake.of("chat.postMessage")) == 3  # first try + 2 retries
