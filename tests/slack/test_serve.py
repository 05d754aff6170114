"""`pilotbot serve` wiring: Slack is mounted only with its settings; Socket Mode runs in the server's loop."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from adapters.server import build_web_app
from bot.clock import FixedClock
from bot.config import Settings
from bot.core import build_core
from tests.slack.conftest import slack_settings
from tests.slack.fake_slack import FakeSlack
from tests.slack.payloads import slash_body


async def test_without_slack_settings_there_is_no_slack_route(sqlite_url: str) -> None:
    settings = Settings(_env_file=None, database_url=sqlite_url)  # type: ignore[call-arg]
    core = build_core(settings, FixedClock(), migrate=False)
    app = build_web_app(core)
    assert "/slack/events" not in {r.resource.canonical for r in app.router.routes() if r.resource}
    async with TestClient(TestServer(app)) as http:
        assert (await http.post("/slack/events", data=b"x")).status == 404
        assert (await http.get("/healthz")).status == 200
    core.engine.dispose()


async def test_socket_mode_connects_on_start_and_answers_a_slash_command(fake: FakeSlack, sqlite_url: str) -> None:
    settings = slack_settings(sqlite_url, fake.api_url).model_copy(update={"slack_app_token": SecretStr("xapp-test")})
    core = build_core(settings, FixedClock(), migrate=False)
    app = build_web_app(core)
    assert "/slack/events" not in {r.resource.canonical for r in app.router.routes() if r.resource}
    async with TestClient(TestServer(app)):
        payload = dict(parse_qsl(slash_body("help", response_url=fake.response_url())))
        await fake.send_envelope(
            {"envelope_id": "env-1", "type": "slash_commands", "payload": payload, "accepts_response_payload": True}
        )
        ack = await asyncio.wait_for(fake.socket_acks.get(), 10)
        assert ack["envelope_id"] == "env-1"
        answer = (await fake.wait_for("response_url"))[0].params
        assert "pilotbot commands" in answer["text"]
    assert fake.of("apps.connections.open")
    core.engine.dispose()


async def test_an_empty_app_token_means_http_mode(fake: FakeSlack, sqlite_url: str) -> None:
    settings = slack_settings(sqlite_url, fake.api_url).model_copy(update={"slack_app_token": SecretStr("")})
    core = build_core(settings, FixedClock(), migrate=False)
    app = build_web_app(core)
    assert "/slack/events" in {r.resource.canonical for r in app.router.routes() if r.resource}
    core.engine.dispose()
