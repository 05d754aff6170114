"""Proactive messages to Teams through stored conversation references (bot.ports.Notifier).

Teams personal chats have no threads: `in_reply_to` is accepted and the message posted as a new
one. A destination the bot has no reference for raises `bot.ports.Unreachable`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import ChannelAccount, ConversationParameters, ConversationReference

from adapters.teams.auth import BotAuthConfig
from adapters.teams.inbound import PLATFORM, reference_keys
from adapters.teams.render import reply_activity
from bot.ports import Destination, MessageRef, Unreachable
from bot.replies import Reply
from bot.schedule.reach import ConversationRefs

log = logging.getLogger(__name__)


class TeamsNotifier:
    platform = PLATFORM

    def __init__(self, adapter: CloudAdapter, refs: ConversationRefs, config: BotAuthConfig) -> None:
        self.adapter = adapter
        self.refs = refs
        self.config = config

    async def send(self, dest: Destination, reply: Reply, in_reply_to: MessageRef | None = None) -> MessageRef:
        sent = await (self._send_channel(dest, reply) if dest.is_channel else self._send_dm(dest, reply))
        return MessageRef(PLATFORM, sent.get("conversation_id", ""), sent.get("activity_id", ""))

    async def _send_dm(self, user: Destination, reply: Reply) -> dict[str, str]:
        """To the user's 1:1 chat; opens one (POST /v3/conversations) if we only know them from a channel."""
        ref = await asyncio.to_thread(self.refs.get, PLATFORM, f"user:{user.id}")
        if ref is not None:
            return await self._continue(ref, reply)
        member = await asyncio.to_thread(self.refs.get, PLATFORM, f"member:{user.id}")
        if member is not None:
            return await self._open_dm(member, reply)
        log.warning(
            "teams: no conversation reference for user %s (%s): not installed/never messaged", user.id, user.name
        )
        raise Unreachable(user)

    async def _send_channel(self, channel: Destination, reply: Reply) -> dict[str, str]:
        ref = await asyncio.to_thread(self.refs.get, PLATFORM, f"channel:{channel.id}", f"conversation:{channel.id}")
        if ref is None:
            log.warning("teams: no conversation reference for channel %s: the bot was never added there", channel.id)
            raise Unreachable(channel)
        return await self._continue(ref, reply)

    async def _continue(self, ref: dict[str, Any], reply: Reply) -> dict[str, str]:
        reference = ConversationReference().deserialize(ref)
        sent: dict[str, str] = {}

        async def callback(context: TurnContext) -> None:
            # The continuation event carries a fresh uuid as its id, which the SDK would turn into a
            # replyToId; a proactive message is a new message, not a reply to that synthetic event.
            context.activity.id = None
            response = await context.send_activity(reply_activity(reply))
            sent["activity_id"] = (response.id if response else None) or ""

        await self.adapter.continue_conversation(reference, callback, self.config.bot_app_id)
        conversation = reference.conversation.id if reference.conversation else ""
        return {"platform": PLATFORM, "conversation_id": conversation, **sent}

    async def _open_dm(self, member_ref: dict[str, Any], reply: Reply) -> dict[str, str]:
        reference = ConversationReference().deserialize(member_ref)
        tenant = (member_ref.get("conversation") or {}).get("tenantId")
        user = reference.user
        assert user is not None and reference.bot is not None
        params = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=reference.bot.id, name=reference.bot.name),
            members=[ChannelAccount(id=user.id, name=user.name)],
            tenant_id=tenant,
            channel_data={"tenant": {"id": tenant}} if tenant else None,
        )
        sent: dict[str, str] = {}

        async def callback(context: TurnContext) -> None:
            created = context.activity
            created.from_property = ChannelAccount(id=user.id, name=user.name, aad_object_id=user.aad_object_id)
            created.conversation.conversation_type = "personal"
            keys = [(k, v) for k, v in reference_keys(created) if k.startswith("user:")]
            await asyncio.to_thread(self.refs.save, PLATFORM, keys)
            created.id = None  # a new message, not a reply to the synthetic create event
            response = await context.send_activity(reply_activity(reply))
            sent["conversation_id"] = created.conversation.id
            sent["activity_id"] = (response.id if response else None) or ""

        await self.adapter.create_conversation(
            self.config.bot_app_id, callback, params, reference.channel_id, reference.service_url
        )
        return {"platform": PLATFORM, **sent}
