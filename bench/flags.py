"""OFREP flag evaluations on 10,000 pilots against a bare aiohttp handler, same client, same run.

Both servers run in one child process on real TCP ports (the client in this one, so it does not
share the servers' interpreter): the whole pilotbot web app (token check, flag
read, read evidence) and a bare aiohttp app whose handler returns a constant JSON body of the same
size (for the bulk route: the same bytes the real route returned). One aiohttp client keeps 50
requests in flight and alternates rounds between the two so drift hits both alike. Printed per
route: requests/s and flag evaluations/s (bulk: x flags per answer), median and p99 latency, the
ratio to the bare handler, and the SQL writes (INSERT/UPDATE/DELETE) issued while serving, against
the number of requests (the read evidence must add no write per request; it is flushed later, and
the flush's statements are printed too).

    .venv/bin/python bench/flags.py [--pilots 10000] [--rounds 6] [--requests 2000] [--db /tmp/...]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.api.ofrep import FLAGS  # noqa: E402
from adapters.server import build_web_app  # noqa: E402
from bench.portfolio_data import build  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.core import build_core  # noqa: E402
from bot.tokens import TokenService  # noqa: E402

IN_FLIGHT = 50


class Writes:
    """Counts INSERT/UPDATE/DELETE statements on an engine (executemany counts once)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.n = 0
        self.evidence = 0  # of which: flag_read (the periodic flush of the read evidence)
        sa.event.listen(engine, "before_cursor_execute", self._on)

    def _on(self, _conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.n += 1
            self.evidence += "flag_read" in statement


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def bare_app(single: bytes, bulk: bytes) -> web.Application:
    async def one(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=single, content_type="application/json")

    async def many(request: web.Request) -> web.Response:
        await request.read()
        if request.headers.get("If-None-Match"):
            return web.Response(status=304, headers={"ETag": '"bare"'})
        return web.Response(body=bulk, content_type="application/json", headers={"ETag": '"bare"'})

    app = web.Application()
    app.router.add_post("/ofrep/v1/evaluate/flags/{key}", one)
    app.router.add_post("/ofrep/v1/evaluate/flags", many)
    return app


async def run(
    session: aiohttp.ClientSession, url_of: Callable[[int], str], headers: dict[str, str], n: int, expect: int
) -> tuple[float, list[float]]:
    """n requests with IN_FLIGHT workers; (wall seconds, latencies in ms)."""
    lat: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            async with session.post(url_of(i), headers=headers, json={"context": {"targetingKey": "svc"}}) as r:
                await r.read()
                assert r.status == expect, (r.status, await r.text())
            lat.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return time.perf_counter() - t0, lat


def p99(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(round(0.99 * len(xs))) - 1)]


async def compare(
    name: str,
    session: aiohttp.ClientSession,
    real: Callable[[int], str],
    bare: Callable[[int], str],
    headers: dict[str, str],
    rounds: int,
    n: int,
    expect: int,
    flags_per_answer: int,
    counters: Callable[[], Awaitable[tuple[int, int]]],
) -> dict[str, float]:
    res: dict[str, list[float]] = {"real_rps": [], "bare_rps": [], "real_lat": [], "bare_lat": []}
    served = 0
    await run(session, real, headers, IN_FLIGHT * 2, expect)  # warm both
    await run(session, bare, headers, IN_FLIGHT * 2, expect)
    w0, e0 = await counters()
    for r in range(rounds):
        order = [("real", real, expect), ("bare", bare, expect)]
        for label, url_of, status in order if r % 2 == 0 else order[::-1]:
            wall, lat = await run(session, url_of, headers, n, status)
            res[f"{label}_rps"].append(n / wall)
            res[f"{label}_lat"].extend(lat)
            served += n if label == "real" else 0
    w1, e1 = await counters()
    real_rps, bare_rps = statistics.median(res["real_rps"]), statistics.median(res["bare_rps"])
    spread = (min(res["real_rps"]), max(res["real_rps"]))
    out = {
        "real_rps": real_rps,
        "bare_rps": bare_rps,
        "ratio": real_rps / bare_rps,
        "real_p50": statistics.median(res["real_lat"]),
        "real_p99": p99(res["real_lat"]),
        "bare_p99": p99(res["bare_lat"]),
        "writes": w1 - w0,
        "evidence_writes": e1 - e0,
        "served": served,
    }
    print(
        f"{name:<22} pilotbot {real_rps:8.0f} req/s ({real_rps * flags_per_answer:10.0f} evals/s; rounds "
        f"{spread[0]:.0f}-{spread[1]:.0f})  bare {bare_rps:8.0f} req/s  ratio {out['ratio']:.2f}x  "
        f"p50 {out['real_p50']:.1f} ms  p99 {out['real_p99']:.1f} ms (bare p99 {out['bare_p99']:.1f})  "
        f"writes {out['writes']} ({out['evidence_writes']} by the read-evidence flush) over {served} requests"
    )
    return out


