"""Outbound Slack messages for the scheduler and the adapter: the `bot.ports.Notifier` protocol,
and the DM-history check that closes the crash window for check-ins (`bot.ports.DeliveryCheck`)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.client import make_slack_client
from adapters.slack.render import escape, message
from bot.config import Settings
from bot.ports import Destination, MessageRef, Unreachable
from bot.replies import Reply

__all__ = ["CHANNEL_UNREACHABLE", "SlackDeliveryCheck", "SlackNotifier", "make_slack_client", "scheduler_notifier"]

log = logging.getLogger(__name__)

# Slack's answers that mean "the bot cannot post to this channel until someone acts" (a private
# channel it was not invited to, a deleted or archived one): retrying changes nothing, so a channel
# post raises `Unreachable` and the outbox tells whoever set `escalate` (bot/schedule/channels.py).
CHANNEL_UNREACHABLE = frozenset({"not_in_channel", "channel_not_found", "is_archived"})


class SlackNotifier:
    """A user's DM is opened with conversations.open (scope im:write) unless the destination names
    a known DM channel; then blocks + text are posted. A reply to a message goes into its thread.

    Errors (SlackApiError after slack_sdk's retries) propagate: the caller keeps the message
    pending and retries on its next tick. A channel post Slack refuses for good (`CHANNEL_UNREACHABLE`)
    raises `bot.ports.Unreachable` instead.
    """

    platform = "slack"

    def __init__(self, client: AsyncWebClient, dm_cache_size: int = 1024) -> None:
        self.client = client
        self._dm_channels: dict[str, str] = {}
        self._dm_cache_size = dm_cache_size

    async def dm_channel(self, user_id: str) -> str:
        channel = self._dm_channels.get(user_id)
        if channel is None:
            resp = await self.client.conversations_open(users=user_id)
            channel = str(resp["channel"]["id"])
            if len(self._dm_channels) >= self._dm_cache_size:
                self._dm_channels.pop(next(iter(self._dm_channels)))
            self._dm_channels[user_id] = channel
        return channel

    async def send(self, dest: Destination, reply: Reply, in_reply_to: MessageRef | None = None) -> MessageRef:
        if in_reply_to is not None and in_reply_to.platform == self.platform:
            return await self.post(in_reply_to.conversation, reply, thread_ts=in_reply_to.id)
        if dest.is_channel:
            try:
                return await self.post(dest.id, reply)
            except SlackApiError as e:
                error = str(e.response.get("error") or "")
                if error in CHANNEL_UNREACHABLE:
                    raise Unreachable(dest, error) from e
                raise
        return await self.post(dest.conversation or await self.dm_channel(dest.id), reply)

    async def post(self, channel: str, reply: Reply, thread_ts: str | None = None) -> MessageRef:
        kwargs: dict[str, Any] = message(reply)
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        resp = await self.client.chat_postMessage(channel=channel, **kwargs)
        return MessageRef(self.platform, str(resp["channel"]), str(resp["ts"]))


class SlackDeliveryCheck:
    """After a crash, asks Slack whether a check-in DM already arrived (conversations.history of the
    DM since the lapsed claim) before sending it again. Needs the `im:history` scope; without it
    (or on any error) it answers "unknown" and the message is sent, as without this check."""

    def __init__(self, notifier: SlackNotifier) -> None:
        self.notifier = notifier

    async def find_sent(self, dest: Destination, reply: Reply, since: datetime) -> MessageRef | None:
        if not reply.text:
            return None
        try:
            channel = dest.conversation or await self.notifier.dm_channel(dest.id)
            resp = await self.notifier.client.conversations_history(
                channel=channel, oldest=f"{since.timestamp() - 60:.6f}", limit=200
            )
        except Exception as exc:  # noqa: BLE001 — unknown: send (a possible duplicate beats a lost message)
            log.warning("slack: could not check the DM history of %s: %s", dest.id, exc)
            return None
        headline = escape(reply.text)  # the check-in headline names the pilot and the period
        for m in resp.get("messages") or []:
            if m.get("bot_id") and headline in str(m.get("text", "")):
                return MessageRef(self.notifier.platform, str(channel), str(m.get("ts")))
        return None


def scheduler_notifier(settings: Settings) -> tuple[SlackNotifier, SlackDeliveryCheck]:
    """The scheduler's Slack notifier (its own client, with slack_sdk's retry handlers) and its check."""
    notifier = SlackNotifier(make_slack_client(settings))
    return notifier, SlackDeliveryCheck(notifier)
