"""Sent means accepted on Teams too (SPEC §5): the fake connector refuses proactive sends
(503, 403, 429 with a Retry-After too long to wait out in one attempt), then recovers. A refused
check-in or eval alert stays pending with backoff (never retried before the Retry-After), is counted
on /metrics, is retried, arrives exactly once, and no reminder is planned for a check-in that never
arrived. (A short Retry-After is waited out inside the attempt: tests/teams/test_teams_throttling.py.)"""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient
from sqlmodel import select

from adapters import scheduling
from adapters.teams.notifier import MAX_WAIT
from bot.clock import FixedClock
from bot.core import Core
from bot.ports import Actor
from bot.schedule.deliver import Delivery
from storage.db import session_scope
from storage.models import CheckIn, Escalation, EscalationKind
from tests.teams import payloads as p
from tests.teams.fake_connector import Call, FakeConnector
from tests.teams.virtual_time import VirtualTime

DANA = Actor("teams", "aad-dana", "Dana Ops")
ADMIN = Actor("console", "root")
DM_PATH = f"/v3/conversations/{p.PERSONAL_DANA}/activities"
CHANNEL_PATH = f"/v3/conversations/{p.CHANNEL}/activities"


def delivery_of(client: TestClient) -> Delivery:
    assert client.app is not None
    return client.app[scheduling.DELIVERY_KEY]


