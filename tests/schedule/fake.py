"""The Slack fake of tests/slack with what delivery tests need: latency, random faults, a gate.

`delivered` records a chat.postMessage only when the fake *answers ok* (the platform accepted it).
A held (gated) request whose client died is never recorded: `drop_held()` tells them to give up.
Runnable on its own for the benchmark: `python -m tests.schedule.fake --delay 0.05`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

from aiohttp import web

from tests.slack.fake_slack import Call, FakeSlack


class DeliveryFake(FakeSlack):
    def __init__(self, delay: float = 0.0, fault_rate: float = 0.0, seed: int = 7) -> None:
        super().__init__()
        self.delay = delay
        self.fault_rate = fault_rate
        self.random = random.Random(seed)
        self.delivered: list[str] = []  # channel of every accepted chat.postMessage
        self.texts: list[str] = []  # and its text
        self.faults = 0
        self.gate_after: int | None = None  # hold chat.postMessage calls once this many were accepted
        self.hold_responses_after: int | None = None  # accept (record) further calls but never answer
        self.history: dict[str, list[dict[str, str]]] = {}  # channel -> messages, for conversations.history
        self.history_calls = 0
        self.held = 0
        self._open = asyncio.Event()
        self._open.set()
        self._epoch = 0

    def close_gate_after(self, n: int) -> None:
        self.gate_after = n

    def drop_held(self) -> None:
        """The client of the held requests is gone: let them end without being delivered."""
        self._epoch += 1
        self.gate_after = None
        self.hold_responses_after = None
        self._open.set()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "conversations.history":
            params = await self._params(request)
            self.history_calls += 1
            oldest = float(params.get("oldest") or 0)
            found = [m for m in self.history.get(str(params.get("channel")), []) if float(m["ts"]) >= oldest]
            return web.json_response({"ok": True, "messages": found[::-1], "has_more": False})
        if method != "chat.postMessage":
            if self.delay:
                await asyncio.sleep(self.delay)
            return await super()._api(request)
        params = await self._params(request)
        epoch = self._epoch
        if self.gate_after is not None and len(self.delivered) >= self.gate_after:
            self._open.clear()
            self.held += 1
            await self._open.wait()
        if epoch != self._epoch:
            return web.json_response({"ok": False, "error": "fatal_error"}, status=500)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fault_rate and self.random.random() < self.fault_rate:
            self.faults += 1
            if self.random.random() < 0.5:
                return web.json_response(
                    {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
                )
            return web.json_response({"ok": False, "error": "fatal_error"}, status=500)
        answer: dict[str, Any] = self._answer(method, params)
        answer["ts"] = f"{time.time():.6f}"
        channel, text = str(params.get("channel")), str(params.get("text", ""))
        self.delivered.append(channel)
        self.texts.append(text)
        self.history.setdefault(channel, []).append({"ts": answer["ts"], "text": text, "bot_id": "B0BOT"})
        self.calls.append(Call(method, {"channel": params.get("channel")}))
        if self.hold_responses_after is not None and len(self.delivered) > self.hold_responses_after:
            # Slack accepted it, but the answer never reaches the client (it dies first).
            self.held += 1
            self._open.clear()
            await self._open.wait()
            return web.json_response({"ok": False, "error": "fatal_error"}, status=500)
        return web.json_response(answer)

    def stats(self) -> dict[str, int]:
        from collections import Counter

        counts = Counter(self.delivered)
        return {
            "delivered": len(self.delivered),
            "distinct": len(counts),
            "max_per_channel": max(counts.values(), default=0),
        }


async def _serve(delay: float) -> None:
    """Standalone (benchmark): GET /_stats reports the record, POST /_reset clears it."""
    fake = DeliveryFake(delay=delay)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(fake.stats())

    async def reset(_: web.Request) -> web.Response:
        fake.delivered.clear()
        fake.texts.clear()
        fake.calls.clear()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    app.router.add_route("*", "/api/{method}", fake._api)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.05)
    asyncio.run(_serve(parser.parse_args().delay))
