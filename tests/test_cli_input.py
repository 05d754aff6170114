"""Numbers, words and text rules at the console (`pilotbot chat -c`, `pilotbot chat` on stdin,
`pilotbot eval import`), issue 12: one sentence, exit 1, nothing written, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.db import make_engine
from tests.helpers import row_counts
from tests.test_cli import pilotbot


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-input") / "input.db"
    for cmd in (
        "new cli-pilot CLI pilot",
        "baseline cli-pilot handle_time 14 min lower at 2026-09-14",
        "baseline cli-pilot revision_rate 38% lower at 2026-09-14",
    ):
        out = pilotbot(path, "chat", "-c", cmd, "--as", "ana")
        assert out.returncode == 0, out.stdout + out.stderr
    return path


def refused(db: Path, *args: str, stdin: str | None = None) -> str:
    engine = make_engine(f"sqlite:///{db}")
    before = row_counts(engine)
    out = pilotbot(db, *args, stdin=stdin)
    assert "Traceback" not in out.stdout + out.stderr and "went wrong" not in out.stdout, out.stdout + out.stderr
    assert row_counts(engine) == before, "a refused command wrote to the database"
    engine.dispose()
    if stdin is None:
        assert out.returncode == 1, out.stdout
    return out.stdout + out.stderr


def test_a_lone_surrogate_in_an_eval_version(db: Path) -> None:
    # An argument that is not UTF-8 reaches Python as a lone surrogate (surrogateescape).
    said = refused(db, "chat", "-c", "eval cli-pilot 96 cases 100 version v\udcff7", "--as", "ana")
    assert "The version contains a broken character (half of a UTF-16 surrogate pair)" in said


def test_a_lone_surrogate_in_an_imported_eval_version(db: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"id": "1", "expected": {"a": 1}, "actual": {"a": 1}}\n', encoding="utf-8")
    said = refused(db, "eval", "import", "cli-pilot", str(cases), "--version", "v\udcff7", "--as", "ana")
    assert "The version contains a broken character" in said


def test_nul_in_a_name_typed_at_the_console(db: Path) -> None:
    said = refused(db, "chat", "--as", "ana", stdin="new other-pilot Bad\x00name\n")
    assert "The pilot name contains a NUL character; remove it." in said


def test_an_over_long_owner_id(db: Path) -> None:
    said = refused(db, "chat", "-c", "owner cli-pilot <@" + "U" * 129 + ">", "--as", "ana")
    assert "The user id is too long (129 characters; 128 at most)." in said


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("measure cli-pilot handle_time 0.2 hours", "`measure cli-pilot handle_time 12 min`"),
        ("measure cli-pilot handle_time 1,5", "write `1.5` instead of `1,5`"),
        ("measure cli-pilot revision_rate 120", "`revision_rate` is a percentage: give a value from 0 to 100"),
        ("golive cli-pilot 2026-11-31", "2026-11-31 does not exist (November has 30 days)"),
        ("path cli-pilot rollbak done", "Did you mean `rollback`?"),
        ("measure cli-pilot handel_time 9", "Did you mean `handle_time`?"),
        ("checkin cli-pilot monday 09:00 " + "Europe/" * 1500, "is not an IANA time zone (64 characters at most)"),
    ],
)
def test_numbers_and_words_at_the_console(db: Path, command: str, says: str) -> None:
    assert says in refused(db, "chat", "-c", command, "--as", "ana")


def test_thousands_and_fractions_at_the_console(db: Path) -> None:
    out = pilotbot(db, "chat", "-c", "measure cli-pilot revision_rate 0.21", "--as", "ana")
    assert out.returncode == 0 and "I read 0.21 as 21%" in out.stdout, out.stdout
    out = pilotbot(db, "chat", "-c", "baseline cli-pilot tickets 1,200 lower at 2026-09-14", "--as", "ana")
    assert out.returncode == 0 and "tickets: 1200" in out.stdout, out.stdout