async def teams_failures(client: TestClient) -> float:
    text = await (await client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith('pilotbot_delivery_failures_total{platform="teams"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def checkin_row(core: Core) -> CheckIn:
    with session_scope(core.engine) as s:
        return s.exec(select(CheckIn)).one()


def kinds(core: Core) -> list[str]:
    with session_scope(core.engine) as s:
        return [e.kind for e in s.exec(select(Escalation))]


def checkin_cards(connector: FakeConnector) -> list[Call]:
    return [c for c in connector.accepted() if c.path == DM_PATH and "Weekly check-in" in c.body.get("summary", "")]


async def _dana_pilot(client: TestClient, connector: FakeConnector, core: Core, channel: bool = False) -> None:
    assert (await client.post("/api/messages", json=p.installed_personal(connector.url))).status in (200, 201)
    if channel:
        act = p.channel(connector.url, "<at>pilotbot</at> help", [p.BOT], sender=p.CAROL)
        assert (await client.post("/api/messages", json=act)).status in (200, 201)
    for text in (
        "new support-drafts Support drafts",
        "owner support-drafts <@aad-dana|Dana Ops>",
        "baseline support-drafts handle_time 14 min lower",
        "threshold support-drafts 90 min-cases 100",
        "eval support-drafts 95 cases 120",
        *([f"escalate support-drafts <#{p.CHANNEL}|General>"] if channel else []),
    ):
        assert core.router.handle(text, ADMIN if text.startswith("escalate") else DANA).ok, text
    connector.calls.clear()


async def test_refused_checkin_stays_pending_is_retried_and_arrives_once_without_an_early_reminder(
    server: TestClient, connector: FakeConnector, quiet_core: Core, vt: VirtualTime
) -> None:
    await _dana_pilot(server, connector, quiet_core)
    clock = quiet_core.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(days=5))  # Monday 12:00: the first check-in (09:00) is due
    delivery = delivery_of(server)

    long_wait = MAX_WAIT * 40  # 40 min: longer than one attempt waits, longer than the 2 min backoff
    for status, retry_after in ((503, None), (403, None), (429, long_wait)):
        connector.refuse(status, retry_after=retry_after)
        stats = await vt.run(delivery.tick())
        assert (stats.sent, stats.failed) == (0, 1), status
        row = checkin_row(quiet_core)
        assert row.sent_at is None and row.next_attempt_at is not None and row.next_attempt_at > clock.now()
        assert row.last_error and row.attempts >= 1
        assert checkin_cards(connector) == []
        if status == 429:  # not before the Retry-After, though the backoff alone would allow it
            assert row.next_attempt_at - clock.now() >= timedelta(seconds=long_wait)
            assert "Retry-After" in row.last_error
            clock.advance(timedelta(minutes=30))
            assert (await vt.run(delivery.tick())).failed == 0  # not due yet: not tried
            assert len(connector.sent()) == 3
        clock.advance(timedelta(hours=1))  # past the backoff
    assert checkin_row(quiet_core).attempts == 3
    assert await teams_failures(server) == 3

    # A day and more later, still refused: not accepted, so no reminder and no missed review.
    clock.advance(timedelta(hours=22))
    connector.refuse(503)
    stats = await vt.run(delivery.tick())
    assert (stats.planned.reminders, stats.planned.missed, stats.failed) == (0, 0, 1)
    assert kinds(quiet_core) == []

    clock.advance(timedelta(hours=1))  # the connector recovered
    stats = await vt.run(delivery.tick())
    assert stats.sent == 1 and stats.planned.reminders == 0
    row = checkin_row(quiet_core)
    assert row.sent_at == clock.now() and row.message_ref and row.message_ref["conversation"] == p.PERSONAL_DANA
    [card] = checkin_cards(connector)
    submit = {"action": "checkin_submit", "slug": "support-drafts", "period": "2026-W49"}
    assert card.card["actions"][0]["data"] == submit

    for _ in range(3):  # later ticks never send it again
        clock.advance(timedelta(minutes=30))
        assert (await vt.run(delivery.tick())).sent == 0
    assert len(checkin_cards(connector)) == 1
    assert kinds(quiet_core) == []  # follow-ups wait 24 h from when it arrived, not from when it was due
    clock.advance(timedelta(hours=23))  # 24.5 h after it arrived, past the 48 h grace: the missed review
    stats = await vt.run(delivery.tick())
    assert stats.planned.reminders == 0
    assert kinds(quiet_core) == [EscalationKind.checkin_missed.value]
    assert await teams_failures(server) == 4


async def test_refused_eval_alert_stays_pending_and_reaches_owner_and_channel_once(
    server: TestClient, connector: FakeConnector, quiet_core: Core, vt: VirtualTime
) -> None:
    await _dana_pilot(server, connector, quiet_core, channel=True)
    clock = quiet_core.clock
    assert isinstance(clock, FixedClock)
    connector.refuse(503, times=2)
    assert server.app is not None
    hook = server.app[scheduling.DELIVER_NOW_KEY]

    reply = quiet_core.router.handle("eval support-drafts 81 cases 120", DANA)
    assert reply.ok
    await vt.run(hook.settle())  # the at-once attempt: the owner's DM was refused
    with session_scope(quiet_core.engine) as s:
        [alert] = s.exec(select(Escalation)).all()
    assert alert.kind == EscalationKind.eval_below_bar.value
    assert alert.sent_at is None and alert.attempts == 1 and alert.next_attempt_at is not None
    assert connector.accepted() == []

    delivery = delivery_of(server)
    assert (await vt.run(delivery.tick())).sent == 0  # backoff not over: not even tried
    clock.advance(timedelta(minutes=1))
    stats = await vt.run(delivery.tick())  # tried again: refused again
    assert (stats.sent, stats.failed) == (0, 1)
    connector.refuse(429, retry_after=MAX_WAIT * 3)
    clock.advance(timedelta(minutes=2))
    assert (await vt.run(delivery.tick())).failed == 1
    assert connector.accepted() == []

    clock.advance(timedelta(minutes=5))  # recovered, and the Retry-After has passed
    assert (await vt.run(delivery.tick())).sent == 1
    alerts = [c for c in connector.accepted() if "fell below the bar" in c.body.get("summary", "")]
    assert sorted(c.path for c in alerts) == sorted([DM_PATH, CHANNEL_PATH])
    for _ in range(2):
        clock.advance(timedelta(hours=1))
        await vt.run(delivery.tick())
    assert len([c for c in connector.accepted() if "fell below the bar" in c.body.get("summary", "")]) == 2
    assert await teams_failures(server) == 3


async def test_an_eval_sent_as_a_teams_message_alerts_owner_and_channel_at_once(
    server: TestClient, connector: FakeConnector, quiet_core: Core
) -> None:
    await _dana_pilot(server, connector, quiet_core, channel=True)
    act = p.personal(connector.url, "eval support-drafts 81 cases 120")
    assert (await server.post("/api/messages", json=act)).status in (200, 201)
    assert server.app is not None
    await server.app[scheduling.DELIVER_NOW_KEY].settle()  # no tick runs in this process
    page = "Page: `support-drafts` eval fell"
    alerts = [c for c in connector.accepted() if c.body.get("summary", "").startswith(page)]
    assert sorted(c.path for c in alerts) == sorted([DM_PATH, CHANNEL_PATH])
    [channel_copy] = [c for c in alerts if c.path == CHANNEL_PATH]
    assert channel_copy.card["msteams"]["entities"][0]["mentioned"]["id"] == "aad-dana"  # the owner is pinged
