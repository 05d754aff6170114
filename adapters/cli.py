"""`pilotbot` — the composition root. Platform libraries are imported inside the commands
that need them so `chat`, `demo` and `db` start fast."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="pilotbot: govern AI pilots from Slack, Teams and the console."
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
manifest_app = typer.Typer(
    no_args_is_help=True, help="App manifests (Slack) and app packages (Teams) for the chat platforms."
)
app.add_typer(manifest_app, name="manifest")

token_app = typer.Typer(no_args_is_help=True, help="API bearer tokens for CI and dashboards.")
app.add_typer(token_app, name="token")
scorecard_app = typer.Typer(no_args_is_help=True, help="The stored portfolio scorecard.")
app.add_typer(scorecard_app, name="scorecard")
eval_app = typer.Typer(no_args_is_help=True, help="Eval runs from labelled results.")
app.add_typer(eval_app, name="eval")


def _core():  # type: ignore[no-untyped-def]
    """Settings checked (one sentence and exit 2 when they cannot be right), then the core; says
    which database file it created when there was none (a `chat` run from another folder)."""
    from bot.config import SettingsError, get_settings
    from bot.core import build_core

    settings = get_settings()
    try:
        settings.check()
    except SettingsError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    db_file = settings.sqlite_file()
    new = db_file is not None and not db_file.exists()
    core = build_core(settings)
    if new:
        typer.echo(
            f"Created a new, empty database {db_file} (DATABASE_URL={settings.database_url}); "
            "set DATABASE_URL to use another one.",
            err=True,
        )
    return core


def _deliver_now(core):  # type: ignore[no-untyped-def]
    """With Slack or Teams settings, an alert a command raises goes out right after its commit."""
    if not (core.settings.slack_bot_token or core.settings.microsoft_app_id or core.settings.teams_allow_anonymous):
        return None  # nothing to send from here: skip importing the platform libraries
    from adapters.server import background_delivery

    return background_delivery(core)


@app.command()
def chat(
    command: Annotated[str | None, typer.Option("-c", "--command", help="Run one command and exit.")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Act as this user (default: the OS user).")] = None,
) -> None:
    """The console surface: interactive, or one command with -c."""
    from adapters.console import console_actor, run_interactive, run_once

    core = _core()
    actor = console_actor(as_user)
    delivery = _deliver_now(core)
    if command is not None:
        code = run_once(core.router, command, actor)
        if delivery is not None:
            delivery.close()
        core.engine.dispose()
        sys.stdout.flush()
        sys.stderr.flush()
        # One-shot calls are scripted one after another: skip the interpreter's teardown of the
        # SQLAlchemy/pydantic module graph (~60 ms here). Everything was committed and flushed above.
        os._exit(code)
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
    from bot.core import build_core

    services = build_core(settings, engine=engine, migrate=False).services
    filled = services.scorecard_backfill()
    if filled:
        typer.echo(f"Scored {filled} pilot(s) into the stored scorecard.")
    judged = services.counters_backfill()
    if judged:
        typer.echo(f"Counted the verdicts of {judged} check-in(s) for /metrics.")


@scorecard_app.command("check")
def scorecard_check() -> None:
    """Recompute every pilot's scorecard with the rules and list any stored difference (exit 1)."""
    core = _core()
    diffs = core.services.scorecard_check()
    for line in diffs[:200]:
        typer.echo(line)
    if diffs:
        typer.echo(f"{len(diffs)} difference(s) between the stored scorecard and the rules.", err=True)
        raise typer.Exit(1)
    typer.echo("The stored scorecard matches the rules for every pilot.")


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
    from bot.replies import render_text
    from bot.schedule.operator import schedule as schedule_reply

    core = _core()
    typer.echo(render_text(schedule_reply(core.engine, core.settings, core.clock.now())))


@app.command()
def serve() -> None:
    """Run the server: Slack, Teams, REST API and the scheduler."""
    from adapters.server import run

    run(_core())


