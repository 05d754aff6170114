"""Proactive messages to Teams through stored conversation references (bot.ports.Notifier).

Teams personal chats have no threads: `in_reply_to` is accepted and the message posted as a new
one. A destination the bot has no reference for raises `bot.ports.Unreachable`.

Every request to the connector (the send, and the create-conversation that opens a DM) first takes
a slot from the bot's `TeamsPacer` (adapters/teams/pacing.py). A 429 holds every Teams sender of
the process back for its Retry-After and the message is sent again after it, up to
RATE_LIMIT_RETRIES times; past that, or when the hold is longer than one attempt should wait,
`bot.ports.Throttled` keeps the message pending until the Retry-After has passed. Other refusals
(403, 413, 503 ...) raise as they are: the outbox keeps the message pending with its backoff.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import ChannelAccount, ConversationParameters, ConversationReference
from msrest.exceptions import HttpOperationError

from adapters.teams.auth import BotAuthConfig
from adapters.teams.inbound import PLATFORM, reference_keys
from adapters.teams.pacing import CREATE, SEND, TeamsPacer, bot_pacer, retry_after
from adapters.teams.render import reply_activity
from bot.ports import Destination, MessageRef, Throttled, Unreachable
from bot.replies import Reply
from bot.schedule.reach import ConversationRefs

log = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 3  # each after the Retry-After, which holds every Teams sender back
# A hold longer than this is not waited out inside one attempt (the outbox's send timeout and claim
# lease are minutes): the message stays pending until it has passed.
MAX_WAIT = 60.0
DEFAULT_RETRY_AFTER = 1.0  # a 429 without (a readable) Retry-After: 1 s, then 2, 4 ...


def throttle_of(exc: BaseException) -> tuple[bool, float | None]:
    """(a 429 from the connector?, its Retry-After in seconds when it gave a readable one).
    botframework-connector raises msrest's HttpOperationError (ErrorResponseException) carrying the
    `requests` response; an aiohttp client path would raise ClientResponseError (status, headers)."""
    response = getattr(exc, "response", None) if isinstance(exc, HttpOperationError) else None
    status = getattr(response, "status_code", None) if response is not None else getattr(exc, "status", None)
    if status != 429:
        return False, None
    return True, retry_after(response.headers if response is not None else getattr(exc, "headers", None))


class TeamsNotifier:
    platform = PLATFORM

    def __init__(
        self, adapter: CloudAdapter, refs: ConversationRefs, config: BotAuthConfig, pacer: TeamsPacer | None = None
    ) -> None:
        self.adapter = adapter
        self.refs = refs
        self.config = config
        self.pacer = pacer or bot_pacer(config.bot_app_id)

    async def send(self, dest: Destination, reply: Reply, in_reply_to: MessageRef | None = None) -> MessageRef:
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            held = self.pacer.hold()
            if held > MAX_WAIT:
                raise Throttled(held, f"Teams asked every sender to wait {held:.0f} s (429 Retry-After)")
            try:
                # A DM opened before a 429 on its first message is reused by the retry (the
                # create-conversation callback stored its reference).
                sent = await (self._send_channel(dest, reply) if dest.is_channel else self._send_dm(dest, reply))
            except Exception as exc:
                throttled, wait = throttle_of(exc)
                if not throttled:
                    raise
                wait = DEFAULT_RETRY_AFTER * 2**attempt if wait is None else wait
                self.pacer.throttled(wait)
                log.info("teams: the connector answered 429 for %s; every Teams send waits %.1f s", dest.key, wait)
                if attempt == RATE_LIMIT_RETRIES or wait > MAX_WAIT:
                    raise Throttled(
                        wait, f"Teams answered 429 {attempt + 1} time(s), Retry-After {wait:.0f} s"
                    ) from exc
                continue
            return MessageRef(PLATFORM, sent.get("conversation_id", ""), sent.get("activity_id", ""))
        raise AssertionError("unreachable")  # the loop returns or raises

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
        conversation = reference.conversation.id if reference.conversation else ""
        sent: dict[str, str] = {}

        async def callback(context: TurnContext) -> None:
            # The continuation event carries a fresh uuid as its id, which the SDK would turn into a
            # replyToId; a proactive message is a new message, not a reply to that synthetic event.
            context.activity.id = None
            await self.pacer.acquire(conversation, SEND)
            response = await context.send_activity(reply_activity(reply))
            sent["activity_id"] = (response.id if response else None) or ""

        await self.adapter.continue_conversation(reference, callback, self.config.bot_app_id)
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
            await self.pacer.acquire(created.conversation.id, SEND)
            response = await context.send_activity(reply_activity(reply))
            sent["conversation_id"] = created.conversation.id
            sent["activity_id"] = (response.id if response else None) or ""

        await self.pacer.acquire(user.id, CREATE)
        await self.adapter.create_conversation(
            self.config.bot_app_id, callback, params, reference.channel_id, reference.service_url
        )
        return {"platform": PLATFORM, **sent}
