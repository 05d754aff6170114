"""Issue 15 end to end: the real OpenFeature clients read the kill switch while people flip it from
Slack and Teams, on one running server (OFREP, `/slack/events`, `/api/messages` on a real TCP port).

`openfeature-sdk` + `openfeature-provider-ofrep` read the flag; `kill` arrives as a SIGNED Slack slash
command (the fake Web API records what goes out); `restore` arrives as a Teams activity (the fake
connector records the reply). The owner and the escalation channel are told through the outbox,
delivered here by one `Delivery.tick()` (or at once after the commit, when that hook is in place).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from openfeature import api as openfeature
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, Reason
from sqlmodel import select
from typer.testing import CliRunner

from adapters.server import build_web_app
from adapters.slack.notifier import scheduler_notifier
from bot.clock import FixedClock
from bot.config import Settings
from bot.core import Core, build_core
from bot.ports import Actor, Notifiers
from bot.replies import render_text
from bot.schedule.deliver import Delivery
from bot.tokens import TokenService
from storage.db import session_scope
from storage.models import AuditEvent, Escalation, Pilot
from tests.api import ofrep_contract as contract
from tests.slack.conftest import slack_settings
from tests.slack.fake_slack import FakeSlack
from tests.slack.payloads import block_action, interaction_body, sign, slash_body
from tests.teams import payloads as teams
from tests.teams.fake_connector import FakeConnector
from tests.test_evalscore_cli import junit

DANA = Actor("slack", "U1", "dana")
SLUG = "support-drafts"


@dataclass
class World:
    core: Core
    http: TestClient  # type: ignore[type-arg]
    slack: FakeSlack
    teams: FakeConnector
    token: str
    clock: FixedClock

    async def slack_command(self, text: str, user_id: str = "U1") -> dict[str, Any]:
        body = slash_body(text, user_id, "dana", self.slack.response_url())
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, "test-signing-secret")}
        resp = await self.http.post("/slack/events", data=body.encode(), headers=headers)
        assert resp.status == 200
        raw = await resp.text()
        return dict(json.loads(raw)) if raw else (await self.slack.wait_for("response_url"))[-1].params

    async def teams_message(self, text: str) -> str:
        resp = await self.http.post("/api/messages", json=teams.personal(self.teams.url, text))
        assert resp.status in (200, 201)
        return self.teams.sent()[-1].card_text

    async def tick(self) -> None:
        notifiers = Notifiers()
        notifiers.register(*scheduler_notifier(self.core.settings))
        await Delivery(self.core.engine, self.core.settings, self.clock, notifiers).tick()

    async def delivered(self, posts: int) -> None:
        """Deliver the outbox and wait until Slack got `posts` messages in all: the server's own
        scheduler may have claimed a row first (its start-up tick), and then it is the one sending."""
        await self.tick()
        await self.slack.wait_for("chat.postMessage", posts)


@pytest.fixture
async def world(sqlite_url: str, clock: FixedClock) -> AsyncIterator[World]:
    fake = await FakeSlack().start()
    connector = FakeConnector()
    await connector.start()
    settings: Settings = slack_settings(sqlite_url, fake.api_url).model_copy(
        update={"teams_allow_anonymous": True, "pilotbot_admins": "slack:UADMIN,teams:aad-dana,console:root"}
    )
    core = build_core(settings, clock, migrate=False)
    for text in (
        f"new {SLUG} Support reply drafts",
        f"owner {SLUG} <@U1|dana>",
        f"escalate {SLUG} <#C9|ai-pilots>",
        f"threshold {SLUG} 90 min-cases 100 kill-below 80",
    ):
        assert core.router.handle(text, DANA).ok, text
    token, _ = TokenService(core.engine, clock).create("prod-support")
    http = TestClient(TestServer(build_web_app(core), host="127.0.0.1", port=0))
    await http.start_server()
    try:
        yield World(core, http, fake, connector, token, clock)
    finally:
        await http.close()
        await connector.close()
        await fake.stop()
        core.engine.dispose()


@pytest.fixture
def domains() -> Iterator[None]:
    yield
    openfeature.shutdown()


def sdk(world: World, token: str) -> OpenFeatureClient:
    domain = f"prod-{uuid.uuid4().hex[:8]}"
    provider = OFREPProvider(
        str(world.http.make_url("/")), headers_factory=lambda: {"Authorization": f"Bearer {token}"}, timeout=10
    )
    openfeature.set_provider(provider, domain=domain)
    return openfeature.get_client(domain)


async def read(client: OpenFeatureClient, key: str = SLUG, default: bool = True) -> FlagEvaluationDetails[bool]:
    return await asyncio.to_thread(client.get_boolean_details, key, default)


def posts_to(fake: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [c.params for c in fake.of("chat.postMessage") if c.params.get("channel") == channel]


async def test_kill_from_slack_and_restore_from_teams_as_production_reads_it(world: World, domains: None) -> None:
    prod = sdk(world, world.token)
    on = await read(prod, default=False)
    assert (on.value, on.reason, on.variant, on.error_code) == (True, Reason.STATIC, "on", None)

    reply = await world.slack_command(f"kill {SLUG} drafts quote wrong refund amounts")
    text = reply["text"]
    assert f"Turned `{SLUG}` off in production" in text, text
    # the read above is in memory, not flushed yet: the reply still sees it (one Flags per process)
    assert "last read 0 s ago by token `prod-support`" in json.dumps(reply)

    off = await read(prod, default=True)
    assert (off.value, off.reason, off.variant, off.error_code) == (False, Reason.DISABLED, "off", None)
    assert off.flag_metadata["reason"] == "drafts quote wrong refund amounts"
    assert off.flag_metadata["changedBy"] == "slack:U1"

    await world.delivered(2)  # the owner (DM) and #ai-pilots are told, naming who pulled it
    channel = posts_to(world.slack, "C9")
    assert len(channel) == 1 and "turned off in production by" in channel[0]["text"]
    assert "drafts quote wrong refund amounts" in channel[0]["text"]
    assert len(world.slack.of("chat.postMessage")) == 2  # owner DM + channel
    await world.tick()
    assert len(world.slack.of("chat.postMessage")) == 2  # exactly once

    card = await world.teams_message(f"restore {SLUG}")
    assert f"Restored **{SLUG}** in production" in card and "reads **true**" in card
    again = await read(prod, default=False)
    assert (again.value, again.reason, again.error_code) == (True, Reason.STATIC, None)

    status = world.core.router.handle(f"status {SLUG}", DANA)
    assert "Kill switch: on in production" in render_text(status)
    assert "kill-switch (wired: read by `prod-support` 0 s ago)" in render_text(status)

    missing = await read(prod, key="support-draft", default=True)
    assert missing.error_code == ErrorCode.FLAG_NOT_FOUND and missing.value is True
    wrong = await read(sdk(world, "pb_not-a-token"), default=True)
    assert wrong.error_code == ErrorCode.GENERAL and wrong.error_message == "unauthorized" and wrong.value is True

    with session_scope(world.core.engine) as s:
        flips = select(AuditEvent).where(AuditEvent.action.in_(["kill", "restore"]))  # type: ignore[attr-defined]
        acts = [(e.actor, e.action) for e in s.exec(flips)]
        assert acts == [("slack:U1", "kill"), ("teams:aad-dana", "restore")]
        kinds = [e.kind for e in s.exec(select(Escalation).order_by(Escalation.id))]  # type: ignore[arg-type]
        assert kinds == ["flag_killed", "flag_restored"]


async def test_bulk_answers_304_until_a_flag_changes(world: World) -> None:
    url, auth = "/ofrep/v1/evaluate/flags", {"Authorization": f"Bearer {world.token}"}
    first = await world.http.post(url, headers=auth, json={})
    contract.check(contract.BULK, first.status, await first.json(), first.headers)
    etag = first.headers["ETag"]
    for _ in range(2):
        same = await world.http.post(url, headers=auth | {"If-None-Match": etag}, json={})
        assert same.status == 304
    await world.slack_command(f"kill {SLUG} leaks ticket ids")
    changed = await world.http.post(url, headers=auth | {"If-None-Match": etag}, json={})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    doc = await changed.json()
    assert [(f["key"], f["value"]) for f in doc["flags"]] == [(SLUG, False)]


async def test_eval_import_below_kill_below_turns_the_flag_off_once(
    world: World, domains: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters import cli

    prod = sdk(world, world.token)
    assert (await read(prod, default=False)).value is True
    monkeypatch.setattr(cli, "_core", lambda: world.core)
    run = tmp_path / "run.xml"
    run.write_text(junit(set(range(40)), {}))  # 110 of 150 pass: 73.3%, under kill-below 80%

    def eval_import() -> str:
        r = CliRunner().invoke(cli.app, ["eval", "import", SLUG, str(run), "--as", "root"])
        assert r.exit_code == 0, r.output
        return r.output

    out = await asyncio.to_thread(eval_import)
    assert "The kill switch turned `support-drafts` off in production" in out
    off = await read(prod, default=True)
    assert (off.value, off.reason) == (False, Reason.DISABLED)
    assert "below kill-below 80%" in str(off.flag_metadata["reason"])
    with session_scope(world.core.engine) as s:
        pilot = s.exec(select(Pilot).where(Pilot.slug == SLUG)).one()
        assert not pilot.flag_on and pilot.flag_changed_by == "pilotbot"
        [alert] = s.exec(select(Escalation)).all()  # the eval alert carries it: no separate notice
        assert alert.kind == "eval_below_bar" and alert.facts and alert.facts["killed"] is True

    await world.delivered(2)
    channel = posts_to(world.slack, "C9")
    assert len(channel) == 1 and "The kill switch turned `support-drafts` off" in json.dumps(channel[0])
    assert "kill_switch" not in json.dumps(channel[0])  # no Kill switch button on an alert that already killed

    # a second run below it: the flag is already off, so nothing flips again and nobody is told twice
    await asyncio.to_thread(eval_import)
    with session_scope(world.core.engine) as s:
        assert len(s.exec(select(AuditEvent).where(AuditEvent.action == "kill")).all()) == 1
        assert [e.kind for e in s.exec(select(Escalation))] == ["eval_below_bar"]


async def test_kill_switch_buttons_on_slack_and_teams_run_kill_as_the_clicker(world: World) -> None:
    """The eval alert's button: on Slack the confirmed click sends the default reason; on Teams the
    ShowCard's submit carries the reason typed into it."""
    assert world.core.router.handle(f"eval {SLUG} 85 cases 100", DANA).ok  # below the 90% bar: an alert
    await world.delivered(2)
    [dm] = [p for p in world.slack.of("chat.postMessage") if p.params.get("channel") != "C9"]
    blocks = json.loads(dm.params["blocks"]) if isinstance(dm.params["blocks"], str) else dm.params["blocks"]
    [button] = [e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "kill_switch"]
    assert "confirm" in button

    stranger = block_action("kill_switch", button["value"], user_id="U7", response_url=world.slack.response_url())
    body = interaction_body(stranger)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, "test-signing-secret")}
    assert (await world.http.post("/slack/events", data=body.encode(), headers=headers)).status == 200
    refused = (await world.slack.wait_for("response_url"))[-1].params
    assert "Only the owner of `support-drafts`" in refused["text"]

    click = block_action("kill_switch", button["value"], user_id="U1", response_url=world.slack.response_url())
    body = interaction_body(click)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, "test-signing-secret")}
    assert (await world.http.post("/slack/events", data=body.encode(), headers=headers)).status == 200
    done = (await world.slack.wait_for("response_url", 2))[-1].params
    assert "Turned `support-drafts` off in production" in done["text"]
    with session_scope(world.core.engine) as s:
        pilot = s.exec(select(Pilot).where(Pilot.slug == SLUG)).one()
        assert (pilot.flag_on, pilot.flag_reason, pilot.flag_changed_by) == (False, "eval alert: 85%", "slack:U1")

    assert "Restored" in await world.teams_message(f"restore {SLUG}")
    submit = {"action": "kill_switch", "slug": SLUG, "default": "eval alert: 85%", "reason": "wrong refunds again"}
    resp = await world.http.post("/api/messages", json=teams.card_submit(world.teams.url, submit))
    assert resp.status in (200, 201)
    assert "off in production" in world.teams.sent()[-1].card_text
    with session_scope(world.core.engine) as s:
        pilot = s.exec(select(Pilot).where(Pilot.slug == SLUG)).one()
        assert (pilot.flag_on, pilot.flag_reason) == (False, "wrong refunds again")
        assert pilot.flag_changed_by == "teams:aad-dana"
