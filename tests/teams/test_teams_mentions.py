"""Real mentions on Teams: the missed-review channel post carries `<at>Name</at>` in the card's
text and the matching mention entity in the card's `msteams.entities`; the card stays valid
Adaptive Card 1.5 (schema in /work/shared/schemas)."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
from aiohttp.test_utils import TestClient

from adapters import scheduling
from adapters.teams.render import render_card
from bot.clock import FixedClock
from bot.core import Core
from bot.ports import Actor
from bot.replies import Reply, mention
from tests.teams import payloads as p
from tests.teams.fake_connector import FakeConnector

DANA = Actor("teams", "aad-dana", "Dana Ops")
ADMIN = Actor("console", "root")
SCHEMA = Path("/work/shared/schemas/adaptive-card.1.5.0.json")
DANA_ENTITY = {"type": "mention", "text": "<at>Dana Ops</at>", "mentioned": {"id": "aad-dana", "name": "Dana Ops"}}


def assert_valid_card(card: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    plain = copy.deepcopy(card)
    plain.pop("msteams", None)  # Teams' host extension (width, entities), not part of the schema
    errors = [e.message[:200] for e in jsonschema.validators.validator_for(schema)(schema).iter_errors(plain)]
    assert not errors, errors


def texts(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card["body"] if b.get("type") == "TextBlock"]


async def test_the_missed_review_post_mentions_the_owner_with_an_entity(
    server: TestClient, connector: FakeConnector, quiet_core: Core
) -> None:
    for act in (p.installed_personal(connector.url), p.channel(connector.url, "<at>pilotbot</at> help", [p.BOT])):
        assert (await server.post("/api/messages", json=act)).status in (200, 201)
    for text in ("new p1 P one", "owner p1 <@aad-dana|Dana Ops>", f"escalate p1 <#{p.CHANNEL}|General>"):
        assert quiet_core.router.handle(text, ADMIN if text.startswith("escalate") else DANA).ok, text
    connector.calls.clear()
    clock = quiet_core.clock
    assert isinstance(clock, FixedClock)
    assert server.app is not None
    delivery = server.app[scheduling.DELIVERY_KEY]
    clock.advance(timedelta(days=5))
    assert (await delivery.tick()).sent == 1  # the check-in
    clock.advance(timedelta(hours=49))
    await delivery.tick()
    [post] = [c for c in connector.accepted() if c.path == f"/v3/conversations/{p.CHANNEL}/activities"]
    card = post.card
    assert texts(card)[0].startswith("<at>Dana Ops</at> missed the weekly review of p1")
    assert card["msteams"]["entities"] == [DANA_ENTITY]
    assert post.body["summary"].startswith("@Dana Ops missed the weekly review of p1")  # notifications: plain
    assert "\ue000" not in json.dumps(post.body)
    assert_valid_card(card)


def test_a_person_on_another_platform_is_plain_and_has_no_entity() -> None:
    reply = Reply(text=f"{mention('slack', 'UB', 'Berta')} and {mention('teams', 'aad-dana', 'Dana_Ops')}")
    card = render_card(reply)
    assert texts(card)[0] == "@Berta and <at>Dana_Ops</at>"  # the entity text is the name exactly as shown
    assert card["msteams"]["entities"] == [
        {"type": "mention", "text": "<at>Dana_Ops</at>", "mentioned": {"id": "aad-dana", "name": "Dana_Ops"}}
    ]
    assert_valid_card(card)
    assert "entities" not in render_card(Reply(text="no one named"))["msteams"]
