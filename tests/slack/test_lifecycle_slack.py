"""SPEC §8 on Slack: the owner's gap card of a pilot meeting the gate carries a Ship button; the
click ships it as the clicker; the App Home lists shipped pilots in their own section."""

from __future__ import annotations

import json

from tests.slack.payloads import assert_valid_view, block_action
from tests.slack.test_app import DANA, Slack, seed
from tests.slack.test_app import slack as slack  # noqa: F401  (the fixture)


def _meet_the_gate(slack: Slack) -> None:
    seed(slack.core)
    for text in (
        "golive support-drafts 2026-10-01",
        "measure support-drafts handle_time 9",
        "measure support-drafts revision_rate 21%",
        "eval support-drafts 96% cases 120",
        "path support-drafts integration done",
        "path support-drafts monitoring done",
        "path support-drafts rollback done",
    ):
        assert slack.core.router.handle(text, DANA).ok, text
    slack.core.services.answer_checkin(DANA, "support-drafts", {"handle_time": "9", "revision_rate": "21"})


def _buttons(answer: dict) -> list[dict]:  # type: ignore[type-arg]
    return [e for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def test_owner_sees_ship_button_and_clicking_it_ships(slack: Slack) -> None:
    _meet_the_gate(slack)
    answer = await slack.ask("status support-drafts")
    assert "ready: `ship support-drafts`" in json.dumps(answer["blocks"], ensure_ascii=False)
    ship = [b for b in _buttons(answer) if b["text"]["text"] == "Ship"]
    assert len(ship) == 1 and ship[0]["value"] == "ship support-drafts"
    other = await slack.ask("status support-drafts", user_id="U9", user_name="eve")
    assert not [b for b in _buttons(other) if b["text"]["text"] == "Ship"]

    await slack.interact(block_action(ship[0]["action_id"], ship[0]["value"], response_url=slack.fake.response_url()))
    answer = await slack.answer()
    assert "`support-drafts` is in production." in answer["text"]
    assert slack.core.services.pilot_report("support-drafts").pilot.stage == "production"
    portfolio = (await slack.ask("status"))["text"]
    assert "1 of 1 pilot ready to ship (100%) · 1 in production" in portfolio

    resp = await slack.event({"type": "app_home_opened", "user": "U1", "channel": "DU1", "tab": "home"})
    assert resp.status == 200
    view = (await slack.fake.wait_for("views.publish"))[0].params["view"]
    assert_valid_view(view)
    texts = [b.get("text", {}).get("text", "") for b in view["blocks"]]
    assert any(t.startswith("In production (1)") for t in texts), texts
