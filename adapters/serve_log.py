"""What `pilotbot serve` says when it starts: where it listens, what is mounted, which database.

Secrets never appear: the database URL is shown with its password masked, tokens not at all.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.config import Settings

# route prefix -> what a reader calls it; checked against the routes the app really has
SURFACES = (
    ("/slack/events", "Slack (HTTP, POST /slack/events)"),
    ("/api/messages", "Teams (POST /api/messages)"),
    ("/api/v1", "REST API (/api/v1)"),
    ("/ofrep/v1", "OFREP flags (/ofrep/v1)"),
    ("/metrics", "metrics (GET /metrics)"),
    ("/healthz", "health (GET /healthz)"),
)


def database_label(url: str) -> str:
    """`sqlite:///pilotbot.db` -> its absolute file; other URLs with the password masked."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "an unreadable DATABASE_URL"
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database or ""
        return "SQLite in memory" if db in ("", ":memory:") else f"SQLite file {Path(db).resolve()}"
    return parsed.render_as_string(hide_password=True)


def mounted(app: web.Application, settings: Settings) -> list[str]:
    paths = [r.resource.canonical for r in app.router.routes() if r.resource is not None]
    paths += [str(getattr(r, "canonical", "")) for r in app.router.resources()]
    found = [label for prefix, label in SURFACES if any(p.startswith(prefix) for p in paths)]
    if settings.slack_enabled and settings.slack_app_token:
        found.insert(0, "Slack (Socket Mode)")
    return found


def startup_lines(app: web.Application, settings: Settings) -> list[str]:
    host = settings.host or "0.0.0.0"
    return [
        f"pilotbot listening on http://{host}:{settings.port}",
        "mounted: " + ", ".join(mounted(app, settings)),
        f"database: {database_label(settings.database_url)}",
    ]
