"""`pilotbot serve`: one aiohttp application hosting every surface, plus the scheduler.

Each surface has a `mount(app, core)` that adds its routes when its settings are present; the
surfaces that can message people proactively register their notifier with the scheduler here.
"""

from __future__ import annotations

import logging

from aiohttp import web

import adapters.api
import adapters.metrics
import adapters.scheduling
import adapters.slack
import adapters.teams
from bot.core import Core
from bot.ports import Notifiers

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
CORE_KEY: web.AppKey[Core] = web.AppKey("core", Core)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def build_web_app(core: Core) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[CORE_KEY] = core
    app.router.add_get("/healthz", healthz)
    mount_surfaces(app, core)
    return app


def mount_surfaces(app: web.Application, core: Core) -> None:
    # Each surface mounts itself only when its settings are present (SPEC §6).
    adapters.metrics.mount(app, core)  # GET /metrics (loopback or token)
    adapters.slack.mount(app, core)  # POST /slack/events, or Socket Mode with SLACK_APP_TOKEN
    teams = adapters.teams.mount(app, core)  # POST /api/messages when Teams is configured
    adapters.api.mount(app, core)  # /api/v1 (bearer tokens)
    notifiers = Notifiers()
    if core.settings.slack_bot_token:  # scheduled Slack messages need only the bot token
        from adapters.slack.notifier import scheduler_notifier

        notifiers.register(*scheduler_notifier(core.settings))
    if teams is not None:
        notifiers.register(teams)
    adapters.scheduling.mount(app, core, notifiers)  # check-ins, reminders, escalations


def outbound_notifiers(core: Core) -> Notifiers:
    """The Slack/Teams notifiers of a process without a server (`pilotbot chat`, `eval import`),
    so the alert a change raises goes out at once there too; empty when neither is configured."""
    notifiers = Notifiers()
    if core.settings.slack_bot_token:
        from adapters.slack.notifier import scheduler_notifier

        notifiers.register(*scheduler_notifier(core.settings))
    from adapters.teams.auth import auth_config, teams_mode

    if teams_mode(core.settings) != "off":
        from adapters.teams.app import build_adapter
        from adapters.teams.notifier import TeamsNotifier
        from bot.schedule.reach import ConversationRefs

        config = auth_config(core.settings)
        notifiers.register(TeamsNotifier(build_adapter(config), ConversationRefs(core.engine, core.clock), config))
    return notifiers


def background_delivery(core: Core) -> adapters.scheduling.BackgroundDelivery | None:
    """Deliver-now for the CLI when Slack or Teams can be reached from here (None otherwise)."""
    notifiers = outbound_notifiers(core)
    if not notifiers.platforms:
        return None
    return adapters.scheduling.BackgroundDelivery(core, notifiers)


def run(core: Core) -> None:
    from adapters.api.accesslog import RedactingAccessLogger
    from adapters.serve_log import startup_lines

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    s = core.settings
    app = build_web_app(core)
    for line in startup_lines(app, s):
        log.info("%s", line)
    web.run_app(app, host=s.host, port=s.port, print=None, access_log_class=RedactingAccessLogger)
