"""A local fake of the Slack Web API (and of response_url) on a free port, for tests and benches.

Records every call, answers like Slack, and can be told to fail the next calls of a method with
429 + Retry-After or 500. With `tiers=Tiers(...)` it also enforces Slack's rate limits the way
Slack does: past a method's calls per rolling minute (or chat.postMessage's one a second per
channel) it answers 429 + Retry-After, and keeps refusing that method until the Retry-After is
over. Its numbers are Slack's documented ones, written here independently of the pacer's.

Runnable on its own for the benchmark (GET /_stats, POST /_reset):
`python -m tests.slack.fake_slack --tiers --scale 20 --delay 0.05`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Failure:
    status: int
    retry_after: int | None
    times: int


@dataclass(frozen=True)
class RateLimit:
    calls: int
    per: float  # seconds


# Slack's documented limits: conversations.open Tier 3 (50+/min), users.info Tier 4 (100+/min),
# chat.postMessage about 1/s per channel and a workspace cap Slack does not publish (600/min here).
SLACK_TIERS: dict[str, RateLimit] = {
    "conversations.open": RateLimit(50, 60.0),
    "users.info": RateLimit(100, 60.0),
    "chat.postMessage": RateLimit(600, 60.0),
}
SLACK_PER_CHANNEL: dict[str, RateLimit] = {"chat.postMessage": RateLimit(1, 1.0)}


class Tiers:
    """Slack's rate limiting as seen from outside: calls are counted per method in a rolling
    window (and per channel where a per-channel limit exists); one past the limit is refused with
    429 and a Retry-After of whole seconds until the window has room, and every call of that
    method before then is refused too. Refused calls do not count. `clock` may run faster than
    real time (the bench), in which case every figure here is in that clock's seconds."""

    def __init__(
        self,
        limits: Mapping[str, RateLimit] | None = None,
        channel_limits: Mapping[str, RateLimit] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = dict(SLACK_TIERS if limits is None else limits)
        self.channel_limits = dict(SLACK_PER_CHANNEL if channel_limits is None else channel_limits)
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.windows: dict[Any, deque[float]] = {}
        self.blocked_until: dict[str, float] = {}
        self.refused: Counter[str] = Counter()  # 429s answered, per method

    def block(self, method: str, seconds: float) -> None:
        now = self.clock()
        self.blocked_until[method] = max(self.blocked_until.get(method, now), now + seconds)

    def _room(self, key: Any, limit: RateLimit, now: float) -> float:
        """0 if `key` may take one more call now, else the seconds until it may."""
        window = self.windows.setdefault(key, deque())
        while window and window[0] <= now - limit.per:
            window.popleft()
        return 0.0 if len(window) < limit.calls else window[0] + limit.per - now

    def check(self, method: str, channel: str | None) -> int | None:
        """None: the call is allowed (and counted). Otherwise the Retry-After to answer with."""
        now = self.clock()
        if now < self.blocked_until.get(method, now):
            self.refused[method] += 1
            return max(1, math.ceil(self.blocked_until[method] - now))
        keys: list[tuple[Any, RateLimit]] = []
        if method in self.limits:
            keys.append((method, self.limits[method]))
        if channel and method in self.channel_limits:
            keys.append(((method, channel), self.channel_limits[method]))
        wait = max((self._room(key, limit, now) for key, limit in keys), default=0.0)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            self.block(method, retry_after)
            self.refused[method] += 1
            return retry_after
        for key, _ in keys:
            self.windows[key].append(now)
        return None


class FakeSlack:
    def __init__(self, tiers: Tiers | None = None) -> None:
        self.tiers = tiers
        self.posted: Counter[str] = Counter()  # accepted chat.postMessage calls, per channel
        self.calls: list[Call] = []
        self.failures: dict[str, Failure] = {}
        self.refusals: dict[str, tuple[str, int]] = {}
        self.closed_channels: dict[str, str] = {}  # channel -> the error chat.postMessage answers there
        self.users: dict[str, dict[str, Any]] = {}
        self._ts = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    # ---- control ---------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/response/{name}"

    def fail(self, method: str, status: int = 429, retry_after: int | None = 0, times: int = 1) -> None:
        self.failures[method] = Failure(status, retry_after, times)

    def refuse(self, method: str, error: str, times: int = 1) -> None:
        """Answer `method` with HTTP 200 `{"ok": false, "error": error}` (e.g. expired_trigger_id)."""
        self.refusals[method] = (error, times)

    def close_channel(self, channel: str, error: str = "not_in_channel") -> None:
        """Every chat.postMessage to `channel` answers `{"ok": false, "error": error}` (a private
        channel the bot is not in) until `open_channel`; conversations.info answers as Slack does then."""
        self.closed_channels[channel] = error

    def open_channel(self, channel: str) -> None:
        self.closed_channels.pop(channel, None)

    def add_user(self, user_id: str, display_name: str, real_name: str = "") -> None:
        self.users[user_id] = {
            "id": user_id,
            "name": display_name.lower(),
            "real_name": real_name or display_name,
            "profile": {"display_name": display_name, "real_name": real_name or display_name},
        }

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Waits until `count` calls of `method` were recorded (work done after an ack)."""

        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.of(method)) >= count)

        await asyncio.wait_for(enough(), timeout)
        return self.of(method)

    # ---- server ----------------------------------------------------------------------------
    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        for ws in self.sockets:
            await ws.close()
        if self._runner:
            await self._runner.cleanup()

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        for key in ("blocks", "view", "attachments", "files"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        await self._record(Call(method, params, {k: v for k, v in request.headers.items() if k != "Authorization"}))
        failure = self.failures.get(method)
        if failure and failure.times > 0:
            failure.times -= 1
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            error = "ratelimited" if failure.status == 429 else "fatal_error"
            if self.tiers is not None and failure.status == 429:  # and Slack keeps refusing until then
                self.tiers.block(method, failure.retry_after or 0)
                self.tiers.refused[method] += 1
            return web.json_response({"ok": False, "error": error}, status=failure.status, headers=headers)
        if self.tiers is not None:
            retry_after = self.tiers.check(method, str(params["channel"]) if params.get("channel") else None)
            if retry_after is not None:
                return web.json_response(
                    {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(retry_after)}
                )
        refusal = self.refusals.get(method)
        if refusal and refusal[1] > 0:
            self.refusals[method] = (refusal[0], refusal[1] - 1)
            return web.json_response({"ok": False, "error": refusal[0]})
        if "Bearer " not in request.headers.get("Authorization", "") and "token" not in params:
            return web.json_response({"ok": False, "error": "not_authed"})
        closed = self.closed_channels.get(str(params.get("channel")))
        if closed and method == "chat.postMessage":
            return web.json_response({"ok": False, "error": closed})
        if closed and method == "conversations.info":
            if closed == "is_archived":
                return web.json_response({"ok": True, "channel": {"id": params.get("channel"), "is_archived": True}})
            # A private channel the bot is not in is invisible to it, as a deleted one is.
            return web.json_response({"ok": False, "error": "channel_not_found"})
        if method == "chat.postMessage":
            self.posted[str(params.get("channel"))] += 1
        return web.json_response(self._answer(method, params))

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        ts = f"1700000000.{next(self._ts):06d}"
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "pilotbot",
                    "team_id": "T0FAKE", "user_id": "U0BOT", "bot_id": "B0BOT"}  # fmt: skip
        if method == "chat.postMessage":
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "message": {"text": params.get("text")}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "chat.update":
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}
        if method in ("views.open", "views.publish", "views.update"):
            view = dict(params.get("view") or {})
            return {"ok": True, "view": {"id": f"V{next(self._ts)}", **view}}
        if method == "conversations.open":
            users = str(params.get("users", ""))
            return {"ok": True, "channel": {"id": "D" + users.split(",")[0]}}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.url.replace("http://", "ws://") + "/socket"}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts):06d}"
            return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = params.get("files") or []
            return {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}
        if method == "users.info":
            user = self.users.get(str(params.get("user")))
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        return {"ok": True}

    async def _upload(self, request: web.Request) -> web.Response:
        """Step two of files_upload_v2: the file's bytes, posted to the URL step one handed out."""
        data = await request.read()
        await self._record(Call("upload", {"file_id": request.match_info["file_id"], "data": data}))
        return web.Response(text=f"OK - {len(data)}")

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self._record(Call("response_url", {"name": request.match_info["name"], **body}))
        return web.Response(text="ok")

    # ---- Socket Mode -------------------------------------------------------------------------
    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0FAKE"}})
        async for msg in ws:
            if msg.type.name == "TEXT":
                await self.socket_acks.put(json.loads(msg.data))
        return ws

    async def send_envelope(self, envelope: dict[str, Any], timeout: float = 10.0) -> None:
        """Pushes a Socket Mode envelope to the (first) connected app, once it has connected."""

        async def connected() -> None:
            while not self.sockets:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(connected(), timeout)
        await self.sockets[0].send_json(envelope)


# ---- standalone (benchmark) -------------------------------------------------------------------
def scaled_clock(scale: float) -> Callable[[], float]:
    """Slack's clock, `scale` times faster than real time: per-minute limits last 60/scale s."""
    return lambda: time.monotonic() * scale


async def _serve(scale: float, delay: float, tiers: bool) -> None:
    fake = FakeSlack(Tiers(clock=scaled_clock(scale)) if tiers else None)

    async def api(request: web.Request) -> web.Response:
        if delay:
            await asyncio.sleep(delay)  # network and Slack's own time, before Slack counts the call
        return await fake._api(request)

    async def stats(_: web.Request) -> web.Response:
        refused = dict(fake.tiers.refused) if fake.tiers else {}
        return web.json_response(
            {
                "calls": dict(Counter(c.method for c in fake.calls)),
                "refused": refused,
                "posted": sum(fake.posted.values()),
                "distinct": len(fake.posted),
                "max_per_channel": max(fake.posted.values(), default=0),
                "channels": sorted(fake.posted),
            }
        )

    async def reset(_: web.Request) -> web.Response:
        fake.calls.clear()
        fake.posted.clear()
        if fake.tiers:
            fake.tiers.reset()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    app.router.add_route("*", "/api/{method}", api)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    print(fake.url, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiers", action="store_true", help="enforce Slack's rate tiers (429 + Retry-After)")
    parser.add_argument("--scale", type=float, default=1.0, help="Slack's clock runs this many times faster")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each Web API call is answered")
    args = parser.parse_args()
    asyncio.run(_serve(args.scale, args.delay, args.tiers))
