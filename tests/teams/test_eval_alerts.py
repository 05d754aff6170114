"""Eval alerts on Teams through the real TeamsNotifier and the fake connector (SPEC §10): severities,
one alert per breach, recovery; the flipped cases named in the alert; `cases` on Teams."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aiohttp.test_utils import TestClient

from bot.clock import FixedClock
from bot.core import Core
from bot.ports import Actor
from bot.schedule.deliver import Delivery
from bot.tokens import TokenService
from tests.api.test_evalscore import as_jsonl, generated_cases
from tests.eval_sequence import EXPECTED, FLIPS, HEADLINE, SEQUENCE
from tests.teams import payloads as p
from tests.teams.fake_connector import Call, FakeConnector
from tests.teams.test_teams_e2e import notifier_of, post
from tests.test_evalscore_cli import RUN2_FAILING, RUN2_FIELDS, junit

DANA = Actor("teams", "aad-dana", "Dana Ops")
DM = f"/v3/conversations/{p.PERSONAL_DANA}/activities"
CHANNEL = f"/v3/conversations/{p.CHANNEL}/activities"


async def _pilot(client: TestClient, connector: FakeConnector, core: Core) -> None:
    """Dana owns `p1`; the General channel is its escalation channel; both reachable (references stored)."""
    assert await post(client, p.personal(connector.url, "help")) in (200, 201)
    assert await post(client, p.channel(connector.url, "<at>pilotbot</at> help", [p.BOT], sender=p.CAROL)) in (200, 201)
    for text in ("new p1 Pilot one", "owner p1 <@aad-dana|Dana Ops>", f"escalate p1 <#{p.CHANNEL}|General>"):
        assert core.router.handle(text, DANA).ok, text
    connector.calls.clear()


def _eval_posts(connector: FakeConnector, since: int) -> list[Call]:
    return [c for c in connector.sent()[since:] if c.path in (DM, CHANNEL) and "eval" in c.body.get("summary", "")]


async def _settle(delivery: Delivery, connector: FakeConnector, before: int, want: int) -> None:
    """The server sends an alert at once after the commit; ticks are the safety net and, once it
    went out, change nothing: either way each alert arrives once."""
    for _ in range(100):
        await delivery.tick()
        if len(_eval_posts(connector, before)) >= want:
            break
        await asyncio.sleep(0.05)
    for _ in range(2):
        await delivery.tick()


async def test_93_89_88_5_95_92_5_is_page_nothing_recovery_warn_each_once(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    await _pilot(client, connector, teams_core)
    assert teams_core.router.handle("threshold p1 90 min-cases 100 drop-alert 2", DANA).ok
    clock = teams_core.clock
    assert isinstance(clock, FixedClock)
    delivery = Delivery(teams_core.engine, teams_core.settings, clock, {"teams": notifier_of(client)})
    counts = []
    for score, expected in zip(SEQUENCE, EXPECTED, strict=True):
        clock.advance(timedelta(hours=1))
        before = len(connector.sent())
        teams_core.services.record_eval(DANA, "p1", score, 150, None)
        want = 0 if expected is None else (1 if expected == "warn" else 2)
        await _settle(delivery, connector, before, want)
        posts = _eval_posts(connector, before)
        counts.append(len(posts))
        if expected is None:
            assert posts == [], (score, [c.body.get("summary") for c in posts])
            continue
        where = [DM] if expected == "warn" else sorted([DM, CHANNEL])
        assert sorted(c.path for c in posts) == where, (score, [c.path for c in posts])
        headline = HEADLINE[expected].format(slug="p1")
        for c in posts:
            assert c.body["summary"].startswith(headline), c.body["summary"]
    assert counts == [0, 2, 0, 2, 1]


async def test_flipped_cases_in_the_teams_alert_and_cases_lists_the_flaky_one(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    """Runs 1 and 2 of the same 150 cases (JSONL, JUnit) through REST: the alert names the flips.
    Runs 3 and 4 (run 1's file again, then run 2's) flip case-1 back and forth: `cases` lists it."""
    await _pilot(client, connector, teams_core)
    assert teams_core.router.handle("threshold p1 77 min-cases 100", DANA).ok
    clock = teams_core.clock
    assert isinstance(clock, FixedClock)
    token, _ = TokenService(teams_core.engine, clock).create("ci")
    files = [
        (as_jsonl(generated_cases(150)), "application/x-ndjson"),
        (junit(RUN2_FAILING, RUN2_FIELDS), "application/xml"),
    ]
    bodies = []
    for i in range(4):
        clock.advance(timedelta(hours=1))
        data, ctype = files[i % 2]
        before = len(connector.sent())
        r = await client.post(
            "/api/v1/pilots/p1/evals/cases",
            data=data,
            headers={"Authorization": f"Bearer {token}", "Content-Type": ctype},
        )
        assert r.status == 201
        bodies.append(await r.json())
        if i == 1:
            delivery = Delivery(teams_core.engine, teams_core.settings, clock, {"teams": notifier_of(client)})
            await _settle(delivery, connector, before, 2)
            posts = _eval_posts(connector, before)
            assert sorted(c.path for c in posts) == sorted([DM, CHANNEL])
            for c in posts:
                assert c.body["summary"].startswith("Page: `p1` eval fell below the bar: 77.33% → 76.67%")
                assert FLIPS in c.card_text, c.card_text
    assert [b["gate"]["passed"] for b in bodies] == [True, False, True, False]
    assert FLIPS in bodies[3]["lines"]
    r = await client.get("/api/v1/pilots/p1/cases", headers={"Authorization": f"Bearer {token}"})
    doc = await r.json()
    assert r.status == 200 and doc["runs"] == 4
    flaky = {c["id"]: c for c in doc["flaky"]}
    assert set(flaky) == {"case-1", "case-2", "case-3", "case-7", "case-14"}
    assert flaky["case-1"] == {"id": "case-1", "changes": 3, "runs": 4, "passed_last": False}
    assert "case-0" in doc["always_failing"]
    connector.calls.clear()
    act = p.personal(connector.url, "cases p1")
    assert await post(client, act) in (200, 201)
    [reply] = [c for c in connector.sent() if c.reply_to_id == act["id"]]
    assert "5 flaky in the last 4 labelled runs: case-1 (3 changes, fails now)" in reply.card_text
    assert "always failing in the last 4 labelled runs: case-0" in reply.card_text
