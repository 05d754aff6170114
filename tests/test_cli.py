"""The console surface as a user runs it: `pilotbot demo`, `pilotbot chat -c`, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import row_counts


def pilotbot(db: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "PILOTBOT_ADMINS": ""}
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("cli") / "demo.db"
    out = pilotbot(db, "demo")
    assert out.returncode == 0, out.stderr
    assert "support-drafts" in out.stdout
    return db


def test_demo_portfolio(demo_db: Path) -> None:
    out = pilotbot(demo_db, "chat", "-c", "status")
    assert out.returncode == 0
    assert "1 of 3 pilots ready to ship (33%) · 1 in production" in out.stdout
    for slug in ("support-drafts", "legal-intake", "doc-summaries"):
        assert slug in out.stdout


def test_demo_is_idempotent(demo_db: Path) -> None:
    from storage.db import make_engine

    engine = make_engine(f"sqlite:///{demo_db}")
    before = row_counts(engine)
    out = pilotbot(demo_db, "demo")
    assert out.returncode == 0 and "already loaded" in out.stdout
    assert row_counts(engine) == before


def test_demo_pilots_show_different_gap_states(demo_db: Path) -> None:
    support = pilotbot(demo_db, "chat", "-c", "status support-drafts").stdout
    assert "Support reply drafts (support-drafts) — production, ready to ship" in support
    assert "handle_time 14 → 9 min (−36%, better)" in support
    audit = pilotbot(demo_db, "chat", "-c", "audit support-drafts").stdout
    assert "console:dana  ship  stage=production" in audit
    assert "revision_rate 38% → 21% (−17 pts, −45%, better)" in support
    legal = pilotbot(demo_db, "chat", "-c", "status legal-intake").stdout
    assert "Baseline: at risk" in legal and "Owner: at risk" in legal
    assert "latest eval 91.3% < 95% bar" in legal
    docs = pilotbot(demo_db, "chat", "-c", "status doc-summaries").stdout
    assert "orphaned" in docs and "60 cases < 100 needed" in docs


def test_refused_command_exits_1(demo_db: Path) -> None:
    out = pilotbot(demo_db, "chat", "-c", "golive support-drafts 2026-01-01", "--as", "eve")
    assert out.returncode == 1
    assert "Only the owner of `support-drafts` (@Dana Whitfield) or an admin can change it." in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_as_user_acts_as_owner(demo_db: Path) -> None:
    out = pilotbot(demo_db, "chat", "-c", "path legal-intake monitoring done grafana board", "--as", "li")
    assert out.returncode == 0, out.stdout
    assert "console:li" in pilotbot(demo_db, "chat", "-c", "audit legal-intake").stdout


def test_interactive_reads_stdin(demo_db: Path) -> None:
    out = pilotbot(demo_db, "chat", stdin="help\nstatus doc-summaries\nquit\n")
    assert out.returncode == 0
    assert "pilotbot commands:" in out.stdout and "Inbound document summaries" in out.stdout


def test_db_upgrade(tmp_path: Path) -> None:
    out = pilotbot(tmp_path / "new.db", "db", "upgrade")
    assert out.returncode == 0 and "was empty" in out.stdout
    out = pilotbot(tmp_path / "new.db", "db", "upgrade")
    assert "already current" in out.stdout


@pytest.mark.parametrize("args", [["chat", "-c", "status"], ["demo"], ["db", "upgrade"]])
def test_fast_commands_do_not_import_platform_libraries(demo_db: Path, args: list[str]) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{demo_db}"}
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "adapters.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line}
    heavy = {"slack_bolt", "slack_sdk", "botbuilder", "aiohttp", "apscheduler", "matplotlib"}
    assert imported & heavy == set()
    assert "sqlmodel" in imported  # the probe saw the imports at all


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PILOTBOT_ADMINS")}
    root = str(Path(__file__).parent.parent)
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        env={**base, "PYTHONPATH": root, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    ("admins", "fragment"),
    [
        ("root", "PILOTBOT_ADMINS entry `root` has no platform: write `<platform>:<user id>`"),
        ("slack:U1,discord:bob", "PILOTBOT_ADMINS entry `discord:bob` names the unknown platform `discord`"),
        ("slack:", "PILOTBOT_ADMINS entry `slack:` has no platform"),
    ],
)
@pytest.mark.parametrize("command", [("chat", "-c", "status"), ("serve",)])
def test_settings_that_cannot_be_right_stop_serve_and_chat(
    tmp_path: Path, admins: str, fragment: str, command: tuple[str, ...]
) -> None:
    out = run_cli(*command, cwd=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", PILOTBOT_ADMINS=admins)
    assert out.returncode == 2, out.stderr
    assert fragment in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.db").exists()  # stopped before anything was created


def test_chat_from_another_folder_says_which_database_it_created(tmp_path: Path) -> None:
    out = run_cli("chat", "-c", "status", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    created = tmp_path / "pilotbot.db"
    assert created.exists()
    assert f"Created a new, empty database {created.resolve()}" in out.stderr
    again = run_cli("chat", "-c", "status", cwd=tmp_path)
    assert again.returncode == 0 and "Created" not in again.stderr


def test_scorecard_check_passes_then_names_a_corrupted_row(demo_db: Path, tmp_path: Path) -> None:
    import shutil
    import sqlite3

    db = tmp_path / "copy.db"
    shutil.copy(demo_db, db)
    ok = pilotbot(db, "scorecard", "check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "matches the rules for every pilot" in ok.stdout
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE pilot_scorecard SET quality_state = 'closed', ready = 1 WHERE slug = 'legal-intake'")
    bad = pilotbot(db, "scorecard", "check")
    assert bad.returncode == 1
    assert "legal-intake: quality_state stored 'closed'" in bad.stdout
    assert "difference(s)" in bad.stderr


def test_db_upgrade_fills_the_scorecard_of_an_existing_database(demo_db: Path, tmp_path: Path) -> None:
    import shutil
    import sqlite3

    db = tmp_path / "old.db"
    shutil.copy(demo_db, db)
    with sqlite3.connect(db) as conn:  # as if the pilots predated 0013
        conn.execute("DELETE FROM pilot_scorecard")
    out = pilotbot(db, "db", "upgrade")
    assert out.returncode == 0 and "Scored 3 pilot(s)" in out.stdout, out.stdout + out.stderr
    assert pilotbot(db, "scorecard", "check").returncode == 0
