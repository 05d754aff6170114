"""`pilotbot serve`: one aiohttp application hosting every surface, plus the scheduler.

Each surface has a `mount(app, core)` that adds its routes when its settings are present.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.core import Core

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
    # Slack: adapters.slack.mount(app, core)   — issue 4
    # Teams: adapters.teams.mount(app, core)   — issue 5
    # REST:  adapters.api.mount(app, core)     — issue 7
    # Scheduler: adapters.scheduling.mount(app, core) — issue 6
    import adapters.scheduling
    import adapters.slack

    adapters.slack.mount(app, core)
    adapters.scheduling.mount(app, core)


def run(core: Core) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    s = core.settings
    web.run_app(build_web_app(core), host=s.host, port=s.port, print=None)
