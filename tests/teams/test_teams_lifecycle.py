"""SPEC §8 on Teams, end to end: Activity JSON as Teams sends it into /api/messages, the fake
connector recording what the bot posts.

- The owner's gap card of a pilot meeting the gate carries a "Ship" Action.Submit (valid Adaptive
  Card 1.5); submitting it ships the pilot as the submitter, the escalation channel is told with a
  real mention, and REST says `"stage": "production"`. Anyone else submitting the same data gets
  the one-sentence refusal, and nothing is written.
- In production, a check-in left unanswered past its grace period reopens the owner gap with no
  command at all: the scheduler (two replicas on one database) tells the owner's 1:1 chat and the
  escalation channel once, the channel's card mentioning the owner with an entity.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from adapters import scheduling
from bot.clock import FixedClock
from bot.core import Core
from bot.ports import Actor
from bot.schedule.deliver import Delivery
from bot.tokens import TokenService
from storage.db import make_engine
from tests.helpers import row_counts
from tests.schedule.test_reopened_by_time import START, W46_DUE, W46_MISSED, meet_the_gate, reopened_rows
from tests.teams import payloads as p
from tests.teams.fake_connector import Call, FakeConnector
from tests.teams.test_teams_e2e import notifier_of, pilot
from tests.teams.test_teams_mentions import DANA_ENTITY, assert_valid_card, texts

DANA = Actor("teams", "aad-dana", "Dana Ops")
DM = f"/v3/conversations/{p.PERSONAL_DANA}/activities"
CHANNEL = f"/v3/conversations/{p.CHANNEL}/activities"
REFUSAL = "Only its owner (@Dana Ops) or an admin can ship **p1**."  # `p1` in bold: Teams has no code spans


async def send(server: TestClient, activity: dict[str, Any]) -> None:
    assert (await server.post("/api/messages", json=activity)).status in (200, 201)


def answer_to(connector: FakeConnector, activity: dict[str, Any]) -> Call:
    [call] = [c for c in connector.sent() if c.reply_to_id == activity["id"]]
    return call


def message_back(url: str, data: dict[str, Any], sender: dict[str, str] = p.DANA) -> dict[str, Any]:
    """What Teams sends for an Action.Submit whose data carries `msteams.type: messageBack`: a
    message with the action's `text` (also shown in the chat as `displayText`) and the rest of the
    data as `value`."""
    back = data["msteams"]
    act = p.personal(url, back["text"], sender)
    act["value"] = {k: v for k, v in data.items() if k != "msteams"}
    act["replyToId"] = "reply-1"
    return act


async def _gate_met_pilot(server: TestClient, connector: FakeConnector, core: Core) -> None:
    """Dana owns `p1`, which meets the gate; her 1:1 chat and the General channel are known."""
    clock = core.clock
    assert isinstance(clock, FixedClock)
    clock.set(START)
    await send(server, p.installed_personal(connector.url))
    await send(server, p.channel(connector.url, "<at>pilotbot</at> help", [p.BOT], sender=p.CAROL))
    meet_the_gate(core, "<@aad-dana|Dana Ops>", f"<#{p.CHANNEL}|General>", DANA)
    connector.calls.clear()


def _ship_action(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in card.get("actions", []) if a.get("title") == "Ship"]


async def _settle(server: TestClient) -> None:
    assert server.app is not None
    await server.app[scheduling.DELIVER_NOW_KEY].settle()


async def test_the_owner_ships_from_the_gap_card_and_others_are_refused(
    server: TestClient, connector: FakeConnector, quiet_core: Core
) -> None:
    await _gate_met_pilot(server, connector, quiet_core)
    url = connector.url

    ask = p.personal(url, "status p1")
    await send(server, ask)
    status = answer_to(connector, ask)
    card = status.card
    assert_valid_card(card)
    assert "ready: **ship p1**" in status.card_text
    [ship] = _ship_action(card)
    assert ship["type"] == "Action.Submit"
    assert ship["data"] == {
        "action": "command",
        "command": "ship p1",
        "msteams": {"type": "messageBack", "text": "ship p1", "displayText": "ship p1"},
    }

    # Carol sees no Ship button on the same card; submitting its data anyway is refused, both as
    # Teams sends a messageBack and as a plain submit (value only, no text), and writes nothing.
    look = p.personal(url, "status p1", p.CAROL, "a:1carol-personal")
    await send(server, look)
    assert _ship_action(answer_to(connector, look).card) == []
    before = row_counts(quiet_core.engine)
    plain = p.card_submit(url, {k: v for k, v in ship["data"].items() if k != "msteams"}, p.CAROL)
    for act in (message_back(url, ship["data"], p.CAROL), plain):
        act["conversation"]["id"] = "a:1carol-personal"
        await send(server, act)
        refused = answer_to(connector, act)
        assert texts(refused.card)[0] == REFUSAL, texts(refused.card)
        assert "\n" not in texts(refused.card)[0] and "Traceback" not in refused.card_text
        assert refused.card["body"][0]["color"] == "Attention"
        assert_valid_card(refused.card)
    await _settle(server)
    assert row_counts(quiet_core.engine) == before, "a refused ship wrote to the database"
    assert pilot(quiet_core, "p1").stage == "pilot"

    # Dana submits it: shipped as Dana, the channel told (deliver-now) with a real mention.
    connector.calls.clear()
    act = message_back(url, ship["data"])
    await send(server, act)
    shipped = answer_to(connector, act)
    assert "**p1** is in production." in shipped.card_text, shipped.card_text
    assert "ROI: handle\\_time 14 → 9 min (−36%, better)." in shipped.card_text
    assert pilot(quiet_core, "p1").stage == "production"
    await _settle(server)
    posts = [c for c in connector.accepted() if c.path == CHANNEL]
    assert len(posts) == 1, [c.body.get("summary") for c in connector.sent()]
    announced = posts[0].card
    assert texts(announced)[0].startswith("**p1** shipped to production by <at>Dana Ops</at>: handle\\_time 14")
    assert announced["msteams"]["entities"] == [DANA_ENTITY]
    assert_valid_card(announced)

    token, _ = TokenService(quiet_core.engine, quiet_core.clock).create("dashboard")
    r = await server.get("/api/v1/pilots/p1", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 200 and (await r.json())["stage"] == "production"

    # The same button pressed again: one sentence, no second announcement.
    again = message_back(url, ship["data"])
    await send(server, again)
    assert texts(answer_to(connector, again).card)[0] == "p1 is already in production."
    assert server.app is not None
    await server.app[scheduling.DELIVERY_KEY].tick()
    assert len([c for c in connector.accepted() if c.path == CHANNEL]) == 1


def _reopened_posts(connector: FakeConnector) -> list[Call]:
    return [c for c in connector.accepted() if "gap reopened" in c.body.get("summary", "")]


async def test_time_reopens_a_production_gap_told_once_with_a_mention(
    server: TestClient, connector: FakeConnector, quiet_core: Core
) -> None:
    await _gate_met_pilot(server, connector, quiet_core)
    assert quiet_core.router.handle("ship p1", DANA).ok
    await _settle(server)
    clock = quiet_core.clock
    assert isinstance(clock, FixedClock) and server.app is not None
    other_engine = make_engine(quiet_core.settings.database_url)
    a = server.app[scheduling.DELIVERY_KEY]
    b = Delivery(other_engine, quiet_core.settings, clock, {"teams": notifier_of(server)})
    try:
        clock.set(W46_DUE)
        await a.tick()  # the W46 check-in, to Dana's 1:1 chat; never answered
        assert [c.path for c in connector.accepted() if "Weekly check-in" in c.body.get("summary", "")] == [DM]
        while clock.now() + timedelta(hours=4) < W46_MISSED:  # up to 4 h before the grace ends
            clock.advance(timedelta(hours=4))
            await b.tick()
        clock.set(W46_MISSED - timedelta(seconds=1))
        await a.tick()
        assert _reopened_posts(connector) == []

        clock.set(W46_MISSED)
        await asyncio.gather(a.tick(), b.tick())
        for _ in range(4):
            clock.advance(timedelta(hours=2))
            await a.tick()
            await b.tick()

        posts = _reopened_posts(connector)
        assert sorted(c.path for c in posts) == sorted([DM, CHANNEL]), [c.path for c in posts]
        headline = "p1 is in production and its owner gap reopened: the last check-in was missed"
        for c in posts:
            assert c.body["summary"].startswith(headline), c.body["summary"]
            assert_valid_card(c.card)
        [channel] = [c for c in posts if c.path == CHANNEL]
        assert "Pinging <at>Dana Ops</at>." in texts(channel.card)
        assert channel.card["msteams"]["entities"] == [DANA_ENTITY]
        [dm] = [c for c in posts if c.path == DM]
        assert "<at>" not in dm.card_text and "entities" not in dm.card["msteams"]
        assert len(reopened_rows(quiet_core)) == 1
    finally:
        other_engine.dispose()
