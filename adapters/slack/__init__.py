"""The Slack surface: Bolt AsyncApp on /slack/events (or Socket Mode), Block Kit, notifier.

`mount(app, core)` is the only entry point the server needs; slack_bolt is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from bot.core import Core


def mount(app: web.Application, core: Core) -> None:
    """Adds Slack to the server when SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set."""
    if not core.settings.slack_enabled:
        return
    from adapters.slack.app import mount_slack

    mount_slack(app, core)
