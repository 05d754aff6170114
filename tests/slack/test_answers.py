# ruff: noqa: F811  (every test takes the imported `slack` fixture as its argument)
"""Check-in answers on Slack at the boundary: signed requests in, the fake Web API records what goes out.

The same modal submission twice records once; a different second answer replaces the first and
says so; a `views.open` Slack refuses leaves the user the `answer` command, privately.
"""

from __future__ import annotations

import time

from sqlmodel import Session, col, select

from adapters.slack.render import ActionId
from bot.core import Core
from storage.models import AuditEvent, CheckIn, EvalRun, Measurement
from tests.slack.payloads import block_action, view_submission
from tests.slack.test_app import (
    DANA,
    Slack,
    seed,
    slack,  # noqa: F401  (the fixture the tests below take)
)


def counts(core: Core) -> tuple[int, int]:
    with Session(core.engine) as s:
        return len(list(s.exec(select(Measurement)))), len(list(s.exec(select(EvalRun))))


async def submit(slack: Slack, view: dict[str, object], values: dict[str, str | None], age: int = 0) -> str:
    """A signed view_submission; `age` seconds back gives a distinct signature (not a replay)."""
    from tests.slack.payloads import interaction_body

    resp = await slack.post(
        interaction_body(view_submission(view, values)), "application/x-www-form-urlencoded", ts=int(time.time()) - age
    )
    assert resp.status == 200
    return await resp.text()


async def open_form(slack: Slack) -> dict[str, object]:
    await slack.interact(block_action(ActionId.checkin_open, "support-drafts"))
    return dict((await slack.fake.wait_for("views.open"))[0].params["view"])


async def test_the_same_modal_submission_twice_records_once(slack: Slack) -> None:
    seed(slack.core)
    view = await open_form(slack)
    values: dict[str, str | None] = {"handle_time": "9", "revision_rate": "21", "pb.eval_score": "96.5"}
    assert await submit(slack, view, values) == ""
    first = (await slack.fake.wait_for("chat.postMessage"))[0].params["text"]
    assert "recorded 2 metric value(s)" in first
    assert counts(slack.core) == (2, 1)
    assert await submit(slack, view, values, age=2) == ""  # e.g. the user's retry after a late ack
    second = (await slack.fake.wait_for("chat.postMessage", 2))[1].params["text"]
    assert "Already recorded" in second
    assert counts(slack.core) == (2, 1)  # no second measurements, no second eval run


async def test_a_different_second_answer_replaces_the_first_and_says_so(slack: Slack) -> None:
    seed(slack.core)
    view = await open_form(slack)
    await submit(slack, view, {"handle_time": "9", "revision_rate": "21", "pb.eval_score": "96.5"})
    await slack.fake.wait_for("chat.postMessage")
    await submit(slack, view, {"handle_time": "8", "revision_rate": "20"}, age=2)
    text = (await slack.fake.wait_for("chat.postMessage", 2))[1].params["text"]
    assert "replaces the answer you gave" in text
    with Session(slack.core.engine) as s:
        live = s.exec(select(Measurement).where(col(Measurement.voided_at).is_(None)))
        assert sorted(m.value for m in live) == [8.0, 20.0]
        voided = list(s.exec(select(Measurement).where(col(Measurement.voided_at).is_not(None))))
        assert sorted(m.value for m in voided) == [9.0, 21.0]  # void, never deleted (SPEC §8)
        [run] = s.exec(select(EvalRun))  # the first answer's eval run: kept, marked void
        assert run.voided_at is not None and run.void_reason == voided[0].void_reason
        checkins = list(s.exec(select(CheckIn)))
        assert len(checkins) == 1 and checkins[0].report and checkins[0].report["values"]["handle_time"] == 8.0
        audit = list(s.exec(select(AuditEvent).where(col(AuditEvent.action) == "checkin_answer")))
        assert audit[-1].before and audit[-1].before["handle_time"] == 9.0  # the old values are kept


