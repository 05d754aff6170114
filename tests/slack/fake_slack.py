"""A local fake of the Slack Web API (and of response_url) on a free port, for tests and benches.

Records every call, answers like Slack, and can be told to fail the next calls of a method with
429 + Retry-After or 500.
"""

from __future__ import annotations

import asyncio
import itertools
import json
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


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.failures: dict[str, Failure] = {}
        self.refusals: dict[str, tuple[str, int]] = {}
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
            return web.json_response({"ok": False, "error": error}, status=failure.status, headers=headers)
        refusal = self.refusals.get(method)
        if refusal and refusal[1] > 0:
            self.refusals[method] = (refusal[0], refusal[1] - 1)
            return web.json_response({"ok": False, "error": refusal[0]})
        if "Bearer " not in request.headers.get("Authorization", "") and "token" not in params:
            return web.json_response({"ok": False, "error": "not_authed"})
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
