from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from adapters.cli import app
from adapters.slack.manifest import BOT_SCOPES, COMMAND, build_manifest
from bot.commands import COMMAND_NAMES, parse, strip_prefix
from bot.views import help_reply

ROOT = Path(__file__).resolve().parents[2]


def test_manifest_json_is_the_generated_one() -> None:
    assert json.loads((ROOT / "manifest.json").read_text()) == build_manifest()


def test_manifest_declares_the_command_the_grammar_parses() -> None:
    manifest = json.loads((ROOT / "manifest.json").read_text())
    commands = manifest["features"]["slash_commands"]
    assert [c["command"] for c in commands] == [COMMAND] == ["/pilot"]
    assert commands[0]["should_escape"] is True
    # What Slack sends after the command, and what Teams/console send with the prefix, parse the same.
    assert strip_prefix("/pilot status x") == "status x"
    assert parse("/pilot status support-drafts") == parse("status support-drafts")
    hint_words = {w for w in commands[0]["usage_hint"].replace("·", " ").split() if w.isalpha()}
    assert hint_words <= set(COMMAND_NAMES) | {"share"}
    help_text = "\n".join(help_reply().lines)
    assert all(f"`{name}" in help_text for name in COMMAND_NAMES)


def test_manifest_scopes_and_features_are_minimal() -> None:
    manifest = build_manifest("https://bot.example.org/")
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(
        [
            "commands",
            "chat:write",
            "im:write",
            "im:history",
            "users:read",
            "files:write",
            "chat:write.public",
            "channels:read",
        ]
    )
    assert "user" not in manifest["oauth_config"]["scopes"]
    assert tuple(manifest["oauth_config"]["scopes"]["bot"]) == BOT_SCOPES
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert settings["event_subscriptions"]["request_url"] == "https://bot.example.org/slack/events"
    assert settings["interactivity"]["request_url"] == "https://bot.example.org/slack/events"
    assert manifest["features"]["slash_commands"][0]["url"] == "https://bot.example.org/slack/events"
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert 175 <= len(manifest["display_information"]["long_description"]) <= 4000


def test_socket_mode_manifest_has_no_request_urls() -> None:
    manifest = build_manifest("https://x", socket_mode=True)
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "url" not in manifest["features"]["slash_commands"][0]
    assert "request_url" not in manifest["settings"]["interactivity"]


def test_cli_prints_the_manifest_with_the_url() -> None:
    result = CliRunner().invoke(app, ["manifest", "slack", "--url", "https://pilotbot.acme.io"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed == build_manifest("https://pilotbot.acme.io")
    bad = CliRunner().invoke(app, ["manifest", "slack", "--url", "pilotbot.acme.io"])
    assert bad.exit_code == 2
