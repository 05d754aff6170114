"""An escalation channel the bot has no conversation reference for (never mentioned there), through
real Teams activities into the running server and the fake connector: `escalate` says so at once
when run on Teams; set elsewhere (the console), the first refused post tells the owner once; the
owner's copy is delivered either way; `status` says it until the channel is reachable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters import scheduling
from adapters.server import build_web_app
from bot.clock import FixedClock
from bot.config import Settings
from bot.core import Core, build_core
from bot.ports import Actor
from tests.teams import payloads as p
from tests.teams.fake_connector import FakeConnector
from tests.teams.test_teams_e2e import post

OPS = {"id": "19:ops0@thread.tacv2", "name": "Ops"}
CAROL_DM = "a:1carol-personal"
DM_DANA = f"/v3/conversations/{p.PERSONAL_DANA}/activities"
DM_CAROL = f"/v3/conversations/{CAROL_DM}/activities"
TO_OPS = f"/v3/conversations/{OPS['id']}/activities"
ADD = "Add @pilotbot to the team and mention it once in #Ops so escalations can reach it."
ROOT = Actor("console", "root")


@pytest.fixture
def teams_core(core: Core) -> Core:
    settings: Settings = core.settings.model_copy(
        update={
            "teams_allow_anonymous": True,
            "pilotbot_scheduler": False,  # what goes out is sent at once by the change, or by the test's tick
            "pilotbot_admins": "console:root,teams:aad-carol",
        }
    )
    return build_core(settings, core.clock, core.engine, migrate=False)


@pytest.fixture
async def client(teams_core: Core) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_web_app(teams_core), host="127.0.0.1", port=0)) as c:
        yield c


async def settle(client: TestClient) -> None:
    assert client.app is not None
    await client.app[scheduling.DELIVER_NOW_KEY].settle()


async def say(client: TestClient, connector: FakeConnector, text: str, who: dict[str, str] = p.DANA) -> list[str]:
    """`text` in the sender's 1:1 chat; the texts of the activities sent meanwhile."""
    before = len(connector.sent())
    conv = p.PERSONAL_DANA if who is p.DANA else CAROL_DM
    assert await post(client, p.personal(connector.url, text, who, conv)) in (200, 201)
    await settle(client)
    return [c.card_text for c in connector.sent()[before:]]


async def in_ops(client: TestClient, connector: FakeConnector, text: str, *mentions: dict[str, str]) -> None:
    """Carol mentions the bot in the Ops channel: Teams hands it the channel's conversation."""
    act = p.channel(connector.url, f"<at>pilotbot</at> {text}", [p.BOT, *mentions], sender=p.CAROL)
    act["channelData"]["channel"] = {"id": OPS["id"]}
    act["conversation"]["id"] = f"{OPS['id']};messageid=1732539999990"
    assert await post(client, act) in (200, 201)


def escalate_ops(connector: FakeConnector) -> dict[str, object]:
    act = p.personal(connector.url, "escalate p1 <at>Ops</at>", p.CAROL, CAROL_DM)
    act["entities"] = [{"type": "mention", "text": "<at>Ops</at>", "mentioned": OPS}]
    return act


async def eval_run(client: TestClient, connector: FakeConnector, teams_core: Core, pct: int) -> list[str]:
    clock = teams_core.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(hours=1))
    return await say(client, connector, f"eval p1 {pct} cases 120")


def paths(connector: FakeConnector, since: int = 0) -> list[str]:
    return [c.path for c in connector.sent()[since:]]


async def pilot(client: TestClient, connector: FakeConnector) -> None:
    await say(client, connector, "help", p.CAROL)  # Carol's 1:1 chat: she can be messaged
    for text in ("new p1 Pilot one", "owner p1 <@aad-dana|Dana Ops>", "threshold p1 90 min-cases 100"):
        await say(client, connector, text)


async def test_escalate_on_teams_to_a_channel_never_seen_says_it_at_once(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    await pilot(client, connector)
    before = len(connector.sent())
    assert await post(client, escalate_ops(connector)) in (200, 201)
    said = [c.card_text for c in connector.sent()[before:]]
    assert "Escalations for **p1** go to #Ops." in said[0]
    assert said[1:] == [ADD]  # right after the answer, in the same chat
    assert f"⚠️ {ADD}" in "".join(await say(client, connector, "status p1"))

    sent = len(connector.sent())
    await eval_run(client, connector, teams_core, 80)
    # The owner's DM arrives; the channel has no reference (no call at all); Carol was told already.
    assert DM_CAROL not in paths(connector, sent) and TO_OPS not in paths(connector, sent)
    assert any("fell below the bar" in c.card_text for c in connector.sent()[sent:] if c.path == DM_DANA)

    await in_ops(client, connector, "help")  # now the bot has the channel's conversation
    sent = len(connector.sent())
    await eval_run(client, connector, teams_core, 95)  # the recovery reaches the channel
    assert TO_OPS in paths(connector, sent)
    assert ADD not in "".join(await say(client, connector, "status p1"))


async def test_set_on_the_console_the_first_refused_post_tells_the_owner_once(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    await pilot(client, connector)
    assert teams_core.router.handle(f"escalate p1 <#{OPS['id']}|Ops>", ROOT).ok  # no platform to ask there
    sent = len(connector.sent())
    await eval_run(client, connector, teams_core, 80)
    # The eval's own reply and the alert, and one DM saying what to do: the console cannot be
    # messaged, so the owner is told instead.
    assert any("fell below the bar" in t for t in dm_texts(connector, DM_DANA, sent))
    assert told(connector) == 1
    assert f"⚠️ {ADD}" in "".join(await say(client, connector, "status p1"))

    await eval_run(client, connector, teams_core, 95)  # refused again: the same episode
    await eval_run(client, connector, teams_core, 80)
    assert told(connector) == 1

    await in_ops(client, connector, f"escalate p1 <at>{OPS['name']}</at>", OPS)  # set again where the bot is
    assert ADD not in "".join(await say(client, connector, "status p1"))
    assert told(connector) == 1


def dm_texts(connector: FakeConnector, path: str, since: int = 0) -> list[str]:
    return [c.card_text for c in connector.sent()[since:] if c.path == path]


def told(connector: FakeConnector) -> int:
    """DMs to the owner that open with the sentence (a `status` card shows it as a warning line instead)."""
    return sum(t.startswith(ADD) for t in dm_texts(connector, DM_DANA))
