"""Activities shaped as Microsoft Teams sends them (ids and tenant scrubbed, no tokens)."""

from __future__ import annotations

import itertools
from typing import Any

TENANT = "72f988bf-0000-4000-8000-00000000tenant"
BOT = {"id": "28:00000000-0000-4000-8000-0000000000b0", "name": "pilotbot"}
DANA = {"id": "29:1dana", "name": "Dana Ops", "aadObjectId": "aad-dana"}
CAROL = {"id": "29:1carol", "name": "Carol (CIO)", "aadObjectId": "aad-carol"}
PERSONAL_DANA = "a:1dana-personal"
TEAM = "19:team0@thread.tacv2"
CHANNEL = "19:general0@thread.tacv2"

_ids = itertools.count(1732540000001)


def _base(service_url: str, sender: dict[str, str], conversation: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "id": str(next(_ids)),
        "timestamp": "2026-11-25T09:00:00.000Z",
        "localTimestamp": "2026-11-25T10:00:00.000+01:00",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": sender,
        "conversation": conversation,
        "recipient": BOT,
        "textFormat": "plain",
        "locale": "en-US",
        "entities": [
            {"type": "clientInfo", "locale": "en-US", "country": "US", "platform": "Web", "timezone": "Europe/Berlin"}
        ],
        "channelData": {"tenant": {"id": TENANT}},
        **extra,
    }


def personal(service_url: str, text: str, sender: dict[str, str] = DANA, conv: str = PERSONAL_DANA) -> dict[str, Any]:
    return _base(service_url, sender, {"conversationType": "personal", "tenantId": TENANT, "id": conv}, text=text)


def channel(
    service_url: str, text: str, mentions: list[dict[str, str]], sender: dict[str, str] = DANA
) -> dict[str, Any]:
    """`mentions`: the accounts tagged as <at>Name</at> in `text`, the bot included."""
    act = _base(
        service_url,
        sender,
        {
            "isGroup": True,
            "conversationType": "channel",
            "tenantId": TENANT,
            "id": f"{CHANNEL};messageid=1732539999999",
        },
        text=text,
    )
    act["entities"] = [
        {"type": "mention", "text": f"<at>{m['name']}</at>", "mentioned": {"id": m["id"], "name": m["name"]}}
        for m in mentions
    ] + act["entities"]
    act["channelData"] = {
        "teamsChannelId": CHANNEL,
        "teamsTeamId": TEAM,
        "channel": {"id": CHANNEL},
        "team": {"id": TEAM},
        "tenant": {"id": TENANT},
    }
    return act


def card_submit(service_url: str, value: dict[str, Any], sender: dict[str, str] = DANA) -> dict[str, Any]:
    """An Action.Submit from a card in the 1:1 chat: a message with `value`, no text."""
    act = personal(service_url, "", sender)
    del act["text"]
    act["value"] = value
    act["replyToId"] = "reply-1"
    return act


def installed_personal(service_url: str, sender: dict[str, str] = DANA) -> dict[str, Any]:
    act = _base(service_url, sender, {"conversationType": "personal", "tenantId": TENANT, "id": PERSONAL_DANA})
    act["type"] = "conversationUpdate"
    act["membersAdded"] = [BOT]
    return act
