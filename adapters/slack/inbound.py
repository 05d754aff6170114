"""Slack payload -> neutral Actor and command text."""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot import limits
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


# Slack's own markup in an escaped slash-command text: the only `<` and `>` left in it are Slack's,
# since what the user typed arrives as `&lt;` and `&gt;`.
_SLACK_MARKUP = re.compile(r"<([^<>]*)>")
# Slack escapes exactly these three; anything else that looks like an entity is what the user typed.
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}
_ENTITY = re.compile("|".join(_ENTITIES))


def _decode(text: str) -> str:
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(0)], text)


def _link(inner: str) -> str:
    """`<url|label>`, `<url>`, `<!here>`, `<!subteam^S1|@ops>` -> the text a reader means."""
    target, _, label = inner.partition("|")
    target, label = _decode(target), _decode(label)
    if target.startswith("!"):  # special mentions and dates: Slack's label is the readable form
        return label or "@" + target[1:].split("^", 1)[0]
    if not label or label in (target, target.split(":", 1)[-1].lstrip("/")):
        # `<http://example.com|example.com>` is Slack auto-linking what the user typed; a mailto
        # link's label is the address itself.
        return label if target.startswith("mailto:") and label else target
    return f"{label} ({target})"


def unescape(text: str) -> str:
    """A slash command's text as the user typed it (the manifest sets `should_escape: true`).

    Entities are decoded once, links become `url` or `label (url)` (plain text that reads the
    same on every surface; the renderers escape it once on the way out), and user and channel
    mentions stay `<@U…|name>` / `<#C…|name>`, the form the grammar resolves. A user who types
    `<@U123>` by hand gets a mention of U123, as on the console: naming any user is allowed.
    """
    out: list[str] = []
    pos = 0
    for m in _SLACK_MARKUP.finditer(text):
        out.append(_decode(text[pos : m.start()]))
        inner = m.group(1)
        out.append(m.group(0) if inner[:1] in ("@", "#") else _link(inner))
        pos = m.end()
    out.append(_decode(text[pos:]))
    return "".join(out)


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
    name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")
    # The platform's name, stored as the owner's: trimmed to the column's rule rather than refusing the command.
    return limits.clip(str(name), "pilot", "owner_name") or None if name else None


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
