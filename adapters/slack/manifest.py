"""The Slack app manifest (manifest.json at the repo root is `build_manifest()` with the placeholder URL)."""

from __future__ import annotations

from typing import Any

COMMAND = "/pilot"
EVENTS_PATH = "/slack/events"
PLACEHOLDER_URL = "https://pilotbot.example.com"
# Minimal bot scopes: the slash command, posting, opening DMs, resolving mentioned names,
# and uploading the history chart; `chat:write.public` posts escalations to a public channel
# without someone inviting the bot first, and `channels:read` lets `escalate` ask Slack
# (conversations.info) whether the bot can reach the channel: a private one it is not in answers
# channel_not_found, and the user is told to invite it.
BOT_SCOPES = (
    "commands",
    "chat:write",
    "im:write",
    "im:history",
    "users:read",
    "files:write",
    "chat:write.public",
    "channels:read",
)


def build_manifest(url: str = PLACEHOLDER_URL, socket_mode: bool = False) -> dict[str, Any]:
    events_url = url.rstrip("/") + EVENTS_PATH
    settings: dict[str, Any] = {
        "event_subscriptions": {"bot_events": ["app_home_opened"]},
        "interactivity": {"is_enabled": True},
        "org_deploy_enabled": False,
        "socket_mode_enabled": socket_mode,
        "token_rotation_enabled": False,
    }
    command: dict[str, Any] = {
        "command": COMMAND,
        "description": "AI pilots: baseline, owner, quality bar, production path",
        "usage_hint": "status [<slug>] [share] · help",
        "should_escape": True,
    }
    if not socket_mode:
        settings["event_subscriptions"]["request_url"] = events_url
        settings["interactivity"]["request_url"] = events_url
        command["url"] = events_url
    return {
        "display_information": {
            "name": "pilotbot",
            "description": "Turns stalled AI pilots into shippable systems.",
            "long_description": (
                "pilotbot keeps each AI pilot's baseline, owner, quality bar and production path, answers "
                "`/pilot status` with the state of those four gaps, asks the owner for this week's numbers "
                "and pings the owner and an escalation channel when eval scores drop. "
                "Type `/pilot help` for every command."
            ),
            "background_color": "#1d3557",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": True,
            },
            "bot_user": {"display_name": "pilotbot", "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": settings,
    }
