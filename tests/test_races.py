"""Ten identical first-time writes at once (threads, SQLite and PostgreSQL): every one answers success
or a clear refusal, never an internal error, and exactly one row results (issue 12)."""

from __future__ import annotations

import threading

import pytest

from bot.core import Core
from bot.ports import Actor
from bot.replies import Reply, render_text
from storage import repo
from storage.db import session_scope
from storage.models import EvalPolicy, Metric, PathItem, Pilot
from tests.helpers import row_counts

ANA = Actor("console", "ana", "Ana")


def at_once(core: Core, text: str, n: int = 10) -> list[Reply]:
    barrier = threading.Barrier(n)
    replies: list[Reply | None] = [None] * n

    def one(i: int) -> None:
        barrier.wait()
        replies[i] = core.router.handle(text, ANA)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in replies if r is not None]


def assert_no_internal_error(replies: list[Reply]) -> None:
    assert len(replies) == 10
    for r in replies:
        assert "went wrong" not in r.text, render_text(r)


@pytest.mark.parametrize("attempt", range(2))
def test_ten_identical_new_commands_at_once(core: Core, attempt: int) -> None:
    replies = at_once(core, "new race-pilot Race pilot")
    assert_no_internal_error(replies)
    assert sum(r.ok for r in replies) == 1
    for r in replies:
        assert r.ok or "already exists" in r.text, r.text
    assert row_counts(core.engine)["pilot"] == 1


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("baseline race-pilot handle_time 14 min lower", Metric),
        ("threshold race-pilot 95 min-cases 100", EvalPolicy),
        ("path race-pilot rollback done https://wiki/runbook", PathItem),
    ],
)
def test_ten_identical_first_time_changes_at_once(core: Core, text: str, model: type) -> None:
    assert core.router.handle("new race-pilot Race pilot", ANA).ok
    replies = at_once(core, text)
    assert_no_internal_error(replies)
    assert all(r.ok for r in replies), [r.text for r in replies if not r.ok]
    with session_scope(core.engine) as s:
        pilot = repo.pilot_by_slug(s, "race-pilot")
        assert isinstance(pilot, Pilot)
    assert row_counts(core.engine)[model.__tablename__] == 1
