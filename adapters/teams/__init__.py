"""Microsoft Teams surface (botbuilder CloudAdapter). All of botbuilder stays inside this package."""

from __future__ import annotations

import logging

from aiohttp import web

from bot.core import Core
from bot.ports import Notifier

log = logging.getLogger(__name__)


def mount(app: web.Application, core: Core) -> Notifier | None:
    """Imported lazily so `chat`, `demo` and `db` never load botbuilder. Returns the notifier, if mounted.

    Broken Teams settings stop `serve` with one sentence instead of a botbuilder traceback.
    """
    from adapters.teams.app import mount as mount_teams
    from adapters.teams.auth import TeamsConfigError

    try:
        return mount_teams(app, core)
    except TeamsConfigError as e:
        log.error("teams: %s", e)
        raise SystemExit(f"pilotbot: {e}") from None