async def test_views_open_refused_tells_the_user_the_answer_command(slack: Slack) -> None:
    seed(slack.core)
    slack.fake.refuse("views.open", "expired_trigger_id")
    resp = await slack.interact(block_action(ActionId.checkin_open, "support-drafts"))
    assert resp.status == 200
    said = (await slack.fake.wait_for("chat.postEphemeral"))[0].params
    assert said["user"] == "U1" and said["channel"] == "DU1"
    assert "could not open the check-in form" in said["text"]
    assert "answer support-drafts handle_time &lt;value&gt; revision_rate &lt;value&gt;" in said["text"]
    # ...and the command it names works on Slack too.
    reply = await slack.ask("answer support-drafts handle_time 9 revision_rate 21 eval 97% note quiet week")
    assert "recorded 2 metric value(s)" in reply["text"]
    assert counts(slack.core) == (2, 1)


async def test_metrics_called_eval_score_and_triage_are_answered_in_the_modal(slack: Slack) -> None:
    seed(slack.core)
    for text in ("baseline support-drafts eval_score 50", "baseline support-drafts triage 3"):
        assert slack.core.router.handle(text, DANA).ok
    view = await open_form(slack)
    ids = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]  # type: ignore[index, union-attr]
    assert len(ids) == len(set(ids)) == 6
    values: dict[str, str | None] = {
        "handle_time": "9", "revision_rate": "21", "eval_score": "55", "triage": "2",
        "pb.eval_score": "96", "pb.triage": "all quiet",
    }  # fmt: skip
    assert await submit(slack, view, values) == ""
    await slack.fake.wait_for("chat.postMessage")  # the confirmation: the answer is written after the ack
    report = slack.core.services.pilot_report("support-drafts")
    assert {m.key: m.latest for m in report.metrics}["eval_score"] == 55.0
    assert {m.key: m.latest for m in report.metrics}["triage"] == 2.0
    with Session(slack.core.engine) as s:
        assert [r.score for r in s.exec(select(EvalRun))] == [96.0]


async def test_escalate_to_a_private_channel_the_bot_is_not_in_says_invite_it(slack: Slack) -> None:
    seed(slack.core)
    slack.fake.refuse("conversations.info", "channel_not_found")
    reply = await slack.ask("escalate support-drafts <#G123|secret-ops>")
    assert "Escalations for `support-drafts` go to #secret-ops" in reply["text"]
    said = await slack.answer(1)  # after the ack: the check is no part of the 3 seconds
    assert said["response_type"] == "ephemeral"
    assert said["text"] == "Invite @pilotbot to #secret-ops so escalations can reach it."
    assert slack.fake.of("conversations.info")[0].params["channel"] == "G123"


async def test_escalate_to_a_public_channel_needs_no_invite(slack: Slack) -> None:
    seed(slack.core)
    reply = await slack.ask("escalate support-drafts <#C123|ai-pilots>")
    assert reply["text"].startswith("Escalations for `support-drafts` go to #ai-pilots")
    await slack.fake.wait_for("conversations.info")
    assert not slack.fake.of("response_url")


async def test_modal_submit_and_form_open_do_not_queue_behind_portfolio_builds(slack: Slack) -> None:
    """Every bulk worker and every default-pool thread is held by a stuck portfolio read or other
    work; the check-in button still opens the modal and the submission is still acked (fast lane)."""
    import asyncio
    import threading

    seed(slack.core)
    release = threading.Event()
    real_pages = slack.core.services.home_pages

    def stuck_pages(owner_ref: str) -> object:
        release.wait(30)
        return real_pages(owner_ref)

    slack.core.services.home_pages = stuck_pages  # type: ignore[method-assign]
    held = [asyncio.create_task(asyncio.to_thread(release.wait, 30)) for _ in range(40)]  # the default pool
    try:
        for i in range(6):  # six people open the App Home at once
            home = {"type": "app_home_opened", "user": f"U{i + 1}", "channel": f"DU{i + 1}", "tab": "home"}
            assert (await slack.event(home)).status == 200
        view = await asyncio.wait_for(open_form(slack), 10)  # a hang here is the failure, not a timing
        values: dict[str, str | None] = {"handle_time": "9", "revision_rate": "21"}
        assert await asyncio.wait_for(submit(slack, view, values), 10) == ""
        await slack.fake.wait_for("chat.postMessage")  # the confirmation, after the write that follows the ack
        assert counts(slack.core) == (2, 0)
        assert not slack.fake.of("views.publish")  # the App Home builds are all still stuck
    finally:
        release.set()
        await asyncio.gather(*held)
    await slack.fake.wait_for("views.publish", 6)


