"""`pilotbot serve` as real processes against a fake Slack Web API: crash, replicas, faults.

Time control: the seeded check-ins are already due, so the start-up tick (and 1 s ticks) deliver
them; nothing sleeps for a schedule, the tests poll the fake's record and the database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from storage.db import make_engine
from tests import pg
from tests.conftest import _pg_database
from tests.schedule.fake import DeliveryFake
from tests.schedule.seed import seed_due_pilots, sent_count

N = 1000
LEASE = 3  # seconds a dead process's claims are held before another process retries them


def _env(db_url: str, api_url: str, lease: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PILOTBOT_", "MICROSOFT_", "DATABASE"))}
    env.update(
        DATABASE_URL=db_url,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="test-secret",
        SLACK_API_URL=api_url,
        SLACK_RATE_LIMIT_FACTOR="1000",  # the fake has no rate tiers: pace only to its 429s
        HOST="127.0.0.1",
        PORT=str(pg.free_port()),
        PILOTBOT_TICK_SECONDS="1",
        PILOTBOT_CLAIM_LEASE_SECONDS=str(lease),
        PILOTBOT_SEND_CONCURRENCY="16",
    )
    return env


async def _serve(db_url: str, api_url: str, cwd: Path, lease: int = LEASE) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.cli",
        "serve",
        env=_env(db_url, api_url, lease),
        cwd=cwd,  # no stray .env
        stdout=asyncio.subprocess.DEVNULL,
        stderr=open(cwd / f"serve-{pg.free_port()}.log", "w"),  # noqa: SIM115
    )


async def _until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@pytest.fixture
async def fake() -> AsyncIterator[DeliveryFake]:
    server = await DeliveryFake().start()
    yield server
    await server.stop()


def _exactly_once(fake: DeliveryFake, users: list[str]) -> None:
    assert all(t.startswith("Weekly check-in") for t in fake.texts), "something other than check-ins went out"
    counts = Counter(fake.delivered)
    assert set(counts) == {"D" + u for u in users}, "some owner got no check-in"
    assert max(counts.values()) == 1, f"duplicates: {[c for c, k in counts.items() if k > 1][:5]}"


async def test_crash_mid_way_and_restart(fake: DeliveryFake, sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    users = seed_due_pilots(engine, N)
    # The fake accepts 400 messages, then holds every further call unanswered (the platform has not
    # accepted them). Once the database shows those 400 as sent, SIGKILL: the held messages were
    # claimed but not sent, and must be delivered after the restart, once.
    fake.close_gate_after(400)
    first = await _serve(sqlite_url, fake.api_url, tmp_path)
    try:
        await _until(lambda: fake.held > 0 and sent_count(engine)[0] == len(fake.delivered), 60, "400 sent")
        first.send_signal(signal.SIGKILL)
        await first.wait()
    finally:
        if first.returncode is None:
            first.kill()
    assert 0 < len(fake.delivered) < N
    fake.drop_held()
    second = await _serve(sqlite_url, fake.api_url, tmp_path)
    try:
        await _until(lambda: sent_count(engine) == (N, N), 90, "all sent after restart")
    finally:
        await _stop(second)
    _exactly_once(fake, users)
    engine.dispose()


async def test_two_replicas_on_postgresql(
    fake: DeliveryFake, pg_cluster: pg.PgCluster | None, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if pg_cluster is None:
        pytest.skip("no PostgreSQL server here")
    url = _pg_database(pg_cluster, request.getfixturevalue("pg_template"))
    engine = make_engine(url)
    users = seed_due_pilots(engine, N)
    procs = [await _serve(url, fake.api_url, tmp_path) for _ in range(2)]
    try:
        await _until(lambda: sent_count(engine) == (N, N), 90, "all sent by two replicas")
        await asyncio.sleep(2)  # a few more ticks of both: nothing else may go out
    finally:
        for p in procs:
            await _stop(p)
    _exactly_once(fake, users)
    assert sent_count(engine) == (N, N)
    engine.dispose()


async def test_faults_429_and_500(sqlite_url: str, tmp_path: Path) -> None:
    fake = await DeliveryFake(fault_rate=0.2).start()
    engine = make_engine(sqlite_url)
    n = 500
    users = seed_due_pilots(engine, n)
    # A lease longer than slack_sdk's own retries (429 waits Retry-After, up to 3 times).
    proc = await _serve(sqlite_url, fake.api_url, tmp_path, lease=30)
    try:
        # Every 429 now holds back every sender for its Retry-After (adapters/slack/pacing.py), so
        # ~100 of them cost ~50 s on their own: a generous bound, not a timing claim.
        await _until(lambda: sent_count(engine) == (n, n), 240, "all sent despite faults")
    finally:
        await _stop(proc)
        await fake.stop()
    assert fake.faults > 50
    _exactly_once(fake, users)
    engine.dispose()


async def test_crash_inside_the_window_is_recovered_from_slack(
    fake: DeliveryFake, sqlite_url: str, tmp_path: Path
) -> None:
    """SIGKILL while Slack has accepted messages whose answers never reached the process (the window
    between "accepted" and "sent_at committed"): after the restart those rows' lapsed claims make
    pilotbot look in the DM history first, find them, and record them instead of sending again."""
    engine = make_engine(sqlite_url)
    users = seed_due_pilots(engine, N)
    fake.hold_responses_after = 300
    first = await _serve(sqlite_url, fake.api_url, tmp_path)
    try:
        await _until(lambda: fake.held >= 8, 60, "accepted-but-unanswered messages")
        await asyncio.sleep(0.2)  # let every in-flight send reach the fake
        first.send_signal(signal.SIGKILL)
        await first.wait()
    finally:
        if first.returncode is None:
            first.kill()
    in_window = len(fake.delivered) - sent_count(engine)[0]
    assert in_window >= 8  # accepted by Slack, not recorded in the database
    fake.drop_held()
    second = await _serve(sqlite_url, fake.api_url, tmp_path)
    try:
        await _until(lambda: sent_count(engine) == (N, N), 90, "all sent after restart")
    finally:
        await _stop(second)
    assert fake.history_calls >= in_window
    _exactly_once(fake, users)
    engine.dispose()
