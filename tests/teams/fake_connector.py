"""A local Bot Framework connector: what Teams' serviceUrl answers, recorded for assertions.

It can refuse the next sends (`refuse`: 403/413/429/503, 429 with Retry-After), and enforce Teams'
rate limits like Teams does (`Throttle`: past a per-conversation or global limit it answers 429 with
the Retry-After until the window allows the call). Times come from an injected clock.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Call:
    method: str
    path: str
    conversation_id: str | None
    reply_to_id: str | None
    authorization: str | None
    body: dict[str, Any]
    status: int = 200  # what the connector answered (200: accepted)
    at: float = 0.0  # the connector's clock when the call arrived

    @property
    def card(self) -> dict[str, Any]:
        attachments = self.body.get("attachments") or []
        assert attachments, f"no attachment in {self.body}"
        content: dict[str, Any] = attachments[0]["content"]
        return content

    @property
    def card_text(self) -> str:
        """Every string in the card body, joined: what a reader sees."""
        out: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    if k in ("text", "title", "value", "label") and isinstance(v, str):
                        out.append(v)
                    else:
                        walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(self.card.get("body", []))
        return "\n".join(out)


_CODES = {403: "BotNotInConversationRoster", 413: "MessageSizeTooBig", 429: "Throttled", 503: "ServiceUnavailable"}


@dataclass
class Throttle:
    """Teams' limits as the connector enforces them: `(calls, per seconds)` windows per conversation
    (creates counted apart from sends) and one global window for every call of the bot."""

    per_conversation: tuple[tuple[int, float], ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
    overall: tuple[int, float] | None = (30, 1.0)
    refused: int = 0
    _seen: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, keys: list[str], now: float) -> float:
        """0 when a call under `keys` may go now (and it is counted), else the seconds to wait."""
        windows = [(k, calls, per) for k in keys for calls, per in self.per_conversation]
        if self.overall is not None:
            windows.append(("*", *self.overall))
        wait = 0.0
        for key, calls, per in windows:
            seen = self._seen.setdefault(f"{key}/{per}", deque())
            while seen and seen[0] <= now - per:
                seen.popleft()
            if len(seen) >= calls:
                wait = max(wait, seen[-calls] + per - now)
        if wait > 0:
            self.refused += 1
            return wait
        for key, _, per in windows:
            self._seen[f"{key}/{per}"].append(now)
        return 0.0


@dataclass
class FakeConnector:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # 29: id -> TeamsChannelAccount JSON
    calls: list[Call] = field(default_factory=list)
    fail_with: int | None = None  # answer activities with this status instead of 200
    # (status, Retry-After, which calls: "any", "activity" or "create") for the next sends
    refusals: list[tuple[int, float | None, str]] = field(default_factory=list)
    throttle: Throttle | None = None  # enforce Teams' rate limits (429 + Retry-After past them)
    clock: Callable[[], float] = time.monotonic
    server: TestServer | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/"))

    def sent(self) -> list[Call]:
        return [c for c in self.calls if c.path.endswith("/activities") or "/activities/" in c.path]

    def accepted(self) -> list[Call]:
        """The activities the connector took (what a Teams user sees)."""
        return [c for c in self.sent() if c.status == 200]

    def refuse(self, status: int, times: int = 1, retry_after: float | None = None, on: str = "any") -> None:
        """Answer the next `times` sends (`on`: "any", only "activity" or only "create" conversation)
        with `status` (429/503 with Retry-After when given)."""
        self.refusals.extend([(status, retry_after, on)] * times)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v3/conversations", self.create_conversation)
        app.router.add_post("/v3/conversations/{cid}/activities", self.activity)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self.activity)
        app.router.add_get("/v3/conversations/{cid}/members/{mid}", self.member)
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def _record(self, request: web.Request, body: dict[str, Any], status: int = 200) -> None:
        self.calls.append(
            Call(
                request.method,
                request.path,
                request.match_info.get("cid"),
                request.match_info.get("aid"),
                request.headers.get("Authorization"),
                body,
                status,
                self.clock(),
            )
        )

    def _refusal(self, kind: str, request: web.Request, body: dict[str, Any], keys: list[str]) -> web.Response | None:
        """The refusal this call gets (recorded), or None when it goes through."""
        status, retry_after = 0, None
        mine = next((r for r in self.refusals if r[2] in ("any", kind)), None)
        if mine is not None:
            self.refusals.remove(mine)
            status, retry_after, _ = mine
        elif self.throttle is not None:
            wait = self.throttle.retry_after(keys, self.clock())
            if wait > 0:
                status, retry_after = 429, math.ceil(wait * 1000) / 1000
        if not status:
            return None
        self._record(request, body, status)
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        error = {"error": {"code": _CODES.get(status, "ServiceError")}}
        return web.json_response(error, status=status, headers=headers)

    async def activity(self, request: web.Request) -> web.Response:
        body = await request.json()
        refused = self._refusal("activity", request, body, [f"send:{request.match_info['cid']}"])
        if refused is not None:
            return refused
        if self.fail_with is not None:
            self._record(request, body, self.fail_with)
            return web.json_response({"error": {"code": "BotNotInConversationRoster"}}, status=self.fail_with)
        self._record(request, body)
        return web.json_response({"id": f"reply-{next(self._ids)}"})

    async def create_conversation(self, request: web.Request) -> web.Response:
        body = await request.json()
        members = [m.get("id", "") for m in body.get("members") or []]
        refused = self._refusal("create", request, body, [f"create:{m}" for m in members])
        if refused is not None:
            return refused
        self._record(request, body)
        n = next(self._ids)
        return web.json_response({"id": f"a:new-dm-{n}", "activityId": f"created-{n}", "serviceUrl": self.url})

    async def member(self, request: web.Request) -> web.Response:
        self._record(request, {})
        found = self.members.get(request.match_info["mid"])
        if found is None:
            return web.json_response({"error": {"code": "MemberNotFoundInConversation"}}, status=404)
        return web.json_response(found)
