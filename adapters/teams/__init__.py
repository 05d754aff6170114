"""Microsoft Teams surface (botbuilder CloudAdapter). All of botbuilder stays inside this package."""

from __future__ import annotations

from aiohttp import web

from bot.core import Core


def mount(app: web.Application, core: Core) -> None:
    """Imported lazily so `chat`, `demo` and `db` never load botbuilder."""
    from adapters.teams.app import mount as mount_teams

    mount_teams(app, core)