async def serve_async(db: str, out: Any) -> None:
    """The server process: pilotbot's web app and the bare app, plus a small control route on the bare
    app so the client can read the write counters, flush the read evidence and stop the servers."""
    # The scheduler stays off: its first tick over 10,000 pilots plans every check-in (~50,000 writes)
    # and would be measured instead of the flag reads.
    settings = Settings(_env_file=None, database_url=f"sqlite:///{db}", pilotbot_scheduler=False)  # type: ignore[call-arg]
    core = build_core(settings, migrate=False)
    secret, _ = TokenService(core.engine).create(f"bench-{int(time.time() * 1000)}")
    headers = {"Authorization": f"Bearer {secret}"}
    app = build_web_app(core)
    flags = app[FLAGS]
    writes = Writes(core.engine)
    real_runner, real = await start(app)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{real}/ofrep/v1/evaluate/flags/pilot-00001", headers=headers, json={}) as r:
            single = await r.read()
        async with session.post(f"{real}/ofrep/v1/evaluate/flags", headers=headers, json={}) as r:
            bulk = await r.read()
            etag = r.headers["ETag"]
    stop = asyncio.Event()

    async def counters(request: web.Request) -> web.Response:
        return web.json_response({"writes": writes.n, "evidence": writes.evidence})

    async def flush(request: web.Request) -> web.Response:
        pending, w0, t0 = len(flags.reads), writes.n, time.perf_counter()
        statements = await asyncio.to_thread(flags.flush_reads)
        ms = (time.perf_counter() - t0) * 1000
        return web.json_response({"pending": pending, "statements": statements, "writes": writes.n - w0, "ms": ms})

    async def halt(request: web.Request) -> web.Response:
        stop.set()
        return web.json_response({})

    bare_web = bare_app(single, bulk)
    bare_web.router.add_get("/_bench/writes", counters)
    bare_web.router.add_post("/_bench/flush", flush)
    bare_web.router.add_post("/_bench/stop", halt)
    bare_runner, bare = await start(bare_web)
    out.put({"real": real, "bare": bare, "secret": secret, "single": len(single), "bulk": len(bulk), "etag": etag})
    await stop.wait()
    await bare_runner.cleanup()
    await real_runner.cleanup()
    core.engine.dispose()


def serve(db: str, out: Any) -> None:
    asyncio.run(serve_async(db, out))


async def main_async(args: argparse.Namespace) -> None:
    if args.rebuild and os.path.exists(args.db):
        os.remove(args.db)
    if not os.path.exists(args.db):
        t0 = time.perf_counter()
        build(f"sqlite:///{args.db}", pilots=args.pilots, weeks=1, metrics=1).dispose()
        print(f"built {args.pilots} pilots in {time.perf_counter() - t0:.1f} s")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=serve, args=(args.db, queue), daemon=True)
    child.start()
    info = queue.get(timeout=120)
    real, bare = info["real"], info["bare"]
    headers = {"Authorization": f"Bearer {info['secret']}"}
    print(
        f"{args.pilots} pilots; single answer {info['single']} B, bulk answer {info['bulk'] / 1e6:.2f} MB; "
        f"{IN_FLIGHT} in flight; servers in one child process, the client in this one"
    )
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=IN_FLIGHT)) as session:

        async def counters() -> tuple[int, int]:
            async with session.get(f"{bare}/_bench/writes") as r:
                doc = await r.json()
            return doc["writes"], doc["evidence"]

        rnd = random.Random(1)
        keys = [f"pilot-{rnd.randint(1, args.pilots):05d}" for _ in range(args.requests)]
        one, many = "/ofrep/v1/evaluate/flags/", "/ofrep/v1/evaluate/flags"
        results = [
            await compare(
                "single (random key)",
                session,
                lambda i: f"{real}{one}{keys[i]}",
                lambda i: f"{bare}{one}{keys[i]}",
                headers,
                args.rounds,
                args.requests,
                200,
                1,
                counters,
            ),
            await compare(
                "bulk (full 200)",
                session,
                lambda i: f"{real}{many}",
                lambda i: f"{bare}{many}",
                headers,
                args.rounds,
                max(100, args.requests // 20),
                200,
                args.pilots,
                counters,
            ),
            await compare(
                "bulk (If-None-Match)",
                session,
                lambda i: f"{real}{many}",
                lambda i: f"{bare}{many}",
                headers | {"If-None-Match": info["etag"]},
                args.rounds,
                args.requests,
                304,
                args.pilots,
                counters,
            ),
        ]
        async with session.post(f"{bare}/_bench/flush") as r:
            flushed = await r.json()
        async with session.post(f"{bare}/_bench/stop") as r:
            await r.read()
    child.join(30)
    served = sum(r["served"] for r in results)
    print(
        f"read evidence: {flushed['pending']} pending (token, pilot) times after {served} requests; "
        f"one flush: {flushed['statements']} statements ({flushed['writes']} writes) in {flushed['ms']:.1f} ms"
    )
    single_r = results[0]
    per_request = sum(r["writes"] for r in results) / served
    print(
        f"targets: single >= 0.5x bare: {'met' if single_r['ratio'] >= 0.5 else 'MISSED'}; "
        f"single p99 < 20 ms: {'met' if single_r['real_p99'] < 20 else 'MISSED'}; "
        f"304 p99 < 20 ms: {'met' if results[2]['real_p99'] < 20 else 'MISSED'}; "
        f"writes per request while serving: {per_request:.4f} "
        f"({sum(r['evidence_writes'] for r in results)} by the periodic read-evidence flush, the rest the token's "
        "once-a-minute last_used_at); the bare handler's own p99 is the floor at this concurrency on this machine"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pilots", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--db", default="/tmp/pilotbot-bench-flags.db")
    ap.add_argument("--rebuild", action="store_true")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
