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

These modes measure pilotbot's own overhead, so their clients do not pace (a fake without limits).
`--tiers` instead runs pilotbot against a fake Slack that enforces Slack's documented rate tiers
(tests/slack/fake_slack.py: 429 + Retry-After past them), with the client pacing to the same tiers
(adapters/slack/pacing.py). Slack's clock runs `--scale` times faster on both sides, so a minute
lasts 60/scale s. For 1,000 first-week owners (conversations.open + chat.postMessage each) and
10,000 second-week owners (DM channel ids from the database: chat.postMessage only) it prints the
total time against the minimum the limits allow, the 429s received, duplicates and losses:

    .venv/bin/python bench/fanout.py --tiers [--scale 20] [--first-week 1000] [--second-week 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
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
from adapters.slack.pacing import METHOD_LIMITS, Pacer, scaled_time  # noqa: E402
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


def unpaced() -> Pacer:
    """The overhead modes' fake has no limits: pace nothing (a 429 would still be honoured)."""
    return Pacer(limits={}, channel_limits={})


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
        notifier = SlackNotifier(make_slack_client(settings, pacer=unpaced()))
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
    client = make_slack_client(settings, pacer=unpaced())
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


# ---- --tiers: against Slack's rate limits ---------------------------------------------------------
def _start(module: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def minimum_seconds(calls: dict[str, int], scale: float) -> tuple[float, float]:
    """The least time the limits allow for these calls, in real (scaled) seconds: with a rolling
    window of `per` holding `calls`, N calls need floor((N-1)/calls) full windows after the first;
    and the plain N/rate figure (e.g. 1,000 opens at 50/min = 20 min)."""
    strict = plain = 0.0
    for method, n in calls.items():
        limit = METHOD_LIMITS[method]
        strict = max(strict, (n - 1) // limit.calls * limit.per)
        plain = max(plain, n / limit.calls * limit.per)
    return strict / scale, plain / scale


async def deliver_week(engine: sa.Engine, url: str, base: str, clock: FixedClock, concurrency: int, scale: float,
                       n_total: int) -> tuple[float, dict, int]:  # type: ignore[type-arg]  # fmt: skip
    """One week's fan-out from a fresh process (new client, new Pacer): until every check-in is sent."""
    settings = settings_for(url, base + "/api/", concurrency)
    pace_clock, pace_sleep = scaled_time(scale)
    pacer = Pacer(clock=pace_clock, sleep=pace_sleep)
    delivery = Delivery(engine, settings, clock, {"slack": SlackNotifier(make_slack_client(settings, pacer=pacer))})
    _http(base + "/_reset", "POST")
    t0 = time.perf_counter()
    while sent_count(engine) != (n_total, n_total):
        await delivery.tick()
    wall = time.perf_counter() - t0
    await delivery.tick()  # one more tick: nothing may go out twice
    return wall, _http(base + "/_stats"), pacer.throttles


def _answer_all(engine: sa.Engine, clock: FixedClock) -> None:
    with engine.begin() as c:  # every owner answers, so next week holds only check-ins
        c.execute(sa.update(CheckIn).values(answered_at=clock.now()))
    clock.advance(timedelta(days=7))


def prepare_second_week(n: int, plain_base: str, concurrency: int) -> tuple[str, datetime]:
    """A database whose n owners got last week's check-in (DM channel recorded), sent through a
    fake without limits: the timed run is the second week only. Copied per round."""
    tmp = tempfile.mkdtemp(prefix="fanout-tiers-")
    url = f"sqlite:///{tmp}/week1.db"
    engine = make_engine(url)
    upgrade(engine)
    clock = FixedClock(datetime.now(UTC))
    seed_due_pilots(engine, n, clock.now())
    settings = settings_for(url, plain_base + "/api/", concurrency)
    delivery = Delivery(engine, settings, clock, {"slack": SlackNotifier(make_slack_client(settings, pacer=unpaced()))})

    async def run() -> None:
        while sent_count(engine) != (n, n):
            await delivery.tick()

    asyncio.run(run())
    _answer_all(engine, clock)
    engine.dispose()
    return f"{tmp}/week1.db", clock.now()


async def run_tiers_round(base: str, first: int, second_db: str, second_now: datetime, second: int,
                          concurrency: int, scale: float) -> list[tuple[str, int, float, dict, int]]:  # type: ignore[type-arg]  # fmt: skip
    out = []
    tmp = tempfile.mkdtemp(prefix="fanout-tiers-")
    url = f"sqlite:///{tmp}/first.db"
    engine = make_engine(url)
    upgrade(engine)
    clock = FixedClock(datetime.now(UTC))
    seed_due_pilots(engine, first, clock.now())
    wall, stats, throttles = await deliver_week(engine, url, base, clock, concurrency, scale, first)
    out.append(("first-week", first, wall, stats, throttles))
    engine.dispose()
    shutil.copy(second_db, f"{tmp}/second.db")
    url = f"sqlite:///{tmp}/second.db"
    engine = make_engine(url)
    wall, stats, throttles = await deliver_week(
        engine, url, base, FixedClock(second_now), concurrency, scale, second * 2
    )
    out.append(("second-week", second, wall, stats, throttles))
    engine.dispose()
    return out


def main_tiers(args: argparse.Namespace) -> None:
    tier_fake, base = _start(
        "tests.slack.fake_slack", "--tiers", "--scale", str(args.scale), "--delay", str(args.delay)
    )
    plain_fake, plain = _start("tests.schedule.fake", "--delay", "0")
    try:
        print(f"preparing {args.second_week} owners' first week (fake without limits) ...", flush=True)
        second_db, second_now = prepare_second_week(args.second_week, plain, args.concurrency)
        plain_fake.terminate()
        results: dict[str, list[float]] = {"first-week": [], "second-week": []}
        minimums: dict[str, tuple[float, float]] = {}
        for r in range(args.rounds):
            for name, n, wall, stats, throttles in asyncio.run(
                run_tiers_round(
                    base, args.first_week, second_db, second_now, args.second_week, args.concurrency, args.scale
                )  # fmt: skip
            ):
                expected = {f"DU{i:05d}" for i in range(n)}
                channels = set(stats["channels"])
                calls = {m: c - stats["refused"].get(m, 0) for m, c in stats["calls"].items()}
                strict, plain_min = minimums.setdefault(name, minimum_seconds(calls, args.scale))
                refused = sum(stats["refused"].values())
                total_calls = sum(stats["calls"].values())
                results[name].append(wall / strict)
                print(
                    f"round {r + 1} {name:11s} {n:6d} owners {wall:7.1f} s, minimum {strict:6.1f} s "
                    f"({plain_min:.1f} s at the plain rate): {wall / strict:.3f}x; "
                    f"429s {refused} of {total_calls} calls ({100 * refused / max(1, total_calls):.2f} %, "
                    f"client saw {throttles}); accepted {calls}; "
                    f"duplicates {stats['posted'] - stats['distinct']}, losses {len(expected - channels)}, "
                    f"strays {len(channels - expected)}",
                    flush=True,
                )
        print(
            f"\nSlack's clock x{args.scale:g} (a minute lasts {60 / args.scale:.1f} s), fake latency "
            f"{args.delay * 1000:.0f} ms, concurrency {args.concurrency}, pacing margin "
            f"{Pacer().margin:.0%}; limits: conversations.open {METHOD_LIMITS['conversations.open'].calls}/min, "
            f"chat.postMessage {METHOD_LIMITS['chat.postMessage'].calls}/min and 1/s per channel"
        )
        for name, ratios in results.items():
            print(
                f"{name:11s} time / minimum: median {statistics.median(ratios):.3f}x, "
                f"spread {min(ratios):.3f}-{max(ratios):.3f}x over {len(ratios)} rounds"
            )
    finally:
        for proc in (tier_fake, plain_fake):
            proc.terminate()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tiers", action="store_true", help="against a fake enforcing Slack's rate tiers")
    parser.add_argument("--scale", type=float, default=20.0, help="--tiers: Slack's clock runs this much faster")
    parser.add_argument("--first-week", type=int, default=1000, help="--tiers: owners whose DM is opened first")
    parser.add_argument("--second-week", type=int, default=10_000, help="--tiers: owners whose DM id is reused")
    args = parser.parse_args()
    if args.tiers:
        main_tiers(args)
        return
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
