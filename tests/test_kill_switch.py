"""The kill switch in chat (SPEC §9): the grammar, who may flip it, what the reply and `status` say,
the notices in the outbox, `kill-below`, and the "Kill switch" button on Slack and Teams."""

from __future__ import annotations

import pytest
from sqlmodel import select

from adapters.slack.render import ActionId, message
from adapters.teams.render import KILL_REASON_INPUT, KILL_SUBMIT, render_card
from bot import commands as c
from bot.core import Core
from bot.errors import UserError
from bot.flags import NEVER_READ
from bot.ports import Actor
from bot.replies import Intent, Tone, render_text
from bot.schedule.messages import eval_alert_reply, flag_killed_reply
from storage.db import session_scope
from storage.models import AuditEvent, Escalation, Pilot
from tests.helpers import row_counts
from tests.slack.payloads import assert_valid_blocks

BOB = Actor("console", "bob", "Bob")
EVE = Actor("console", "eve", "Eve")


def seed(core: Core) -> None:
    for text in (
        "new doc-summaries Document summaries",
        "owner doc-summaries @bob",
        "escalate doc-summaries #ops",
        "threshold doc-summaries 90 min-cases 50 kill-below 75",
    ):
        assert core.router.handle(text, BOB).ok, text


def test_grammar_of_kill_restore_and_kill_below() -> None:
    assert c.parse("kill Doc-Summaries  drafts   leak ids") == c.Kill("doc-summaries", "drafts leak ids")
    assert c.parse("restore doc-summaries") == c.Restore("doc-summaries")
    assert c.parse("threshold x1 90 kill-below 70%").kill_below == 70  # type: ignore[union-attr]
    for bad, why in (
        ("kill doc-summaries", "Say why it goes off"),
        ("restore doc-summaries now", "I did not expect `now`"),
        ("threshold x1 90 kill-below 95", "kill-below must be at or under the bar"),
        ("threshold x1 90 kill-below lots", "is not a number"),
    ):
        with pytest.raises(UserError, match=why) as e:
            c.parse(bad)
        assert "write `" in e.value.sentence  # every refusal shows the correct form
    assert "kill" in c.COMMAND_NAMES and "restore" in c.COMMAND_NAMES


def test_kill_reply_status_and_notice(core: Core) -> None:
    seed(core)
    before = row_counts(core.engine)
    refused = core.router.handle("kill doc-summaries I do not like it", EVE)
    assert not refused.ok and "Only the owner of `doc-summaries` (@bob)" in refused.text
    assert row_counts(core.engine) == before  # a refused kill writes nothing

    reply = core.router.handle("kill doc-summaries summaries invent dates", BOB)
    assert reply.ok and reply.tone is Tone.warning  # nothing has ever read the flag
    text = render_text(reply)
    assert "Turned `doc-summaries` off in production" in text and NEVER_READ in text
    assert "Telling @bob and #ops." in text

    status = render_text(core.router.handle("status doc-summaries", EVE))
    assert "Kill switch: OFF in production since" in status and "by @bob: summaries invent dates" in status
    assert "☐ kill-switch (not wired)" in status

    again = core.router.handle("kill doc-summaries twice", BOB)
    assert not again.ok and "already off" in again.text

    with session_scope(core.engine) as s:
        [notice] = s.exec(select(Escalation)).all()
        assert notice.kind == "flag_killed" and notice.targets == ["console:user:bob", "console:channel:ops"]
        pilot = s.exec(select(Pilot)).one()
        message_text = render_text(flag_killed_reply(pilot.slug, notice.facts or {}))
    assert "`doc-summaries` was turned off in production by @Bob: summaries invent dates." in message_text

    assert core.router.handle("restore doc-summaries", BOB).ok
    assert "Kill switch: on in production" in render_text(core.router.handle("status doc-summaries", EVE))


def test_kill_below_turns_off_once_and_restore_is_a_person(core: Core) -> None:
    seed(core)
    first = render_text(core.router.handle("eval doc-summaries 70 cases 50", BOB))
    assert "The kill switch turned `doc-summaries` off in production" in first
    second = render_text(core.router.handle("eval doc-summaries 60 cases 50", BOB))
    assert "kill switch turned" not in second  # already off: exactly once
    with session_scope(core.engine) as s:
        kills = s.exec(select(AuditEvent).where(AuditEvent.action == "kill")).all()
        assert [k.actor for k in kills] == ["pilotbot"]
        alerts = s.exec(select(Escalation).order_by(Escalation.id)).all()  # type: ignore[arg-type]
        assert (alerts[0].facts or {}).get("killed") is True
    assert core.router.handle("restore doc-summaries", BOB).ok
    assert "kill switch turned" in render_text(core.router.handle("eval doc-summaries 65 cases 50", BOB))


def test_threshold_refuses_a_bar_under_an_existing_kill_below(core: Core) -> None:
    seed(core)
    before = row_counts(core.engine)
    reply = core.router.handle("threshold doc-summaries 70", BOB)
    assert not reply.ok and "kill-below score 75% is above the new bar 70%" in reply.text
    assert row_counts(core.engine) == before


ALERT = {"old": 92.0, "new": 81.5, "bar": 90.0, "version": "v3"}


def test_eval_alert_carries_a_confirmed_kill_button_on_slack() -> None:
    reply = eval_alert_reply("doc-summaries", "eval_below_bar", ALERT)
    [kill] = [a for a in reply.actions if a.intent is Intent.KILL]
    assert kill.command == "kill doc-summaries eval alert: 81.5%"
    blocks = message(reply)["blocks"]
    assert_valid_blocks(blocks)
    [button] = [e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "kill_switch"]
    assert button["value"] == "kill doc-summaries eval alert: 81.5%" and button["style"] == "danger"
    assert button["confirm"]["confirm"]["text"] == "Turn it off" and button["confirm"]["style"] == "danger"
    assert "eval alert: 81.5%" in button["confirm"]["text"]["text"]
    killed = eval_alert_reply("doc-summaries", "eval_below_bar", {**ALERT, "killed": True, "kill_below": 85})
    assert all(a.intent is not Intent.KILL for a in killed.actions)
    assert "turned `doc-summaries` off in production: this run is below kill-below 85%" in render_text(killed)


def test_eval_alert_kill_button_on_teams_is_a_showcard_asking_the_reason() -> None:
    card = render_card(eval_alert_reply("doc-summaries", "eval_below_bar", ALERT))
    [show] = [a for a in card["actions"] if a["type"] == "Action.ShowCard"]
    inner = show["card"]
    [field] = [b for b in inner["body"] if b["type"] == "Input.Text"]
    assert field["id"] == KILL_REASON_INPUT and field["value"] == "eval alert: 81.5%"
    [submit] = inner["actions"]
    assert submit["type"] == "Action.Submit" and submit["data"]["action"] == KILL_SUBMIT
    assert submit["data"]["slug"] == "doc-summaries"
    assert ActionId.kill_switch.value == "kill_switch"
