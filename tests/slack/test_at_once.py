"""An eval below the bar recorded on each surface reaches the owner's DM and the escalation channel
through the Slack Web API (the fake) right after the commit, once, with no scheduler tick in the
process (PILOTBOT_SCHEDULER=false; `settle()` only waits for sends already started): the Slack
command, the check-in modal's eval score, REST POST /evals and /evals/cases, `pilotbot eval import`
and `pilotbot chat` (their own processes)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters import scheduling
from adapters.server import build_web_app
from adapters.slack.render import ActionId
from bot.clock import FixedClock
from bot.config import Settings
from bot.core import build_core
from bot.ports import Actor
from bot.tokens import TokenService
from tests.slack.fake_slack import FakeSlack
from tests.slack.payloads import block_action, view_submission
from tests.slack.test_app import Slack

DANA = Actor("slack", "U1", "dana")


@pytest.fixture
async def slack(fake: FakeSlack, fake_settings: Settings) -> AsyncIterator[Slack]:
    core = build_core(fake_settings.model_copy(update={"pilotbot_scheduler": False}), FixedClock(), migrate=False)
    for text in (
        "new support-drafts Support reply drafts",
        "owner support-drafts <@U1|dana>",
        "escalate support-drafts <#CESC|ai-pilots>",
        "baseline support-drafts handle_time 14 min lower at 2026-09-14",
        "threshold support-drafts 95 min-cases 100",
        "eval support-drafts 97 cases 120",
    ):
        assert core.router.handle(text, DANA).ok, text
    http = TestClient(TestServer(build_web_app(core)))
    await http.start_server()
    try:
        yield Slack(http, fake, core)
    finally:
        await http.close()
        core.engine.dispose()


def alerts(fake: FakeSlack) -> list[tuple[str, str]]:
    """(channel, text) of every alert chat.postMessage, the owner's DM (DU1) and the channel."""
    return sorted(
        (str(c.params["channel"]), str(c.params["text"]))
        for c in fake.of("chat.postMessage")
        if str(c.params.get("text")).startswith("Page: `support-drafts` eval fell below the bar")
    )


async def settled(slack: Slack) -> list[tuple[str, str]]:
    app = slack.http.app
    assert app is not None
    await app[scheduling.DELIVER_NOW_KEY].settle()
    return alerts(slack.fake)


def cases_jsonl(right: int, total: int) -> str:
    """Labelled cases, `right` of `total` answered correctly (80% and 75% here: below the 95% bar)."""
    rows = [
        json.dumps({"id": f"c{i}", "expected": {"label": "a"}, "actual": {"label": "a" if i < right else "b"}})
        for i in range(total)
    ]
    return "\n".join(rows)


def assert_owner_and_channel_once(sent: list[tuple[str, str]]) -> None:
    assert [ch for ch, _ in sent] == ["CESC", "DU1"], sent
    assert "<@U1>" in dict(sent)["CESC"]  # the channel copy pings the owner


async def test_slack_command(slack: Slack) -> None:
    resp = await slack.command("eval support-drafts 90 cases 120")
    assert resp.status == 200
    assert_owner_and_channel_once(await settled(slack))


async def test_checkin_answer_with_an_eval_score(slack: Slack) -> None:
    assert (await slack.interact(block_action(ActionId.checkin_open, "support-drafts"))).status == 200
    view = (await slack.fake.wait_for("views.open"))[0].params["view"]
    resp = await slack.interact(view_submission(view, {"handle_time": "9", "pb.eval_score": "91", "pb.triage": ""}))
    assert resp.status == 200
    await slack.fake.wait_for("chat.postMessage")  # the answer is written after the ack; any post follows it
    assert_owner_and_channel_once(await settled(slack))


async def test_rest_evals_and_cases(slack: Slack) -> None:
    token, _ = TokenService(slack.core.engine, slack.core.clock).create("ci")
    auth = {"Authorization": f"Bearer {token}"}
    resp = await slack.http.post("/api/v1/pilots/support-drafts/evals", json={"score": 90, "cases": 120}, headers=auth)
    assert resp.status == 201, await resp.text()
    assert_owner_and_channel_once(await settled(slack))
    slack.fake.calls.clear()
    await slack.http.post("/api/v1/pilots/support-drafts/evals", json={"score": 99, "cases": 120}, headers=auth)
    resp = await slack.http.post(
        "/api/v1/pilots/support-drafts/evals/cases",
        data=cases_jsonl(150, 200),
        headers={**auth, "Content-Type": "application/x-ndjson"},
    )
    assert resp.status == 201, await resp.text()
    assert_owner_and_channel_once(await settled(slack))


async def _cli(slack: Slack, tmp_path: Path, *args: str) -> str:
    s = slack.core.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PILOTBOT_", "DATABASE", "MICROSOFT"))}
    assert s.slack_bot_token is not None
    env.update(
        DATABASE_URL=s.database_url,
        SLACK_BOT_TOKEN=s.slack_bot_token.get_secret_value(),
        SLACK_API_URL=str(s.slack_api_url),
        PILOTBOT_ADMINS="console:root",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", *args, env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()  # the fake Web API answers from this loop meanwhile
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_eval_import_in_its_own_process(slack: Slack, tmp_path: Path) -> None:
    results = tmp_path / "run.jsonl"
    results.write_text(cases_jsonl(160, 200), encoding="utf-8")
    out = await _cli(slack, tmp_path, "eval", "import", "support-drafts", str(results), "--as", "root")
    assert "below the bar" in out
    assert_owner_and_channel_once(alerts(slack.fake))  # sent before the command exited


async def test_console_chat_in_its_own_process(slack: Slack, tmp_path: Path) -> None:
    out = await _cli(slack, tmp_path, "chat", "--as", "root", "-c", "eval support-drafts 80 cases 120")
    assert "below the bar" in out
    assert_owner_and_channel_once(alerts(slack.fake))


