"""Scheduled fan-out: N due check-ins delivered by pilotbot's Delivery (claim -> send -> mark,
exactly once) vs a bare loop of Slack Web API calls with the same concurrency.
"pilotbot" is the first week (each DM needs conversations.open first); "pilotbot-week2" is the next
week from a fresh process, posting straight into the DM channels recorded in the database.

The fake Slack Web API runs in its own process and answers every call after `--delay` seconds.
pilotbot sends each check-in DM with the real SlackNotifier (conversations.open, then
chat.postMessage with Block Kit) built by make_slack_client (retry handlers on). Two baselines use
the same client and concurrency:
  bare-post      N chat.postMessage calls (what the issue names)
  bare-open+post N x (conversations.open + chat.postMessage): the same DM fan-out, no database

    .venv/bin/python bench/fanout.py [--n 10000] [--concurrency 50] [--delay 0.05] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.slack.notifier import SlackNotifier, make_slack_client  # noqa: E402
from bot.clock import FixedClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.schedule.deliver import Delivery  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402
from storage.models import CheckIn  # noqa: E402
from tests.schedule.seed import seed_due_pilots, sent_count  # noqa: E402


def _http(url: str, method: str = "GET") -> dict:  # type: ignore[type-arg]
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def settings_for(db_url: str, api_url: str, concurrency: int) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=db_url,
        slack_bot_token="xoxb-bench",
        slack_signing_secret="bench",
        slack_api_url=api_url,
        pilotbot_send_concurrency=concurrency,
    )


async def run_pilotbot(base: str, n: int, concurrency: int) -> list[tuple[float, dict[str, int]]]:
    """Week 1 (every DM opened with conversations.open), then week 2 from a fresh process (no
    in-memory DM cache: the DM channel of week 1 is read from the database)."""
    tmp = tempfile.mkdtemp(prefix="fanout-")
    url = f"sqlite:///{tmp}/bench.db"
    engine = make_engine(url)
    upgrade(engine)
    clock = FixedClock(datetime.now(UTC))
    seed_due_pilots(engine, n, clock.now())
    settings = settings_for(url, base + "/api/", concurrency)
    out = []
    for week in (1, 2):
        notifier = SlackNotifier(make_slack_client(settings))
        delivery = Delivery(engine, settings, clock, {"slack": notifier})
        _http(base + "/_reset", "POST")
        t0 = time.perf_counter()
        while sent_count(engine) != (n * week, n * week):
            await delivery.tick()
        wall = time.perf_counter() - t0
        await delivery.tick()  # one more tick: nothing may go out twice
        out.append((wall, _http(base + "/_stats")))
        with engine.begin() as c:  # every owner answers, so week 2 holds only check-ins
            c.execute(sa.update(CheckIn).values(answered_at=clock.now()))
        clock.advance(timedelta(days=7))
    engine.dispose()
    return out


async def run_bare(base: str, n: int, concurrency: int, with_open: bool) -> tuple[float, dict[str, int]]:
    settings = settings_for("sqlite://", base + "/api/", concurrency)
    client = make_slack_client(settings)
    sem = asyncio.Semaphore(concurrency)
    _http(base + "/_reset", "POST")

    async def one(i: int) -> None:
        async with sem:
            channel = f"DU{i:05d}"
            if with_open:
                resp = await client.conversations_open(users=f"U{i:05d}")
                channel = resp["channel"]["id"]
            await client.chat_postMessage(channel=channel, text=f"Weekly check-in {i}")

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - t0
    return wall, _http(base + "/_stats")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.schedule.fake", "--delay", str(args.delay)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        base = fake.stdout.readline().strip()
        results: dict[str, list[float]] = {"pilotbot": [], "pilotbot-week2": [], "bare-post": [], "bare-open+post": []}
        for r in range(args.rounds):
            runs: list[tuple[str, float, dict[str, int]]] = []
            (w1, s1), (w2, s2) = asyncio.run(run_pilotbot(base, args.n, args.concurrency))
            runs += [("pilotbot", w1, s1), ("pilotbot-week2", w2, s2)]
            for name in ("bare-post", "bare-open+post"):
                wall, stats = asyncio.run(run_bare(base, args.n, args.concurrency, name == "bare-open+post"))
                runs.append((name, wall, stats))
            for name, wall, stats in runs:
                once = stats["delivered"] == stats["distinct"] == args.n and stats["max_per_channel"] == 1
                results[name].append(wall)
                print(
                    f"round {r + 1} {name:15s} {wall:7.2f} s  {args.n / wall:7.0f} msg/s  "
                    f"delivered {stats['delivered']} distinct {stats['distinct']} exactly-once {once}",
                    flush=True,
                )
        print(f"\n{args.n} check-ins, concurrency {args.concurrency}, fake latency {args.delay * 1000:.0f} ms")
        med = {k: statistics.median(v) for k, v in results.items()}
        for name, walls in results.items():
            print(
                f"{name:15s} median {med[name]:7.2f} s ({args.n / med[name]:6.0f} msg/s), "
                f"spread {min(walls):.2f}-{max(walls):.2f} s"
            )
        print(f"pilotbot / bare-post      = {med['pilotbot'] / med['bare-post']:.2f}x")
        print(f"pilotbot / bare-open+post = {med['pilotbot'] / med['bare-open+post']:.2f}x")
        print(f"pilotbot-week2 / bare-post = {med['pilotbot-week2'] / med['bare-post']:.2f}x")
    finally:
        fake.terminate()
        fake.wait()


if __name__ == "__main__":
    main()
