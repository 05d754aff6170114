"""`pilotbot` — the composition root. Platform libraries are imported inside the commands
that need them so `chat`, `demo` and `db` start fast."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="pilotbot: govern AI pilots from Slack, Teams and the console."
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
manifest_app = typer.Typer(no_args_is_help=True, help="Print an app manifest with your server's URL filled in.")
app.add_typer(manifest_app, name="manifest")


def _core():  # type: ignore[no-untyped-def]
    from bot.config import get_settings
    from bot.core import build_core

    return build_core(get_settings())


@app.command()
def chat(
    command: Annotated[str | None, typer.Option("-c", "--command", help="Run one command and exit.")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Act as this user (default: the OS user).")] = None,
) -> None:
    """The console surface: interactive, or one command with -c."""
    from adapters.console import console_actor, run_interactive, run_once

    core = _core()
    actor = console_actor(as_user)
    if command is not None:
        raise typer.Exit(run_once(core.router, command, actor))
    raise typer.Exit(run_interactive(core.router, actor))


@app.command()
def demo() -> None:
    """Load the demo portfolio (idempotent)."""
    from bot.demo import DEMO_SLUGS, load_demo

    core = _core()
    added = load_demo(core.engine, core.settings, core.clock)
    if added:
        typer.echo(f"Loaded demo pilots: {', '.join(added)}.")
    else:
        typer.echo(f"Demo pilots already loaded: {', '.join(DEMO_SLUGS)}.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database to the newest schema."""
    from bot.config import get_settings
    from storage.db import current_revision, make_engine, upgrade

    settings = get_settings()
    engine = make_engine(settings.database_url)
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    typer.echo(f"Database at {after}" + (f" (was {before or 'empty'})." if before != after else " (already current)."))


@manifest_app.command("slack")
def manifest_slack(
    url: Annotated[str, typer.Option(help="Public base URL of `pilotbot serve`, e.g. https://pilotbot.example.com")],
    socket_mode: Annotated[bool, typer.Option("--socket-mode", help="Socket Mode: no request URLs.")] = False,
) -> None:
    """The Slack app manifest (JSON) for "Create app from manifest"."""
    import json

    from adapters.slack.manifest import build_manifest

    if not url.startswith(("https://", "http://")):
        typer.echo("The URL must start with https:// (Slack only calls public HTTPS URLs).", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(build_manifest(url, socket_mode=socket_mode), indent=2, ensure_ascii=False))


@app.command()
def schedule() -> None:
    """List what is due next for each pilot (check-ins, pending and undeliverable messages)."""
    from bot.duework import schedule as schedule_reply
    from bot.replies import render_text

    core = _core()
    typer.echo(render_text(schedule_reply(core.engine, core.settings, core.clock.now())))


@app.command()
def serve() -> None:
    """Run the server: Slack, Teams, REST API and the scheduler."""
    from adapters.server import run

    run(_core())


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
