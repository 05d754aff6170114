"""Slack acks under mixed load: 6 concurrent `/metrics` scrapes, App Home opens and portfolio
`/pilot status` against `pilotbot serve` on 10,000 pilots, with a fake Slack Web API that answers
every call after 2 s. Measures the HTTP ack of a slash command, a button (open the check-in form)
and a modal submit, and the time from the button's click to `views.open` reaching the fake.

    .venv/bin/python bench/mixed_load.py [--pilots 10000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.slack_commands import SECRET, build_portfolio, free_port, pct, start, wait_ready  # noqa: E402
from tests.slack.fake_slack import FakeSlack  # noqa: E402
from tests.slack.payloads import block_action, event_body, interaction_body, sign, slash_body  # noqa: E402

SLOW = 2.0  # seconds every Web API call takes


class SlowSlack(FakeSlack):
    async def _api(self, request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW)
        return await super()._api(request)


async def post(http: aiohttp.ClientSession, url: str, body: str, ctype: str) -> tuple[float, int]:
    headers = {"Content-Type": ctype, **sign(body, SECRET)}
    t0 = time.perf_counter()
    async with http.post(url + "/slack/events", data=body.encode(), headers=headers) as r:
        await r.read()
        return time.perf_counter() - t0, r.status


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="pilotbot-mixed-"))
    db_url = f"sqlite:///{tmp / 'bench.db'}"
    build_portfolio(db_url, args.pilots)
    fake = await SlowSlack().start()
    port = free_port()
    env = {
        "DATABASE_URL": db_url, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url, "HOST": "127.0.0.1", "PORT": str(port), "SLACK_APP_TOKEN": "",
        "PILOTBOT_SCHEDULER": "false",
    }  # fmt: skip
    proc = start([str(Path(sys.executable).with_name("pilotbot")), "serve"], env)
    url = f"http://127.0.0.1:{port}"
    acks: dict[str, list[float]] = {"command": [], "button": [], "modal submit": []}
    to_open: list[float] = []
    errors = 0
    scrapes: list[float] = []
    homes = 0
    stop = float("inf")
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:
            for attempt in range(6):  # serve scores a fresh 10,000-pilot database before it listens
                try:
                    await wait_ready(http, url, proc)
                    break
                except SystemExit:
                    if attempt == 5 or proc.poll() is not None:
                        raise
            stop = time.perf_counter() + args.seconds

            async def scraper() -> None:
                while time.perf_counter() < stop:
                    t0 = time.perf_counter()
                    async with http.get(url + "/metrics") as r:
                        await r.read()
                    scrapes.append(time.perf_counter() - t0)

            async def home() -> None:
                nonlocal homes
                i = 0
                while time.perf_counter() < stop:
                    i += 1
                    ev = {"type": "app_home_opened", "user": f"U{i % 9999 + 1:06d}", "channel": "D1", "tab": "home"}
                    await post(http, url, event_body(ev), "application/json")
                    homes += 1
                    await asyncio.sleep(0.05)

            async def portfolio() -> None:
                while time.perf_counter() < stop:
                    body = slash_body("status", user_id="UP", response_url=fake.response_url("p"))
                    await post(http, url, body, "application/x-www-form-urlencoded")

            async def probe() -> None:
                nonlocal errors
                i = 0
                while time.perf_counter() < stop:
                    i += 1
                    slug = f"pilot-{i % args.pilots + 1:05d}"
                    body = slash_body(f"status {slug}", user_id="UQ", response_url=fake.response_url(f"q{i}"))
                    took, status = await post(http, url, body, "application/x-www-form-urlencoded")
                    acks["command"].append(took)
                    errors += status != 200
                    before = len(fake.of("views.open"))
                    clicked = time.perf_counter()
                    payload = block_action("checkin_open", slug, user_id=f"U{i % args.pilots + 1:06d}")
                    took, status = await post(http, url, interaction_body(payload), "application/x-www-form-urlencoded")
                    acks["button"].append(took)
                    errors += status != 200
                    while len(fake.of("views.open")) <= before and time.perf_counter() - clicked < 10:
                        await asyncio.sleep(0.01)
                    to_open.append(time.perf_counter() - clicked)
                    view = {"type": "modal", "callback_id": "checkin_submit", "private_metadata": json.dumps(
                        {"slug": slug}), "blocks": []}  # fmt: skip
                    sub = {"type": "view_submission", "user": {"id": "UQ"}, "team": {"id": "T0FAKE"},
                           "api_app_id": "A0FAKE", "token": "t", "trigger_id": "1.2.3", "view": {**view, "id": "V1",
                           "state": {"values": {}}}}  # fmt: skip
                    took, status = await post(http, url, interaction_body(sub), "application/x-www-form-urlencoded")
                    acks["modal submit"].append(took)
                    errors += status != 200
                    await asyncio.sleep(0.1)

            await asyncio.gather(*(scraper() for _ in range(6)), home(), portfolio(), probe())
    finally:
        proc.terminate()
        proc.wait(10)
        await fake.stop()
    print(f"{args.pilots} pilots, {args.seconds} s, fake Slack answering in {SLOW} s, {os.cpu_count()} CPUs (shared)")
    for name, xs in acks.items():
        print(f"  ack {name:13s}: n={len(xs):4d} p50 {pct(xs, 0.5) * 1000:7.1f} ms  p99 {pct(xs, 0.99) * 1000:7.1f} ms")
    print(
        f"  click -> views.open : n={len(to_open):4d} p50 {pct(to_open, 0.5):5.2f} s  p99 {pct(to_open, 0.99):5.2f} s"
    )
    print(f"  /metrics scrapes    : n={len(scrapes):4d} p50 {pct(scrapes, 0.5) * 1000:7.1f} ms  p99 "
          f"{pct(scrapes, 0.99) * 1000:7.1f} ms; App Home opens sent {homes}; non-200 acks {errors}")  # fmt: skip


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pilots", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=30)
    asyncio.run(main(ap.parse_args()))
