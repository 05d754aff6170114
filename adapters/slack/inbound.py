"""Slack payload -> neutral Actor and command text."""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import strip_prefix
from bot.ports import Actor

log = logging.getLogger(__name__)

SHARE_WORD = "share"
# Read-only commands whose reply may be posted to the channel with a trailing `share`.
SHAREABLE = frozenset({"help", "status", "history", "audit"})
_BARE_MENTION = re.compile(r"<@([A-Z0-9]+)>")


SHARE_TIP = (
    "On Slack, replies are visible only to you; end `help`, `status`, `history` or `audit` with `share` "
    "to post the reply to the channel, e.g. `/pilot status support-drafts share`."
)


def is_help(text: str) -> bool:
    words = strip_prefix(text).split()
    return not words or words[0].lower() == "help"


def split_share(text: str) -> tuple[str, bool]:
    """`status support-drafts share` -> (`status support-drafts`, True); only read commands share."""
    words = strip_prefix(text).split()
    if len(words) >= 2 and words[-1].lower() == SHARE_WORD and words[0].lower() in SHAREABLE:
        return " ".join(words[:-1]), True
    return text.strip(), False


def actor_from_command(body: dict[str, Any]) -> Actor:
    return Actor("slack", str(body["user_id"]), body.get("user_name") or None)


def actor_from_user(user: dict[str, Any]) -> Actor:
    return Actor("slack", str(user["id"]), user.get("username") or user.get("name") or None)


def display_name(user: dict[str, Any]) -> str | None:
    profile = user.get("profile") or {}
    return profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")


class NameCache:
    """users.info lookups for `<@U…>` mentions without a name; bounded, per process."""

    def __init__(self, client: AsyncWebClient, size: int = 4096) -> None:
        self.client = client
        self.size = size
        self._names: OrderedDict[str, str] = OrderedDict()

    async def name(self, user_id: str) -> str | None:
        if user_id in self._names:
            self._names.move_to_end(user_id)
            return self._names[user_id]
        try:
            resp = await self.client.users_info(user=user_id)
        except SlackApiError as e:
            log.warning("users.info %s failed: %s", user_id, e.response.get("error"))
            return None
        except (SlackRequestError, aiohttp.ClientError, TimeoutError) as e:
            # The name is a nicety: the command still runs with the id (and answers the user).
            log.warning("users.info %s failed: %s", user_id, str(e)[:200])
            return None
        name = display_name(resp.get("user") or {})
        if name:
            self._names[user_id] = name
            while len(self._names) > self.size:
                self._names.popitem(last=False)
        return name

    def needs_lookup(self, text: str) -> bool:
        """Whether resolving the text's mentions would call the Web API."""
        return any(user_id not in self._names for user_id in _BARE_MENTION.findall(text))

    async def resolve_mentions(self, text: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for user_id in dict.fromkeys(_BARE_MENTION.findall(text)):
            name = await self.name(user_id)
            if name:
                out[user_id] = name
        return out
