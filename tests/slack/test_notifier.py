from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError

from adapters.slack.notifier import SlackNotifier
from bot.ports import Destination, MessageRef, Notifier
from bot.replies import Reply
from tests.slack.fake_slack import FakeSlack

REPLY = Reply(text="`support-drafts` eval dropped 3 pts: 96% → 93%, bar 95%.", lines=("Owner: @dana",))


def test_implements_the_notifier_protocol(client) -> None:  # type: ignore[no-untyped-def]
    notifier: Notifier = SlackNotifier(client)
    assert notifier.platform == "slack"


async def test_send_to_a_user_opens_the_im_then_posts_blocks_and_text(fake: FakeSlack, client) -> None:  # type: ignore[no-untyped-def]
    notifier = SlackNotifier(client)
    out = await notifier.send(Destination.user("slack", "U1", "dana"), REPLY)
    assert out.platform == "slack" and out.conversation == "DU1" and out.id
    assert fake.of("conversations.open")[0].params["users"] == "U1"
    post = fake.of("chat.postMessage")[0].params
    assert post["channel"] == "DU1"
    assert "eval dropped 3 pts" in post["text"]
    assert post["blocks"][0]["type"] == "section"
    # The IM channel is cached: a second DM does not reopen it.
    await notifier.send(Destination.user("slack", "U1", "dana"), REPLY)
    assert len(fake.of("conversations.open")) == 1
    assert len(fake.of("chat.postMessage")) == 2


async def test_send_to_a_channel_posts_to_the_channel(fake: FakeSlack, client) -> None:  # type: ignore[no-untyped-def]
    out = await SlackNotifier(client).send(Destination.channel("slack", "C9", "ai-pilots"), REPLY)
    assert out.conversation == "C9"
    assert fake.of("chat.postMessage")[0].params["channel"] == "C9"
    assert not fake.of("conversations.open")


async def test_429_with_retry_after_is_retried(fake: FakeSlack, client) -> None:  # type: ignore[no-untyped-def]
    fake.fail("chat.postMessage", status=429, retry_after=0, times=2)
    out = await SlackNotifier(client).send(Destination.channel("slack", "C9"), REPLY)
    assert out.conversation == "C9"
    assert len(fake.of("chat.postMessage")) == 3  # two 429s, then success


async def test_500_is_retried_with_backoff(fake: FakeSlack, client) -> None:  # type: ignore[no-untyped-def]
    fake.fail("chat.postMessage", status=500, times=1)
    out = await SlackNotifier(client).send(Destination.channel("slack", "C9"), REPLY)
    assert out.id
    assert len(fake.of("chat.postMessage")) == 2


async def test_persistent_failure_raises_so_the_caller_keeps_it_pending(fake: FakeSlack, client) -> None:  # type: ignore[no-untyped-def]
    fake.fail("chat.postMessage", status=500, times=10)
    with pytest.raises(SlackApiError):
        await SlackNotifier(client).send(Destination.channel("slack", "C9"), REPLY)
    assert len(fake.of("chat.postMessage")) == 3  # first try + 2 retries


async def test_a_known_dm_conversation_skips_conversations_open(fake: FakeSlack, client) -> None:  # type: ignore[no-untyped-def]
    dest = Destination("slack", "user", "U1", conversation="DU1")
    out = await SlackNotifier(client).send(dest, REPLY)
    assert out == MessageRef("slack", "DU1", out.id)
    assert not fake.of("conversations.open")
    assert fake.of("chat.postMessage")[0].params["channel"] == "DU1"


async def test_a_reply_goes_into_the_thread_of_the_message(fake: FakeSlack, client) -> None:  # type: ignore[no-untyped-def]
    notifier = SlackNotifier(client)
    first = await notifier.send(Destination.user("slack", "U1"), REPLY)
    again = await notifier.send(Destination.user("slack", "U1"), REPLY, in_reply_to=first)
    post = fake.of("chat.postMessage")[1].params
    assert (post["channel"], post["thread_ts"]) == (first.conversation, first.id)
    assert again.conversation == first.conversation
    assert "thread_ts" not in fake.of("chat.postMessage")[0].params


def test_destinations_and_message_refs_round_trip() -> None:
    for dest in (Destination.user("slack", "U1"), Destination.channel("teams", "19:abc@thread.tacv2")):
        assert Destination.parse(dest.key) == dest
    assert Destination.channel("teams", "19:abc@thread.tacv2").key == "teams:channel:19:abc@thread.tacv2"
    ref = MessageRef("slack", "D1", "1700000000.0001")
    assert MessageRef.from_json(ref.to_json()) == ref
    assert MessageRef.from_json({"channel": "D1", "ts": "1700000000.0001"}) == ref  # stored before MessageRef
    teams = {"platform": "teams", "conversation_id": "a:1", "activity_id": "x"}
    assert MessageRef.from_json(teams) == MessageRef("teams", "a:1", "x")
    assert MessageRef.from_json(None) is None and MessageRef.from_json({"skipped": "no notifier"}) is None
