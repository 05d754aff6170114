"""A local Bot Framework connector: what Teams' serviceUrl answers, recorded for assertions."""

from __future__ import annotations

import itertools
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
class FakeConnector:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # 29: id -> TeamsChannelAccount JSON
    calls: list[Call] = field(default_factory=list)
    fail_with: int | None = None  # answer activities with this status instead of 200
    refusals: list[tuple[int, int | None]] = field(default_factory=list)  # (status, Retry-After) for the next sends
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

    def refuse(self, status: int, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `times` activities with `status` (429/503 with Retry-After when given)."""
        self.refusals.extend([(status, retry_after)] * times)

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
            )
        )

    async def activity(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.refusals:
            status, retry_after = self.refusals.pop(0)
            self._record(request, body, status)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            error = {"error": {"code": _CODES.get(status, "ServiceError")}}
            return web.json_response(error, status=status, headers=headers)
        if self.fail_with is not None:
            self._record(request, body, self.fail_with)
            return web.json_response({"error": {"code": "BotNotInConversationRoster"}}, status=self.fail_with)
        self._record(request, body)
        return web.json_response({"id": f"reply-{next(self._ids)}"})

    async def create_conversation(self, request: web.Request) -> web.Response:
        self._record(request, await request.json())
        n = next(self._ids)
        return web.json_response({"id": f"a:new-dm-{n}", "activityId": f"created-{n}", "serviceUrl": self.url})

    async def member(self, request: web.Request) -> web.Response:
        self._record(request, {})
        found = self.members.get(request.match_info["mid"])
        if found is None:
            return web.json_response({"error": {"code": "MemberNotFoundInConversation"}}, status=404)
        return web.json_response(found)
