"""Pacing against Slack's rate tiers: the Pacer on virtual time, then the notifier fan-out through
the real client against the fake Web API enforcing the tiers (429 + Retry-After past them)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from typing import Any

import pytest

from adapters.slack.client import make_slack_client, retry_after
from adapters.slack.notifier import SlackNotifier
from adapters.slack.pacing import METHOD_LIMITS, Limit, Pacer, scaled_limits, scaled_time
from bot.config import Settings
from bot.ports import Destination
from bot.replies import Reply
from tests.slack.conftest import slack_settings
from tests.slack.fake_slack import FakeSlack, RateLimit, Tiers, scaled_clock

REPLY = Reply(text="Weekly check-in for `support-drafts`: how did it go?")


class VirtualTime:
    """A clock that only moves when every task is asleep: it jumps to the earliest wake-up."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._seq), fut))
        await fut

    async def run(self, *coros: Awaitable[Any]) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in coros]
        while not all(t.done() for t in tasks):
            for _ in range(20):  # let every runnable task run until it sleeps or ends
                await asyncio.sleep(0)
            if self._sleepers:
                target, _, fut = heapq.heappop(self._sleepers)
                self.now = max(self.now, target)
                fut.set_result(None)
        return [t.result() for t in tasks]


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times)), default=0)


# ---- the Pacer on virtual time -------------------------------------------------------------------
def test_a_method_never_gets_more_than_its_limit_in_any_window_and_keeps_its_rate() -> None:
    vt = VirtualTime()
    pacer = Pacer({"conversations.open": Limit(50, 60.0, burst=5)}, {}, margin=0.05, clock=vt.clock)
    slots = [pacer.reserve("conversations.open") for _ in range(500)]
    assert slots == sorted(slots)
    assert slots[:5] == [0.0] * 5  # a short burst goes at once
    assert most_in_any_window(slots, 60.0) <= 50
    # 500 calls at 50 a minute: ten windows' worth, paced no slower than the margin asks.
    assert slots[-1] <= 10 * 60.0 * 1.05


def test_the_real_tiers_are_paced_below_slacks_figures() -> None:
    assert METHOD_LIMITS["conversations.open"].calls == 50 and METHOD_LIMITS["conversations.open"].per == 60
    assert METHOD_LIMITS["users.info"].calls == 100
    vt = VirtualTime()
    pacer = Pacer(clock=vt.clock)
    opens = [pacer.reserve("conversations.open") for _ in range(200)]
    infos = [pacer.reserve("users.info") for _ in range(300)]
    assert most_in_any_window(opens, 60.0) <= 50
    assert most_in_any_window(infos, 60.0) <= 100


def test_a_429_holds_back_every_sender_of_that_method_only() -> None:
    vt = VirtualTime()
    pacer = Pacer({"chat.postMessage": Limit(600, 60.0, burst=1)}, {}, clock=vt.clock, sleep=vt.sleep)
    returned: dict[str, list[float]] = {"chat.postMessage": [], "users.info": []}
    throttled_at: list[float] = []

    async def send(method: str, i: int) -> None:
        await pacer.acquire(method, f"D{i}")
        returned[method].append(vt.now)
        if method == "chat.postMessage" and i == 3:  # this one is answered 429, Retry-After 30
            throttled_at.append(vt.now)
            pacer.throttled(method, 30.0)

    async def main() -> None:
        await vt.run(*(send("chat.postMessage", i) for i in range(20)), *(send("users.info", i) for i in range(5)))

    asyncio.run(main())
    (t429,) = throttled_at
    after = [t for t in returned["chat.postMessage"] if t > t429]
    assert len(returned["chat.postMessage"]) == 20
    assert len(after) == 16 and all(t >= t429 + 30.0 for t in after)  # nobody went during the hold
    assert returned["users.info"] == [0.0] * 5  # another method is not held
    assert pacer.throttles == 1


def test_posts_to_one_channel_are_a_second_apart_without_holding_other_channels_back() -> None:
    vt = VirtualTime()
    pacer = Pacer(clock=vt.clock, sleep=vt.sleep)
    times: dict[str, list[float]] = {}

    async def post(channel: str) -> None:
        await pacer.acquire("chat.postMessage", channel)
        times.setdefault(channel, []).append(vt.now)

    async def main() -> None:
        await vt.run(*(post("C1") for _ in range(4)), *(post(f"D{i}") for i in range(10)))

    asyncio.run(main())
    c1 = sorted(times["C1"])
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(c1))
    assert max(t for ch, ts in times.items() if ch != "C1" for t in ts) < 1.0  # the DMs went at once


