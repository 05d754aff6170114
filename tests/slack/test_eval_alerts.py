"""Eval alerts on Slack through the real SlackNotifier and the fake Web API (SPEC §10): severities,
one alert per breach, recovery; and the flipped cases of a labelled run named in the alert."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aiohttp.test_utils import TestClient, TestServer

from adapters.server import build_web_app
from adapters.slack.notifier import SlackNotifier
from bot.clock import FixedClock
from bot.commands import ChannelRef, UserRef
from bot.core import Core, build_core
from bot.ports import Actor
from bot.schedule.deliver import Delivery
from bot.tokens import TokenService
from tests.api.test_evalscore import as_jsonl, generated_cases
from tests.eval_sequence import EXPECTED, FLIPS, HEADLINE, SEQUENCE
from tests.slack.conftest import slack_settings
from tests.slack.fake_slack import FakeSlack
from tests.test_evalscore_cli import RUN2_FAILING, RUN2_FIELDS, junit

UB = Actor("slack", "UB", "Berta")


def _core(fake: FakeSlack, sqlite_url: str, clock: FixedClock) -> Core:
    core = build_core(slack_settings(sqlite_url, fake.api_url), clock)
    s = core.services
    s.new_pilot(UB, "p1", None)
    s.set_owner(UB, "p1", UserRef("UB", "Berta"))
    s.set_escalation(UB, "p1", ChannelRef("CE", "esc"))
    return core


def _posts(fake: FakeSlack, since: int) -> list[tuple[str, str]]:
    """(channel, text) of the eval messages posted since the `since`-th chat.postMessage."""
    posts = fake.of("chat.postMessage")[since:]
    return [(str(c.params["channel"]), str(c.params["text"])) for c in posts if "eval" in str(c.params["text"])]


async def test_93_89_88_5_95_92_5_is_page_nothing_recovery_warn_each_once(
    fake: FakeSlack,
    client,
    sqlite_url: str,
    clock: FixedClock,  # type: ignore[no-untyped-def]
) -> None:
    core = _core(fake, sqlite_url, clock)
    core.services.set_threshold(UB, "p1", 90, 100, 2)
    delivery = Delivery(core.engine, core.settings, clock, {"slack": SlackNotifier(client)})
    got = []
    for score, expected in zip(SEQUENCE, EXPECTED, strict=True):
        clock.advance(timedelta(hours=1))
        core.services.record_eval(UB, "p1", score, 150, None)
        before = len(fake.of("chat.postMessage"))
        for _ in range(3):  # more ticks change nothing: each alert goes out once
            await delivery.tick()
        posts = _posts(fake, before)
        got.append(posts)
        if expected is None:
            assert posts == [], (score, posts)
            continue
        headline = HEADLINE[expected].format(slug="p1")
        where = ["DUB"] if expected == "warn" else ["DUB", "CE"]  # a warn goes to the owner only
        assert sorted(ch for ch, _ in posts) == sorted(where), (score, posts)
        assert all(text.startswith(headline) for _, text in posts), (score, posts)
    assert [len(p) for p in got] == [0, 2, 0, 2, 1]


async def test_a_labelled_run_below_the_bar_names_its_flipped_cases_in_the_alert(
    fake: FakeSlack,
    client,
    sqlite_url: str,
    clock: FixedClock,  # type: ignore[no-untyped-def]
) -> None:
    """Two runs of the same 150 cases through REST (JSONL, then JUnit): the REST body, the console
    reply and the Slack alert name the same regressed and fixed cases."""
    core = _core(fake, sqlite_url, clock)
    core.services.set_threshold(UB, "p1", 77, 100, None)
    token, _ = TokenService(core.engine, clock).create("ci")
    auth = {"Authorization": f"Bearer {token}"}
    async with TestClient(TestServer(build_web_app(core))) as web:
        r = await web.post(
            "/api/v1/pilots/p1/evals/cases",
            data=as_jsonl(generated_cases(150)),
            headers={**auth, "Content-Type": "application/x-ndjson"},
        )
        one = await r.json()
        assert r.status == 201 and one["gate"] == {"passed": True, "reasons": []} and one["alerts"] == []
        assert one["flips"]["compared"] is False
        clock.advance(timedelta(hours=1))
        before = len(fake.of("chat.postMessage"))
        r = await web.post(
            "/api/v1/pilots/p1/evals/cases?version=v2",
            data=junit(RUN2_FAILING, RUN2_FIELDS),
            headers={**auth, "Content-Type": "application/xml"},
        )
        two = await r.json()
    assert r.status == 201, two
    assert two["gate"] == {"passed": False, "reasons": ["76.67% is below the 77% bar"]}
    flips = two["flips"]
    assert [(c["id"], c["failing_fields"]) for c in flips["regressed"]] == [
        ("case-1", ["amount"]),
        ("case-3", ["party"]),
        ("case-2", []),
    ]
    assert [c["id"] for c in flips["fixed"]] == ["case-7", "case-14"]
    assert (flips["regressed_total"], flips["fixed_total"]) == (3, 2)
    assert FLIPS in two["lines"]
    # The server sends it at once after the commit; a tick is the safety net. Either way: once.
    delivery = Delivery(core.engine, core.settings, clock, {"slack": SlackNotifier(client)})
    for _ in range(200):
        await delivery.tick()
        if len(fake.of("chat.postMessage")) - before >= 2:
            break
        await asyncio.sleep(0.05)
    await delivery.tick()
    posts = fake.of("chat.postMessage")[before:]
    assert sorted(str(c.params["channel"]) for c in posts) == ["CE", "DUB"]
    for c in posts:
        assert str(c.params["text"]).startswith("Page: `p1` eval fell below the bar: 77.33% → 76.67% (version v2)")
        blocks = str(c.params["blocks"])
        assert FLIPS in blocks, blocks
