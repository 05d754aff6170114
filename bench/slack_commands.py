"""Signed `/pilot status <slug>` requests over loopback: `pilotbot serve` (10,000 pilots) vs a bare Bolt app.

Both servers run as subprocesses; this process is the load client and also hosts the fake Slack Web
API and the response_url receiver. Rounds alternate pilotbot / bare, same client, same run.

For pilotbot two latencies are measured: the HTTP ack (what Slack's 3-second rule is about) and
end to end, until the answer reaches the response_url. The bare app answers in the ack itself, so
its ack is its end to end. Throughput compares completed answers per second.

    .venv/bin/python bench/slack_commands.py [--pilots 10000] [--requests 2000] [--concurrency 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.slack.fake_slack import FakeSlack  # noqa: E402
from tests.slack.payloads import sign, slash_body  # noqa: E402

SECRET = "bench-signing-secret"


# ---- data -----------------------------------------------------------------------------------


def build_portfolio(url: str, pilots: int) -> None:
    """The same portfolio as bench/status_scale.py: a year of history for every pilot."""
    from bench.portfolio_data import build

    build(url, pilots=pilots).dispose()


def portfolio_url(path: Path, pilots: int) -> str:
    """A SQLite portfolio at `path`, built unless it is already there (`--db`: the build takes
    minutes at 10,000 pilots; the benches only read it, apart from serve's scorecard backfill)."""
    url = f"sqlite:///{path}"
    if not path.exists():
        t0 = time.perf_counter()
        build_portfolio(url, pilots)
        print(f"portfolio: {pilots} pilots built in {time.perf_counter() - t0:.1f} s ({url})")
    return url


# ---- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_bare(port: int, api_url: str) -> None:
    """A bare Bolt AsyncApp on the same aiohttp plumbing; its handler only acks a constant text."""
    import logging

    from aiohttp import web
    from slack_bolt.async_app import AsyncAck, AsyncApp

    from adapters.slack.app import events_handler
    from adapters.slack.client import make_slack_client
    from bot.config import Settings

    settings = Settings(_env_file=None, slack_bot_token="xoxb-bench", slack_api_url=api_url)  # type: ignore[call-arg]
    bolt = AsyncApp(client=make_slack_client(settings), signing_secret=SECRET)

    @bolt.command("/pilot")
    async def pilot(ack: AsyncAck) -> None:
        await ack("ok")

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/slack/events", events_handler(bolt))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    web.run_app(app, host="127.0.0.1", port=port, print=None)


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_ready(http: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            async with http.get(url + "/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not start")


# ---- load ------------------------------------------------------------------------------------


@dataclass
class Round:
    name: str
    ack: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    errors: int = 0
    wall: float = 0.0


class Answers:
    """response_url posts, matched to requests by their unique path."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.waiters: dict[str, asyncio.Future[tuple[float, dict[str, Any]]]] = {}
        fake_record = fake._record

        async def record(call: Any) -> None:
            if call.method == "response_url":
                fut = self.waiters.pop(call.params["name"], None)
                if fut is not None and not fut.done():
                    fut.set_result((time.perf_counter(), call.params))
                return  # not kept: the bench sends tens of thousands
            await fake_record(call)

        fake._record = record  # type: ignore[method-assign]

    def expect(self, name: str) -> asyncio.Future[tuple[float, dict[str, Any]]]:
        fut: asyncio.Future[tuple[float, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.waiters[name] = fut
        return fut


async def run_round(
    http: aiohttp.ClientSession, url: str, name: str, answers: Answers | None, fake: FakeSlack, n: int, conc: int,
    pilots: int, seq: list[int],
) -> Round:  # fmt: skip
    result = Round(name)
    queue = list(range(n))
    rnd = random.Random(len(seq))

    async def one() -> None:
        while queue:
            queue.pop()
            seq[0] += 1
            rid = f"q{seq[0]}"
            slug = f"pilot-{rnd.randint(1, pilots):05d}"
            body = slash_body(f"status {slug}", user_id="UBENCH", response_url=fake.response_url(rid))
            headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, SECRET)}
            fut = answers.expect(rid) if answers else None
            t0 = time.perf_counter()
            try:
                async with http.post(url + "/slack/events", data=body.encode(), headers=headers) as r:
                    text = await r.text()
                    t1 = time.perf_counter()
                    ok = r.status == 200
            except aiohttp.ClientError:
                ok, text, t1 = False, "", time.perf_counter()
            if not ok:
                result.errors += 1
                if answers:
                    answers.waiters.pop(rid, None)
                continue
            result.ack.append(t1 - t0)
            if fut is None:
                result.e2e.append(t1 - t0) if text == "ok" else None
                result.errors += 0 if text == "ok" else 1
                continue
            if text:  # pilotbot answered inside the ack: that is the end-to-end answer
                assert answers is not None
                answers.waiters.pop(rid, None)
                if slug in json.loads(text).get("text", ""):
                    result.e2e.append(t1 - t0)
                else:
                    result.errors += 1
                continue
            try:
                t2, params = await asyncio.wait_for(fut, 10)
            except TimeoutError:
                result.errors += 1
                continue
            if slug not in params.get("text", ""):
                result.errors += 1
                continue
            result.e2e.append(t2 - t0)

    t_start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(conc)))
    result.wall = time.perf_counter() - t_start
    return result


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def summary(rounds: list[Round]) -> dict[str, float]:
    ack = [x for r in rounds for x in r.ack]
    e2e = [x for r in rounds for x in r.e2e]
    rps = [len(r.e2e) / r.wall for r in rounds]
    return {
        "rps": statistics.median(rps),
        "rps_min": min(rps),
        "rps_max": max(rps),
        "ack_p50": pct(ack, 0.5) * 1000,
        "ack_p99": pct(ack, 0.99) * 1000,
        "e2e_p50": pct(e2e, 0.5) * 1000,
        "e2e_p99": pct(e2e, 0.99) * 1000,
        "errors": sum(r.errors for r in rounds),
        "n": len(e2e),
    }


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="pilotbot-bench-"))
    db_url = portfolio_url(args.db or tmp / "bench.db", args.pilots)

    fake = await FakeSlack().start()
    answers = Answers(fake)
    pb_port, bare_port = free_port(), free_port()
    env = {
        "DATABASE_URL": db_url, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url, "HOST": "127.0.0.1", "PORT": str(pb_port), "SLACK_APP_TOKEN": "",
        # The command path alone: the portfolio's 10,000 owners are due a check-in this week, and
        # that fan-out has its own bench (bench/fanout.py).
        "PILOTBOT_SCHEDULER": "false",
    }  # fmt: skip
    exe = str(Path(sys.executable).with_name("pilotbot"))
    procs = [
        start([exe, "serve"], env),
        start([sys.executable, __file__, "--serve-bare", str(bare_port), fake.api_url], {}),
    ]
    targets = {"pilotbot": f"http://127.0.0.1:{pb_port}", "bare bolt": f"http://127.0.0.1:{bare_port}"}
    rounds: dict[str, list[Round]] = {k: [] for k in targets}
    seq = [0]
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
        async with aiohttp.ClientSession(connector=connector) as http:
            for name, proc in zip(targets, procs, strict=True):
                for attempt in range(6):  # serve scores a fresh 10,000-pilot database before it listens
                    try:
                        await wait_ready(http, targets[name], proc)
                        break
                    except SystemExit:
                        if attempt == 5 or proc.poll() is not None:
                            raise
            for name, url in targets.items():  # warm-up: auth.test, caches, connections
                await run_round(http, url, name, answers if name == "pilotbot" else None, fake, 200,
                                args.concurrency, args.pilots, seq)  # fmt: skip
            for i in range(args.rounds):
                order = list(targets.items()) if i % 2 == 0 else list(reversed(targets.items()))
                for name, url in order:
                    r = await run_round(http, url, name, answers if name == "pilotbot" else None, fake,
                                        args.requests, args.concurrency, args.pilots, seq)  # fmt: skip
                    rounds[name].append(r)
                    print(f"  round {i + 1} {name:9s}: {len(r.e2e) / r.wall:7.1f} req/s, errors {r.errors}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        await fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # `--db` lives elsewhere

    pb, bare = summary(rounds["pilotbot"]), summary(rounds["bare bolt"])
    print(
        f"\n{args.requests} requests x {args.rounds} rounds each, {args.concurrency} in flight, "
        f"{args.pilots} pilots, SQLite, {os.cpu_count()} CPUs"
    )
    print(
        f"{'':10s} {'req/s (median, min-max)':>26s} {'ack p50/p99 ms':>16s} {'answer p50/p99 ms':>18s} {'errors':>7s}"
    )
    for name, s in (("pilotbot", pb), ("bare bolt", bare)):
        print(
            f"{name:10s} {s['rps']:>9.1f} ({s['rps_min']:.1f}-{s['rps_max']:.1f}){'':>3s}"
            f" {s['ack_p50']:>7.1f}/{s['ack_p99']:<7.1f} {s['e2e_p50']:>8.1f}/{s['e2e_p99']:<8.1f} {s['errors']:>6d}"
        )
    ratio = pb["rps"] / bare["rps"] if bare["rps"] else float("nan")
    verdict = ratio >= 0.5 and pb["errors"] == 0 and pb["e2e_p99"] < 1000
    print(f"ratio pilotbot/bare throughput: {ratio:.2f} (target >= 0.50, zero errors, p99 < 1 s: "
          f"{'met' if verdict else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]), sys.argv[3])
        raise SystemExit(0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pilots", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", type=Path, help="reuse (or build and keep) the portfolio in this SQLite file")
    asyncio.run(main(parser.parse_args()))
