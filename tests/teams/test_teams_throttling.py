"""Teams throttling at the real boundary: check-ins fan out from the outbox through the notifier and
botbuilder to the fake connector, which answers 429 + Retry-After (for the first calls, or past
Teams' documented limits). Nothing is lost or sent twice, nothing goes out before a Retry-After has
passed, and the pacer keeps each conversation inside its windows. Time is virtual (virtual_time.py)."""

from __future__ import annotations

import asyncio
import bisect
from collections import Counter
from datetime import timedelta

from aiohttp.test_utils import TestClient
from sqlmodel import select

from adapters.teams.app import TEAMS_NOTIFIER
from bot.clock import FixedClock
from bot.core import Core
from bot.ports import Actor, Destination
from bot.replies import Reply
from storage.db import session_scope
from storage.models import CheckIn
from tests.teams import payloads as p
from tests.teams.fake_connector import Call, FakeConnector, Throttle
from tests.teams.test_teams_refusals import delivery_of, teams_failures
from tests.teams.virtual_time import VirtualTime

DANA = Actor("teams", "aad-dana", "Dana Ops")
OTHERS = [{"id": f"29:1u{i}", "name": f"User {i}", "aadObjectId": f"aad-u{i}"} for i in range(4)]
DANA_PILOTS = 9  # more than 7 a second and 8 in 2 s into one conversation


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


def checkins(connector: FakeConnector) -> list[Call]:
    return [c for c in connector.accepted() if "Weekly check-in" in c.body.get("summary", "")]


async def _pilots(client: TestClient, connector: FakeConnector, core: Core) -> None:
    """Dana owns DANA_PILOTS pilots, each of OTHERS one; everybody has a 1:1 chat with the bot."""
    assert (await client.post("/api/messages", json=p.installed_personal(connector.url))).status in (200, 201)
    for u in OTHERS:
        act = p.personal(connector.url, "help", sender=u, conv=f"a:{u['id'][3:]}-personal")
        assert (await client.post("/api/messages", json=act)).status in (200, 201)
    owners = [("aad-dana", "Dana Ops")] * DANA_PILOTS + [(u["aadObjectId"], u["name"]) for u in OTHERS]
    for n, (aad, name) in enumerate(owners):
        for text in (
            f"new pilot-{n} Pilot {n}",
            f"baseline pilot-{n} cost 4 usd lower",
            f"owner pilot-{n} <@{aad}|{name}>",
        ):
            assert core.router.handle(text, DANA).ok, text
    connector.calls.clear()


async def test_a_throttled_fan_out_waits_out_every_retry_after_and_sends_each_checkin_once(
    server: TestClient, connector: FakeConnector, quiet_core: Core, vt: VirtualTime
) -> None:
    await _pilots(server, connector, quiet_core)
    clock = quiet_core.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(days=5))  # Monday: every first check-in is due
    connector.refuse(429, times=2, retry_after=2)  # Teams throttles the first two sends

    stats = await vt.run(delivery_of(server).tick())

    total = DANA_PILOTS + len(OTHERS)
    assert (stats.sent, stats.failed) == (total, 0)  # retried inside the attempt, after the hold
    with session_scope(quiet_core.engine) as s:
        assert all(c.sent_at is not None for c in s.exec(select(CheckIn)))
    cards = checkins(connector)
    per = Counter((c.conversation_id, c.card["actions"][0]["data"]["slug"]) for c in cards)
    assert len(per) == total and set(per.values()) == {1}  # none lost, none twice
    refused = [c for c in connector.sent() if c.status == 429]
    assert len(refused) == 2
    for r in refused:  # one 429 held every sender back: nothing was accepted during its Retry-After
        assert all(not r.at <= c.at < r.at + 2 for c in connector.accepted())
    assert min(c.at for c in connector.accepted()) >= refused[-1].at + 2
    dana = [c.at for c in cards if c.conversation_id == p.PERSONAL_DANA]
    assert len(dana) == DANA_PILOTS
    assert most_in_any_window(dana, 1.0) <= 7 and most_in_any_window(dana, 2.0) <= 8
    assert max(dana) - min(dana) >= 2.0  # the ninth waited for the 2-second window
    assert await teams_failures(server) == 0  # no delivery failed


async def test_sends_against_teams_limits_get_no_429(
    server: TestClient, connector: FakeConnector, quiet_core: Core, vt: VirtualTime
) -> None:
    """The connector enforces Teams' documented limits; the pacer keeps every send inside them."""
    assert (await server.post("/api/messages", json=p.installed_personal(connector.url))).status in (200, 201)
    act = p.channel(connector.url, "<at>pilotbot</at> help", [p.BOT], sender=p.CAROL)
    assert (await server.post("/api/messages", json=act)).status in (200, 201)
    connector.calls.clear()
    connector.throttle = Throttle()
    assert server.app is not None
    notifier = server.app[TEAMS_NOTIFIER]
    channel, dana = Destination.channel("teams", p.CHANNEL), Destination.user("teams", "aad-dana")
    messages = [(channel, Reply(text=f"alert {i}")) for i in range(20)] + [
        (dana, Reply(text=f"dm {i}")) for i in range(10)
    ]

    await vt.run(asyncio.gather(*(notifier.send(d, r) for d, r in messages)))

    assert connector.throttle.refused == 0
    texts = Counter(c.body.get("text") or c.body.get("summary") for c in connector.accepted())
    assert len(connector.accepted()) == 30 and max(texts.values()) == 1
    posts = [c.at for c in connector.accepted() if c.conversation_id == p.CHANNEL]
    assert len(posts) == 20 and most_in_any_window(posts, 1.0) <= 7 and most_in_any_window(posts, 2.0) <= 8


async def test_a_429_while_opening_a_dm_opens_it_once_and_sends_once(
    server: TestClient, connector: FakeConnector, quiet_core: Core, vt: VirtualTime
) -> None:
    """Carol is known from a channel only: her DM is opened (create conversation) first."""
    act = p.channel(connector.url, "<at>pilotbot</at> help", [p.BOT], sender=p.CAROL)
    assert (await server.post("/api/messages", json=act)).status in (200, 201)
    connector.calls.clear()
    assert server.app is not None
    notifier = server.app[TEAMS_NOTIFIER]
    carol = Destination.user("teams", "aad-carol")
    connector.refuse(429, retry_after=1, on="create")
    connector.refuse(429, retry_after=3, on="activity")  # then the first message into the new DM

    ref = await vt.run(notifier.send(carol, Reply(text="hello")))

    creates = [c for c in connector.calls if c.path == "/v3/conversations"]
    assert [c.status for c in creates] == [429, 200]  # the refused create was retried; no second DM
    assert [c.status for c in connector.sent()] == [429, 200]  # the message went once, into that DM
    assert creates[1].at >= creates[0].at + 1 and connector.sent()[1].at >= connector.sent()[0].at + 3
    assert ref.conversation == connector.sent()[1].conversation_id