@manifest_app.command("teams")
def manifest_teams(
    app_id: Annotated[str, typer.Option("--app-id", help="The bot's Microsoft App ID (a GUID).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the zip.")] = Path("pilotbot-teams.zip"),
    version: Annotated[str, typer.Option("--version", help="App version, e.g. 1.0.0.")] = "1.0.0",
    developer: Annotated[str, typer.Option("--developer", help="Developer name shown in Teams.")] = "pilotbot",
    website: Annotated[
        str, typer.Option("--website", help="https URL; privacy and terms default to <website>/privacy and /terms.")
    ] = "https://example.com/pilotbot",
) -> None:
    """Write the Teams app package (manifest.json, color.png, outline.png) to upload in Teams."""
    from adapters.teams.package import PackageError, PackageInfo, write_package

    try:
        size = write_package(PackageInfo(app_id.strip(), version, developer, website), out)
    except PackageError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    except OSError as e:
        typer.echo(f"Cannot write {out}: {e.strerror or e}.", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Wrote {out} ({size} bytes): upload it in Teams > Apps > Manage your apps > Upload an app.")


# ---- REST API tokens and eval import (issue 7) ----


def _cli_actor_ref(as_user: str | None = None) -> str:
    from adapters.console import console_actor

    return console_actor(as_user).ref


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="A name for the token, e.g. ci-legal; shown in the audit log.")],
    pilot: Annotated[str | None, typer.Option("--pilot", help="Scope the token to this pilot only.")] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Reads only (dashboards): every write answers 403.")
    ] = False,
) -> None:
    """Create an API token; the secret is shown once and stored only as a hash."""
    from bot.errors import UserError
    from bot.tokens import TokenService

    core = _core()
    try:
        secret, info = TokenService(core.engine, core.clock).create(
            name, pilot, by=_cli_actor_ref(), read_only=read_only
        )
    except UserError as e:
        typer.echo(e.sentence, err=True)
        raise typer.Exit(1) from None
    scope = f"pilot `{info.pilot_slug}` only" if info.pilot_slug else "every pilot"
    scope += ", read-only" if info.read_only else ""
    typer.echo(f"Token `{info.name}` ({scope}). Copy it now, it is not shown again:")
    typer.echo(secret)


@token_app.command("list")
def token_list() -> None:
    """List tokens (names, scopes, last use; never the secrets)."""
    from bot.tokens import TokenService

    core = _core()
    rows = TokenService(core.engine, core.clock).list()
    if not rows:
        typer.echo("No API tokens yet: `pilotbot token create <name> [--pilot <slug>]`.")
        return
    for t in rows:
        scope = (t.pilot_slug or "all pilots") + (" (read-only)" if t.read_only else "")
        used = t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never used"
        state = f"revoked {t.revoked_at.strftime('%Y-%m-%d %H:%M')}" if t.revoked_at else "active"
        typer.echo(f"{t.name}\t{scope}\t{state}\tcreated {t.created_at.strftime('%Y-%m-%d')}\t{used}")


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke a token; effective for the next request."""
    from bot.errors import UserError
    from bot.tokens import TokenService

    core = _core()
    try:
        TokenService(core.engine, core.clock).revoke(name, by=_cli_actor_ref())
    except UserError as e:
        typer.echo(e.sentence, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Token `{name}` revoked.")


@eval_app.command("import")
def eval_import(
    slug: Annotated[str, typer.Argument(help="The pilot.")],
    file: Annotated[str, typer.Argument(help="Labelled results: .jsonl, .csv or JUnit .xml (see README).")],
    as_user: Annotated[str | None, typer.Option("--as", help="Act as this user (default: the OS user).")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Model or prompt version of this run.")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="jsonl, csv or junit (default: from the file name).")
    ] = None,
    gate: Annotated[
        bool, typer.Option("--gate", help="CI: exit 1 with the reasons when the run does not clear the bar.")
    ] = False,
) -> None:
    """Score labelled cases, record the eval run with every case's result, and name the cases that
    flipped against the previous labelled run. With --gate the run is recorded either way."""
    from pathlib import Path

    from adapters.console import console_actor
    from bot.errors import UserError
    from bot.evalscore import FORMATS, format_of, score_text
    from storage.models import Source

    kind = (fmt or format_of(filename=file) or "").lower()
    if kind not in FORMATS:
        typer.echo("Give a .jsonl, .csv or JUnit .xml file, or say which with `--format jsonl|csv|junit`.", err=True)
        raise typer.Exit(2)
    try:
        text = Path(file).read_text(encoding="utf-8-sig")
    except OSError as e:
        typer.echo(f"Cannot read `{file}`: {(e.strerror or str(e)).lower()}.", err=True)
        raise typer.Exit(2) from None
    except UnicodeDecodeError:
        typer.echo(f"Cannot read `{file}`: it is not UTF-8 text; save it as UTF-8 JSONL, CSV or XML.", err=True)
        raise typer.Exit(2) from None
    core = _core()
    actor = console_actor(as_user)
    _deliver_now(core)
    try:
        scored = score_text(text, kind)
        out = core.services.record_eval(
            actor,
            slug.lower(),
            scored.score,
            scored.cases,
            version,
            Source.command,
            scored.field_accuracy,
            scored.results,
        )
    except UserError as e:
        typer.echo(e.sentence, err=True)
        raise typer.Exit(1) from None
    for line in [out.text, *scored.summary_lines(), *out.lines]:
        typer.echo(line)
    if gate and out.gate is not None:
        typer.echo(out.gate.text(), err=not out.gate.passed)
        if not out.gate.passed:
            raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
