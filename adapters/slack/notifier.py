"""Outbound Slack messages for the scheduler and the adapter: the `bot.ports.Notifier` protocol."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.client import make_slack_client
from adapters.slack.render import message
from bot.ports import Destination
from bot.replies import Reply

__all__ = ["SlackNotifier", "make_slack_client"]

log = logging.getLogger(__name__)


class SlackNotifier:
    """send_dm opens the IM with conversations.open (scope im:write), then posts blocks + text.

    Errors (SlackApiError after slack_sdk's retries) propagate: the caller keeps the message
    pending and retries on its next tick.
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

    async def send_dm(self, user: Destination, reply: Reply) -> dict[str, str]:
        return await self.post(await self.dm_channel(user.id), reply)

    async def send_channel(self, channel: Destination, reply: Reply) -> dict[str, str]:
        return await self.post(channel.id, reply)

    async def post(self, channel: str, reply: Reply, thread_ts: str | None = None) -> dict[str, str]:
        kwargs: dict[str, Any] = message(reply)
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        resp = await self.client.chat_postMessage(channel=channel, **kwargs)
        return {"channel": str(resp["channel"]), "ts": str(resp["ts"])}
