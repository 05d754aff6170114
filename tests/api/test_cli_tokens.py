from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bot.core import Core
from bot.tokens import TokenService
from tests.api.conftest import seed


def test_token_commands(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters import cli

    seed(core)
    monkeypatch.setattr(cli, "_core", lambda: core)
    runner = CliRunner()
    r = runner.invoke(cli.app, ["token", "create", "ci-legal", "--pilot", "legal-intake"])
    assert r.exit_code == 0, r.output
    secret = r.output.strip().splitlines()[-1]
    svc = TokenService(core.engine, core.clock)
    info = svc.verify(secret)
    assert info is not None and info.pilot_slug == "legal-intake"
    assert "not shown again" in r.output
    r = runner.invoke(cli.app, ["token", "create", "ci-legal"])
    assert r.exit_code == 1 and "already exists" in r.output
    r = runner.invoke(cli.app, ["token", "list"])
    assert r.exit_code == 0 and "ci-legal\tlegal-intake\tactive" in r.output and secret not in r.output
    r = runner.invoke(cli.app, ["token", "revoke", "ci-legal"])
    assert r.exit_code == 0 and svc.verify(secret) is None
    r = runner.invoke(cli.app, ["token", "revoke", "nope"])
    assert r.exit_code == 1 and "No token named `nope`" in r.output


def test_read_only_tokens_and_revoked_names_can_be_reused(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters import cli

    seed(core)
    monkeypatch.setattr(cli, "_core", lambda: core)
    runner = CliRunner()
    r = runner.invoke(cli.app, ["token", "create", "dashboard", "--read-only"])
    assert r.exit_code == 0 and "every pilot, read-only" in r.output, r.output
    svc = TokenService(core.engine, core.clock)
    first = r.output.strip().splitlines()[-1]
    info = svc.verify(first)
    assert info is not None and info.read_only
    assert runner.invoke(cli.app, ["token", "revoke", "dashboard"]).exit_code == 0
    r = runner.invoke(cli.app, ["token", "create", "dashboard"])  # the name of a revoked token is free again
    assert r.exit_code == 0, r.output
    second = r.output.strip().splitlines()[-1]
    again = svc.verify(second)
    assert again is not None and again.name == "dashboard" and not again.read_only
    assert svc.verify(first) is None  # the revoked one stays revoked
    r = runner.invoke(cli.app, ["token", "list"])
    assert "dashboard\tall pilots\tactive" in r.output and "dashboard~revoked-" in r.output, r.output
    assert runner.invoke(cli.app, ["token", "create", "dashboard"]).exit_code == 1  # an active name is taken