def test_retry_after_is_read_from_any_header_shape() -> None:
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"retry-after": ["2"]}) == 2.0
    assert retry_after({"Retry-After": "soon"}) == 1.0
    assert retry_after(None) == 1.0


def test_clients_of_one_workspace_share_one_pacer(sqlite_url: str) -> None:
    settings = slack_settings(sqlite_url, "http://127.0.0.1:9/api/")
    other = slack_settings(sqlite_url, "http://127.0.0.1:10/api/")
    assert make_slack_client(settings).pacer is make_slack_client(settings).pacer
    assert make_slack_client(settings).pacer is not make_slack_client(other).pacer


# ---- the fan-out against the enforcing fake ------------------------------------------------------
SCALE = 60.0  # Slack's minute lasts one real second in these tests


@pytest.fixture
async def tier_fake() -> Any:
    tiers = Tiers(
        {"conversations.open": RateLimit(8, 60.0), "chat.postMessage": RateLimit(12, 60.0)},
        {"chat.postMessage": RateLimit(1, 1.0)},
        clock=scaled_clock(SCALE),
    )
    server = await FakeSlack(tiers).start()
    yield server
    await server.stop()


def paced_notifier(fake: FakeSlack, settings: Settings, limits: dict[str, Limit], scale: float) -> SlackNotifier:
    clock, sleep = scaled_time(scale)
    pacer = Pacer(limits, {"chat.postMessage": Limit(1, 1.0)}, clock=clock, sleep=sleep)
    return SlackNotifier(make_slack_client(settings, pacer=pacer))


async def test_fan_out_against_the_tiers_sends_everything_once_with_almost_no_429s(
    tier_fake: FakeSlack, sqlite_url: str
) -> None:
    settings = slack_settings(sqlite_url, tier_fake.api_url)
    limits = {"conversations.open": Limit(8, 60.0, burst=2), "chat.postMessage": Limit(12, 60.0, burst=2)}
    notifier = paced_notifier(tier_fake, settings, limits, SCALE)
    owners = [Destination.user("slack", f"U{i:03d}") for i in range(20)]
    # Week 1: every owner needs conversations.open, then chat.postMessage.
    await asyncio.gather(*(notifier.send(o, REPLY) for o in owners))
    # Week 2: the DM channel ids are reused, posts only.
    await asyncio.gather(*(notifier.send(o, REPLY) for o in owners))
    assert tier_fake.tiers is not None
    assert len([c for c in tier_fake.of("conversations.open")]) - tier_fake.tiers.refused["conversations.open"] == 20
    assert tier_fake.posted == {f"DU{i:03d}": 2 for i in range(20)}  # no loss, no duplicate
    assert sum(tier_fake.tiers.refused.values()) <= 2


async def test_one_429_makes_every_concurrent_sender_wait(sqlite_url: str) -> None:
    scale = 5.0  # a Retry-After of 1 s lasts 0.2 s; the pacer spaces posts 21 ms apart
    tiers = Tiers({}, {}, clock=scaled_clock(scale))  # no limits: only the refusal we inject
    fake = await FakeSlack(tiers).start()
    try:
        settings = slack_settings(sqlite_url, fake.api_url)
        notifier = paced_notifier(fake, settings, {"chat.postMessage": Limit(600, 60.0)}, scale)
        await notifier.send(Destination.channel("slack", "C99"), REPLY)  # connected
        fake.fail("chat.postMessage", status=429, retry_after=1, times=1)  # Slack refuses for 1 s
        channels = [Destination.channel("slack", f"C{i:02d}") for i in range(30)]
        await asyncio.gather(*(notifier.send(c, REPLY) for c in channels))
        assert fake.posted == {f"C{i:02d}": 1 for i in range(30)} | {"C99": 1}
        # Without the hold, each sender that goes during that second would get its own 429 (~9).
        # The first 429 held every other sender back: only those already on their way (one, or a
        # few when a loaded machine answers slowly) are refused too.
        assert tiers.refused["chat.postMessage"] <= 4
    finally:
        await fake.stop()


def test_the_rate_limit_factor_setting_scales_the_paced_tiers(sqlite_url: str) -> None:
    base = slack_settings(sqlite_url, "http://127.0.0.1:11/api/")
    faster = base.model_copy(update={"slack_rate_limit_factor": 10.0})
    assert make_slack_client(base).pacer.limits["conversations.open"].calls == 50
    assert make_slack_client(faster).pacer.limits["conversations.open"].calls == 500
    assert make_slack_client(faster).pacer.channel_limits["chat.postMessage"].calls == 10
    with pytest.raises(ValueError, match="above 0"):
        scaled_limits(METHOD_LIMITS, 0)
