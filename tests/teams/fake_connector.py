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


@dataclass
class FakeConnector:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # 29: id -> TeamsChannelAccount JSON
    calls: list[Call] = field(default_factory=list)
    fail_with: int | None = None  # answer activities with this status instead of 200
    server: TestServer | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/"))

    def sent(self) -> list[Call]:
        return [c for c in self.calls if c.path.endswith("/activities") or "/activities/" in c.path]

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

    def _record(self, request: web.Request, body: dict[str, Any]) -> None:
        self.calls.append(
            Call(
                request.method,
                request.path,
                request.match_info.get("cid"),
                request.match_info.get("aid"),
                request.headers.get("Authorization"),
                body,
            )
        )

    async def activity(self, request: web.Request) -> web.Response:
        self._record(request, await request.json())
        if self.fail_with is not None:
            return web.json_response({"error": {"code": "BotNotInConversationRoster"}}, status=self.fail_with)
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
