"""Inbound translation: a Teams Activity -> Actor, command text, form values, reference keys.

Mentions: Teams sends `<at>Name</at>` in the text and one `mention` entity per tag carrying the
id. The bot's own mention is removed; a user mention becomes `<@id|Name>` and a channel or team
mention (`19:...` ids) `<#id|Name>`, the forms `bot.commands` parses. We do this ourselves
instead of `TurnContext.remove_recipient_mention`, which feeds the name into `re.sub` as a
pattern (names with `(`, `+` or `.` break it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity

from bot import limits
from bot.ports import Actor

PLATFORM = "teams"
CHECKIN_SUBMIT = "checkin_submit"
CHECKIN_NEXT = "checkin_next"  # a page of a long check-in form: validate it, show the next page
CHECKIN_OPEN = "checkin_open"  # "report this week's numbers" on a card without the form
COMMAND_SUBMIT = "command"
FIELD_PREFIX = "field:"  # Input ids on the check-in card: `field:<metric key>` never collides with "action"


@dataclass(frozen=True)
class Mention:
    id: str
    name: str
    text: str  # as it appears in the message, e.g. "<at>Dana</at>"
    aad_object_id: str | None = None

    @property
    def is_channel(self) -> bool:
        return self.id.startswith("19:")


def actor_of(activity: Activity) -> Actor:
    """The stable per-person id is the Entra object id; `from.id` (29:...) is per-bot and per-tenant."""
    who = activity.from_property
    user_id = (who.aad_object_id if who else None) or (who.id if who else None) or "unknown"
    return Actor(PLATFORM, user_id, (who.name if who else None) or None)


def _entity_dicts(activity: Activity) -> list[dict[str, Any]]:
    out = []
    for e in activity.entities or []:
        props = dict(getattr(e, "additional_properties", None) or {})
        out.append({**props, "type": e.type or props.get("type")})
    return out


def mentions(activity: Activity) -> list[Mention]:
    found = []
    for e in _entity_dicts(activity):
        if str(e.get("type", "")).lower() != "mention":
            continue
        who = e.get("mentioned") or {}
        if not isinstance(who, dict) or not who.get("id"):
            continue
        name = str(who.get("name") or who["id"])
        found.append(
            Mention(
                id=str(who["id"]),
                name=name,
                text=str(e.get("text") or f"<at>{name}</at>"),
                aad_object_id=who.get("aadObjectId") or None,
            )
        )
    return found


def _clean_name(name: str) -> str:
    # A display name from the platform: trimmed to the column's rule (bot/limits.py), never refused.
    return limits.clip(re.sub(r"[<>|]", "", name).strip(), "pilot", "owner_name") or "user"


def command_text(activity: Activity, resolved: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """(text for the router, {user id: display name}) — bot mention removed, others rewritten.

    `resolved` maps a mention's `29:` id to the person's stable id (aadObjectId) when known.
    """
    text = activity.text or ""
    bot_id = activity.recipient.id if activity.recipient else None
    names: dict[str, str] = {}
    for m in mentions(activity):
        if bot_id and m.id == bot_id:
            replacement = " "
        elif m.is_channel:
            replacement = f"<#{m.id}|{_clean_name(m.name)}>"
        else:
            uid = m.aad_object_id or (resolved or {}).get(m.id) or m.id
            names[uid] = limits.clip(m.name, "pilot", "owner_name")
            replacement = f"<@{uid}|{_clean_name(m.name)}>"
        text = text.replace(m.text, replacement, 1)
    # Any tag left (a mention without its entity) is dropped rather than parsed as a command word.
    text = re.sub(r"</?at>", "", text).replace("&nbsp;", " ").replace("\u00a0", " ")
    return " ".join(text.split()), names


def submitted(activity: Activity) -> dict[str, Any] | None:
    """A card submission: a message with `value` (a dict) and no text."""
    value = activity.value
    if isinstance(value, dict) and not (activity.text or "").strip():
        return value
    return None


def form_values(value: dict[str, Any]) -> dict[str, object]:
    """`field:<key>` inputs -> {key: raw value}; numbers may come as str or int/float."""
    return {k.removeprefix(FIELD_PREFIX): v for k, v in value.items() if k.startswith(FIELD_PREFIX)}


def carried(value: dict[str, Any]) -> dict[str, object]:
    """The values of earlier form pages, carried in the submit's data (metric key -> raw value)."""
    carry = value.get("carry")
    if not isinstance(carry, dict):
        return {}
    return {str(k): v for k, v in carry.items() if isinstance(v, str | int | float) and not isinstance(v, bool)}


def page_bounds(value: dict[str, Any]) -> tuple[int, int] | None:
    """(start, end) of the metrics a "Next" submit's page showed; None when not two small ints."""
    start, end = value.get("start"), value.get("end")
    if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= 10_000:
        return start, end
    return None


def conversation_id(activity: Activity) -> str:
    return activity.conversation.id if activity.conversation else ""


def channel_id(activity: Activity) -> str | None:
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    channel = data.get("channel") or {}
    return channel.get("id") if isinstance(channel, dict) else None


def tenant_id(activity: Activity) -> str | None:
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = data.get("tenant") or {}
    found = tenant.get("id") if isinstance(tenant, dict) else None
    return found or (activity.conversation.tenant_id if activity.conversation else None)


def reference_keys(activity: Activity) -> list[tuple[str, dict[str, Any]]]:
    """Which stored references this activity refreshes, each as (key, serialised reference).

    - `conversation:<id>` always; `channel:<channel id>` in a channel (a new post, not the thread);
    - `user:<aadObjectId>` and `user:<29:id>` from a 1:1 chat: where DMs go;
    - `member:<...>` from a team or group chat: enough to open a 1:1 (POST /v3/conversations).
    """
    ref = TurnContext.get_conversation_reference(activity)
    serial: dict[str, Any] = ref.serialize()
    tenant = tenant_id(activity)
    if tenant:
        serial.setdefault("conversation", {})["tenantId"] = tenant
    out: list[tuple[str, dict[str, Any]]] = []
    conv = conversation_id(activity)
    if conv:
        out.append((f"conversation:{conv}", serial))
    chan = channel_id(activity)
    if chan:
        as_channel = {**serial, "conversation": {**serial.get("conversation", {}), "id": chan}}
        as_channel.pop("activityId", None)
        out.append((f"channel:{chan}", as_channel))
    who = activity.from_property
    if who is None or not who.id:
        return out
    personal = (activity.conversation.conversation_type if activity.conversation else None) == "personal"
    prefix = "user" if personal else "member"
    ids = [who.id] + ([who.aad_object_id] if who.aad_object_id and who.aad_object_id != who.id else [])
    out.extend((f"{prefix}:{i}", serial) for i in ids)
    return out
