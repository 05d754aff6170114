"""End to end: signed Slack requests into the running server; the fake Web API records what goes out."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import Session, select

from adapters.server import build_web_app
from adapters.slack.render import ActionId
from bot.clock import FixedClock
from bot.config import Settings
from bot.core import Core, build_core
from bot.ports import Actor
from bot.replies import render_text
from storage.models import EvalRun
from tests.slack.conftest import SIGNING_SECRET
from tests.slack.fake_slack import FakeSlack
from tests.slack.payloads import (
    assert_valid_blocks,
    assert_valid_view,
    block_action,
    event_body,
    interaction_body,
    sign,
    slash_body,
    view_submission,
)

DANA = Actor("slack", "U1", "dana")


@dataclass
class Slack:
    http: TestClient  # type: ignore[type-arg]
    fake: FakeSlack
    core: Core

    async def post(self, body: str, content_type: str, ts: int | None = None, secret: str = SIGNING_SECRET) -> Any:
        headers = {"Content-Type": content_type, **sign(body, secret, ts)}
        return await self.http.post("/slack/events", data=body.encode(), headers=headers)

    async def command(self, text: str, user_id: str = "U1", user_name: str = "dana", **kw: Any) -> Any:
        body = slash_body(text, user_id, user_name, self.fake.response_url())
        return await self.post(body, "application/x-www-form-urlencoded", **kw)

    async def interact(self, payload: dict[str, Any]) -> Any:
        return await self.post(interaction_body(payload), "application/x-www-form-urlencoded")

    async def event(self, event: dict[str, Any]) -> Any:
        return await self.post(event_body(event), "application/json")

    async def answer(self, n: int = 1) -> dict[str, Any]:
        """The n-th post to the response_url (the reply to a command)."""
        return (await self.fake.wait_for("response_url", n))[n - 1].params

    async def ask(self, text: str, **kw: Any) -> dict[str, Any]:
        """Run a slash command; its reply, from the ack itself or (for slow ones) the response_url."""
        before = len(self.fake.of("response_url"))
        resp = await self.command(text, **kw)
        assert resp.status == 200
        body = await resp.text()
        if body:
            return dict(json.loads(body))
        return await self.answer(before + 1)


@pytest.fixture
async def slack(fake: FakeSlack, fake_settings: Settings) -> AsyncIterator[Slack]:
    core = build_core(fake_settings, FixedClock(), migrate=False)
    server = TestServer(build_web_app(core))
    http = TestClient(server)
    await http.start_server()
    try:
        yield Slack(http, fake, core)
    finally:
        await http.close()
        core.engine.dispose()


def seed(core: Core) -> None:
    r = core.router
    for text in (
        "new support-drafts Support reply drafts",
        "owner support-drafts <@U1|dana>",
        "baseline support-drafts handle_time 14 min lower at 2026-09-14",
        "baseline support-drafts revision_rate 38% lower at 2026-09-14",
        "threshold support-drafts 95 min-cases 100",
    ):
        assert r.handle(text, DANA).ok, text


async def test_status_is_answered_in_the_ack_ephemerally(slack: Slack) -> None:
    seed(slack.core)
    resp = await slack.command("status support-drafts")
    assert resp.status == 200
    answer = json.loads(await resp.text())  # a fast command answers inside the ack: one round trip
    assert not slack.fake.of("response_url")
    assert answer["response_type"] == "ephemeral"
    assert "Support reply drafts" in answer["text"]
    assert_valid_blocks(answer["blocks"])
    assert answer["blocks"][0]["type"] == "header"


async def test_share_posts_to_the_channel_and_the_word_is_stripped(slack: Slack) -> None:
    seed(slack.core)
    answer = await slack.ask("status support-drafts share")
    assert answer["response_type"] == "in_channel"
    assert "support-drafts" in answer["text"]


async def test_refused_commands_are_never_shared(slack: Slack) -> None:
    answer = await slack.ask("status nope share")
    assert answer["response_type"] == "ephemeral"
    assert "nope" in answer["text"]


async def test_portfolio_status_is_acked_at_once_and_answered_through_the_response_url(slack: Slack) -> None:
    seed(slack.core)
    resp = await slack.command("status share")
    assert resp.status == 200
    assert await resp.text() == ""  # the ack carries nothing: no portfolio read sits before it
    answer = await slack.answer()
    assert answer["response_type"] == "in_channel"
    assert "0 of 1 pilot ready to ship" in answer["text"]
    assert_valid_blocks(answer["blocks"])


async def test_a_refused_portfolio_read_answers_one_sentence_through_the_response_url(slack: Slack) -> None:
    seed(slack.core)
    resp = await slack.command("status page 9")
    assert resp.status == 200 and await resp.text() == ""
    answer = await slack.answer()
    assert answer["response_type"] == "ephemeral"  # refused: never shared
    assert "There is no page 9; the last is 1" in answer["text"]
    assert "Traceback" not in json.dumps(answer)


async def test_portfolio_status_and_help(slack: Slack) -> None:
    seed(slack.core)
    assert "0 of 1 pilot ready to ship" in (await slack.ask("status"))["text"]
    help_answer = await slack.ask("")
    help_text = help_answer["text"]
    assert "pilotbot commands" in help_text
    # The Slack-only tip closes the help; the notification text is capped, the blocks are whole.
    assert "with `share` to post" in str(help_answer["blocks"])
    unknown = (await slack.ask("frobnicate"))["text"]
    assert "`frobnicate`" in unknown and "status [&lt;slug&gt; |" in unknown


async def test_a_change_runs_as_the_slack_user(slack: Slack) -> None:
    answer = await slack.ask("new legal-intake Legal intake extraction", user_id="U7", user_name="li")
    assert answer["response_type"] == "ephemeral"
    report = slack.core.services.pilot_report("legal-intake")
    assert report.pilot.created_by == "slack:U7"


async def test_bare_mention_is_resolved_with_users_info_once(slack: Slack) -> None:
    slack.fake.add_user("U42", "Bob Builder")
    await slack.ask("new p-one One")
    before = len(slack.fake.of("response_url"))  # `new` too, if it took longer than the ack budget
    resp = await slack.command("owner p-one <@U42>")
    assert (await resp.text()) == ""  # users.info is Web API work: acked first, answered after
    assert "@Bob Builder now owns" in (await slack.answer(before + 1))["text"]
    assert slack.core.services.pilot_report("p-one").pilot.owner_name == "Bob Builder"
    await slack.ask("new p-two Two", user_id="U42")
    answer = await slack.ask("owner p-two <@U42>", user_id="U42")  # the name is cached: answered in the ack
    assert "@Bob Builder now owns" in answer["text"]
    assert len(slack.fake.of("users.info")) == 1


@pytest.mark.parametrize("how", ["forged", "stale"])
async def test_bad_signature_is_401_and_nothing_runs(slack: Slack, how: str) -> None:
    if how == "forged":
        resp = await slack.command("new forged-one Forged", secret="not-the-secret")
    else:
        resp = await slack.command("new forged-one Forged", ts=int(time.time()) - 6 * 60)
    assert resp.status == 401
    await asyncio.sleep(0)  # let any (wrongly) scheduled listener start
    assert slack.core.services.portfolio() == []
    assert not slack.fake.of("response_url") and not slack.fake.of("chat.postMessage")


async def test_command_button_runs_the_command_as_the_clicker(slack: Slack) -> None:
    seed(slack.core)
    await slack.interact(block_action("pilot_cmd:0", "history support-drafts", response_url=slack.fake.response_url()))
    answer = await slack.answer()
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert "History of `support-drafts`" in answer["text"]


async def test_checkin_button_opens_the_modal_and_submission_records_numbers(slack: Slack) -> None:
    seed(slack.core)
    resp = await slack.interact(block_action(ActionId.checkin_open, "support-drafts"))
    assert resp.status == 200
    opened = (await slack.fake.wait_for("views.open"))[0].params
    assert opened["trigger_id"] == "1337.42.trigger"
    view = opened["view"]
    assert_valid_view(view)
    inputs = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
    assert inputs == ["f:handle_time", "f:revision_rate", "f:pb.eval_score", "f:pb.triage"]

    # Invalid numbers come back inline, and nothing is written.
    bad = view_submission(view, {"handle_time": "9,5", "revision_rate": None})
    resp = await slack.interact(bad)
    body = await resp.json()
    assert body["response_action"] == "errors"
    assert "decimal point" in body["errors"]["f:handle_time"]
    assert "revision_rate" in body["errors"]["f:revision_rate"]
    report = slack.core.services.pilot_report("support-drafts")
    assert all(m.latest is None for m in report.metrics)

    values = {"handle_time": "9", "revision_rate": "21", "pb.eval_score": "96.5", "pb.triage": "none"}
    ok = view_submission(view, values)
    resp = await slack.interact(ok)
    assert resp.status == 200 and (await resp.text()) == ""  # closes the modal
    posted = (await slack.fake.wait_for("chat.postMessage"))[0].params
    assert posted["channel"] == "DU1" and posted["thread_ts"] == "1700000000.000001"
    assert "Check-in for `support-drafts` answered" in posted["text"]
    report = slack.core.services.pilot_report("support-drafts")
    assert {m.key: m.latest for m in report.metrics} == {"handle_time": 9.0, "revision_rate": 21.0}


async def test_only_the_owner_may_answer_the_checkin(slack: Slack) -> None:
    seed(slack.core)
    await slack.interact(block_action(ActionId.checkin_open, "support-drafts"))
    view = (await slack.fake.wait_for("views.open"))[0].params["view"]
    resp = await slack.interact(view_submission(view, {"handle_time": "9", "revision_rate": "21"}, user_id="U99"))
    body = await resp.json()
    assert body["response_action"] == "errors"
    assert "owner" in body["errors"]["f:handle_time"]


async def test_checkin_button_for_an_unknown_pilot_says_so(slack: Slack) -> None:
    await slack.interact(block_action(ActionId.checkin_open, "gone-pilot"))
    posted = (await slack.fake.wait_for("chat.postMessage"))[0].params
    assert "gone-pilot" in posted["text"]
    assert not slack.fake.of("views.open")


async def test_app_home_shows_my_pilots_first(slack: Slack) -> None:
    seed(slack.core)
    slack.core.router.handle("new other-pilot Someone else's", Actor("slack", "U5", "eve"))
    resp = await slack.event({"type": "app_home_opened", "user": "U1", "channel": "DU1", "tab": "home"})
    assert resp.status == 200
    published = (await slack.fake.wait_for("views.publish"))[0].params
    assert published["user_id"] == "U1"
    view = published["view"]
    assert_valid_view(view)
    assert view["blocks"][0]["text"]["text"].startswith("Your pilots: 1")
    assert "support-drafts" in view["blocks"][1]["text"]["text"]
    assert "other-pilot" in json.dumps(view)


async def test_app_home_publish_is_retried_after_429(slack: Slack) -> None:
    slack.fake.fail("views.publish", status=429, retry_after=0)
    await slack.event({"type": "app_home_opened", "user": "U1", "channel": "DU1", "tab": "home"})
    calls = await slack.fake.wait_for("views.publish", 2)
    assert len(calls) == 2


async def test_a_slow_command_is_acked_empty_then_answered_via_response_url(
    slack: Slack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adapters.slack.app as slack_app

    seed(slack.core)
    monkeypatch.setattr(slack_app, "ACK_BUDGET", 0.0)  # nothing finishes within the ack budget
    resp = await slack.command("status support-drafts share")
    assert resp.status == 200 and (await resp.text()) == ""
    answer = await slack.answer(1)
    assert answer["response_type"] == "in_channel"
    assert "Support reply drafts" in answer["text"]


async def test_history_uploads_the_chart_with_files_upload_v2(slack: Slack) -> None:
    seed(slack.core)
    for text in ("eval support-drafts 96 cases 120", "eval support-drafts 97 cases 120"):
        assert slack.core.router.handle(text, DANA).ok
    answer = await slack.ask("history support-drafts")
    assert "eval score" in answer["text"]  # the sparkline answer comes first
    [complete] = await slack.fake.wait_for("files.completeUploadExternal")
    [step1] = slack.fake.of("files.getUploadURLExternal")
    [upload] = slack.fake.of("upload")
    assert step1.params["filename"] == "history.png"
    assert upload.params["data"].startswith(b"\x89PNG\r\n\x1a\n")
    assert int(step1.params["length"]) == len(upload.params["data"])
    assert complete.params["channel_id"] == "DU1"  # a private answer: the chart goes to the DM
    assert complete.params["files"][0]["id"] == upload.params["file_id"]


async def test_shared_history_uploads_the_chart_to_the_channel(slack: Slack) -> None:
    seed(slack.core)
    assert slack.core.router.handle("eval support-drafts 96 cases 120", DANA).ok
    await slack.ask("history support-drafts share")
    [complete] = await slack.fake.wait_for("files.completeUploadExternal")
    assert complete.params["channel_id"] == "C1"


async def test_a_failed_chart_upload_is_logged_not_raised(slack: Slack, caplog: pytest.LogCaptureFixture) -> None:
    seed(slack.core)
    slack.fake.fail("files.getUploadURLExternal", status=500, retry_after=None, times=5)
    answer = await slack.ask("history support-drafts")
    assert "History of `support-drafts`" in answer["text"]
    await slack.fake.wait_for("files.getUploadURLExternal", 3)
    for _ in range(50):
        if "chart upload" in caplog.text:
            break
        await asyncio.sleep(0.05)
    assert "chart upload to DU1 failed" in caplog.text


# ---- what Slack escapes, and requests that must not run (issue 12) ----------------------------

ESCAPED_NAME = "R&amp;D &lt;beta&gt;"  # `R&D <beta>` as Slack sends it with should_escape: true


async def test_escaped_text_is_stored_as_typed_and_escaped_once_on_the_way_out(slack: Slack) -> None:
    answer = await slack.ask(f"new rnd-beta {ESCAPED_NAME}")
    assert answer["response_type"] == "ephemeral"
    assert slack.core.services.pilot_report("rnd-beta").pilot.name == "R&D <beta>"
    assert "R&D <beta>" in render_text(slack.core.router.handle("status rnd-beta", DANA))  # console: as typed

    status = json.dumps(await slack.ask("status"))
    assert "R&amp;D &lt;beta&gt;" in status and "&amp;amp;" not in status and "<beta>" not in status

    await slack.event({"type": "app_home_opened", "user": "U1", "channel": "DU1", "tab": "home"})
    published = json.dumps((await slack.fake.wait_for("views.publish"))[0].params["view"])
    assert "R&amp;D &lt;beta&gt;" in published and "&amp;amp;" not in published and "<beta>" not in published


async def test_a_link_in_a_note_is_kept_as_its_url(slack: Slack) -> None:
    seed(slack.core)
    link = "<https://runbooks.example/rollback?team=ops&amp;v=2|rollback runbook>"
    answer = await slack.ask(f"path support-drafts rollback done see {link}")
    assert answer["response_type"] == "ephemeral"
    report = slack.core.services.pilot_report("support-drafts")
    notes = {item.item: item.note for item in report.path}
    assert notes["rollback"] == "see rollback runbook (https://runbooks.example/rollback?team=ops&v=2)"
    await slack.ask("path support-drafts monitoring done <https://grafana.example/d/1>")
    notes = {item.item: item.note for item in slack.core.services.pilot_report("support-drafts").path}
    assert notes["monitoring"] == "https://grafana.example/d/1"


@pytest.mark.parametrize("stamp", ["soon", "1e9", "-5", "１２３"])
async def test_a_timestamp_that_is_not_a_number_is_401(
    slack: Slack, stamp: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = slash_body("new forged-one Forged", response_url=slack.fake.response_url())
    headers = {**sign(body, SIGNING_SECRET), "X-Slack-Request-Timestamp": stamp}
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    resp = await slack.http.post("/slack/events", data=body.encode(), headers=headers)
    assert resp.status == 401
    assert slack.core.services.portfolio() == []
    assert not [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info]


async def test_a_replayed_signed_request_runs_once(slack: Slack) -> None:
    seed(slack.core)
    body = slash_body("eval support-drafts 96 cases 150", response_url=slack.fake.response_url())
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, SIGNING_SECRET)}
    answers = []
    for _ in range(4):
        resp = await slack.http.post("/slack/events", data=body.encode(), headers=headers)
        answers.append((resp.status, await resp.text()))
    assert [status for status, _ in answers] == [200] * 4
    assert "96" in answers[0][1] and [text for _, text in answers[1:]] == ["", "", ""]
    with Session(slack.core.engine) as db:
        assert len(db.exec(select(EvalRun)).all()) == 1
    # A fresh signature of the same command is a new request and runs.
    fresh = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, SIGNING_SECRET, int(time.time()) + 1)}
    assert "96" in await (await slack.http.post("/slack/events", data=body.encode(), headers=fresh)).text()
    with Session(slack.core.engine) as db:
        assert len(db.exec(select(EvalRun)).all()) == 2