async def test_the_modal_closes_before_the_answer_is_written_and_the_confirmation_follows(slack: Slack) -> None:
    """The ack carries only the checks; the write (answer, eval run, rescoring) comes after it, so a
    busy process still acks in time. Here the write is held until the ack has come back."""
    import asyncio
    import threading

    seed(slack.core)
    view = await open_form(slack)
    release = threading.Event()
    real_answer = slack.core.services.answer_checkin

    def held_answer(*args: object, **kwargs: object) -> object:
        release.wait(30)
        return real_answer(*args, **kwargs)  # type: ignore[arg-type]

    slack.core.services.answer_checkin = held_answer  # type: ignore[method-assign]
    try:
        values: dict[str, str | None] = {"handle_time": "9", "revision_rate": "21", "pb.eval_score": "96.5"}
        assert await asyncio.wait_for(submit(slack, view, values), 10) == ""  # acked: the modal closes
        assert counts(slack.core) == (0, 0) and not slack.fake.of("chat.postMessage")
    finally:
        release.set()
    posted = (await slack.fake.wait_for("chat.postMessage"))[0].params
    assert "recorded 2 metric value(s)" in posted["text"] and posted["channel"] == "DU1"
    assert counts(slack.core) == (2, 1)


async def test_an_answer_refused_after_the_ack_says_it_was_not_recorded(slack: Slack) -> None:
    """Ownership moves between the checks and the write: the write refuses, nothing is written, and
    the user is told where the confirmation would have been, with how to send it again."""
    seed(slack.core)
    view = await open_form(slack)
    services = slack.core.services
    real_vet = services.vet_checkin_answer

    def vet_then_handover(*args: object, **kwargs: object) -> None:
        real_vet(*args, **kwargs)  # type: ignore[arg-type]
        assert slack.core.router.handle("owner support-drafts <@U2|erin>", DANA).ok

    services.vet_checkin_answer = vet_then_handover  # type: ignore[method-assign]
    assert await submit(slack, view, {"handle_time": "9", "revision_rate": "21"}) == ""
    posted = (await slack.fake.wait_for("chat.postMessage"))[0].params
    assert posted["text"].startswith("Your check-in for `support-drafts` was not recorded: Only the owner"), posted
    assert "Report this week's numbers" in posted["text"]
    assert counts(slack.core) == (0, 0)
    with Session(slack.core.engine) as s:
        assert not list(s.exec(select(AuditEvent).where(col(AuditEvent.action) == "checkin_answer")))


async def test_a_form_opened_from_a_channel_the_bot_cannot_post_to_is_confirmed_in_a_dm(slack: Slack) -> None:
    """The *Report this week's numbers* button also sits on `/pilot status` replies, which Slack shows
    in channels the bot is not in. The answer is recorded; its confirmation cannot go to that thread,
    so it comes by DM instead of nowhere."""
    seed(slack.core)
    slack.fake.close_channel("CNOBOT")
    await slack.interact(block_action(ActionId.checkin_open, "support-drafts", channel="CNOBOT"))
    view = dict((await slack.fake.wait_for("views.open"))[0].params["view"])
    assert await submit(slack, view, {"handle_time": "9", "revision_rate": "21"}) == ""
    posts = await slack.fake.wait_for("chat.postMessage", 2)
    refused, dm = posts[0].params, posts[1].params
    assert refused["channel"] == "CNOBOT"
    assert dm["channel"] == "DU1" and "thread_ts" not in dm
    assert "recorded 2 metric value(s)" in dm["text"]
    assert counts(slack.core) == (2, 0)


async def test_a_throttled_confirmation_is_sent_once_after_its_retry_after(slack: Slack) -> None:
    import asyncio

    seed(slack.core)
    view = await open_form(slack)
    slack.fake.fail("chat.postMessage", 429, retry_after=1)
    assert await submit(slack, view, {"handle_time": "9", "revision_rate": "21"}) == ""
    throttled, sent = await slack.fake.wait_for("chat.postMessage", 2)  # the 429, then its retry
    assert throttled.params == sent.params and slack.fake.failures["chat.postMessage"].times == 0
    assert "recorded 2 metric value(s)" in sent.params["text"]
    assert sent.params["channel"] == "DU1" and sent.params["thread_ts"] == "1700000000.000001"
    await asyncio.sleep(0.5)
    assert len(slack.fake.of("chat.postMessage")) == 2  # delivered once: no DM copy as well
    assert counts(slack.core) == (2, 0)
