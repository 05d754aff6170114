"""The Teams pacer on virtual time: Microsoft's per-conversation windows, the bot's global cap,
create-conversation counted too, and one 429 holding back every conversation."""

from __future__ import annotations

import asyncio
import bisect
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from adapters.pacing import Limit
from adapters.teams.pacing import CREATE, GLOBAL_LIMIT, SEND, THREAD_LIMITS, TeamsPacer, retry_after
from tests.teams.virtual_time import VirtualTime


def most_in_any_window(times: list[float], window: float) -> int:
    """The most calls any half-open window [t, t + window) holds."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


def run_sends(vt: VirtualTime, pacer: TeamsPacer, calls: list[tuple[str, str]]) -> list[tuple[str, str, float]]:
    """Every (conversation, scenario) acquires concurrently; returns when each was let go."""
    out: list[tuple[str, str, float]] = []

    async def one(conversation: str, scenario: str) -> None:
        await pacer.acquire(conversation, scenario)
        out.append((conversation, scenario, vt.clock()))

    tracked = vt.track(one)

    async def main() -> None:
        await vt.run(asyncio.gather(*(tracked(c, s) for c, s in calls)))

    asyncio.run(main())
    return out


def test_the_documented_figures() -> None:
    assert [(x.calls, x.per) for x in THREAD_LIMITS] == [(7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0)]
    assert (GLOBAL_LIMIT.calls, GLOBAL_LIMIT.per) == (30, 1.0)


def test_sends_to_one_conversation_stay_within_every_window_and_keep_the_rate() -> None:
    vt = VirtualTime()
    pacer = TeamsPacer(global_limit=None, clock=vt.clock, sleep=vt.sleep)
    times = [t for *_, t in run_sends(vt, pacer, [("a:dana", SEND)] * 150)]
    assert len(times) == 150
    for limit in THREAD_LIMITS[:3]:
        assert most_in_any_window(times, limit.per) <= limit.calls, limit
    assert most_in_any_window(times, 1.0) == 7  # the documented burst is used, not wasted
    # 60 per 30 s is the binding rate: 150 sends need two full windows and a half, plus the margin.
    assert 60.0 <= max(times) <= 2 * 30 * 1.05 + 30 * 1.05


def test_the_hourly_window_per_conversation() -> None:
    vt = VirtualTime()
    pacer = TeamsPacer((Limit(1800, 3600.0, 1800),), None, clock=vt.clock, sleep=vt.sleep)
    times = [t for *_, t in run_sends(vt, pacer, [("19:general", SEND)] * 1900)]
    assert most_in_any_window(times, 3600.0) <= 1800
    assert max(times) >= 3600.0  # the 1801st waits for the hour


def test_the_global_cap_spaces_sends_across_conversations_without_holding_one_back_for_another() -> None:
    vt = VirtualTime()
    pacer = TeamsPacer(clock=vt.clock, sleep=vt.sleep)
    calls = [(f"a:{i}", SEND) for i in range(90)] + [("19:general", SEND)] * 10
    sent = run_sends(vt, pacer, calls)
    assert most_in_any_window([t for *_, t in sent], 1.0) <= 30
    # The DMs go at the cap's rate: the channel's sends waiting for their window take no global slot.
    assert max(t for c, _, t in sent if c != "19:general") <= 90 / 30 * 1.05 + 1e-6
    channel = [t for c, _, t in sent if c == "19:general"]
    assert most_in_any_window(channel, 1.0) <= 7 and most_in_any_window(channel, 2.0) <= 8


def test_create_conversation_counts_in_the_global_cap_and_per_member() -> None:
    vt = VirtualTime()
    pacer = TeamsPacer(clock=vt.clock, sleep=vt.sleep)
    calls = [(f"29:{i}", CREATE) for i in range(30)] + [(f"a:{i}", SEND) for i in range(30)]
    sent = run_sends(vt, pacer, calls)
    assert most_in_any_window([t for *_, t in sent], 1.0) <= 30  # creates and sends share the cap
    # Creates to one member and sends to one conversation are separate scenarios of the same limits.
    both = run_sends(
        vt, TeamsPacer(global_limit=None, clock=vt.clock, sleep=vt.sleep), [("x", CREATE)] * 8 + [("x", SEND)] * 8
    )
    start = min(t for *_, t in both)
    assert sum(1 for _, s, t in both if t == start and s == CREATE) == 7
    assert sum(1 for _, s, t in both if t == start and s == SEND) == 7


def test_one_429_holds_back_every_conversation() -> None:
    vt = VirtualTime()
    pacer = TeamsPacer(clock=vt.clock, sleep=vt.sleep)
    released: list[tuple[int, float]] = []
    throttled_at: list[float] = []

    async def send(i: int) -> None:
        await pacer.acquire(f"a:{i}", SEND)
        released.append((i, vt.clock()))
        if i == 2:  # this one is answered 429, Retry-After 5
            throttled_at.append(vt.clock())
            pacer.throttled(5.0)

    tracked = vt.track(send)

    async def main() -> None:
        await vt.run(asyncio.gather(*(tracked(i) for i in range(12))))

    asyncio.run(main())
    (t429,) = throttled_at
    after = [t for _, t in released if t > t429]
    assert len(released) == 12 and len(after) == 9
    assert all(t >= t429 + 5.0 for t in after)  # nobody went during the hold
    assert pacer.throttles == 1 and pacer.hold() == 0.0


def test_the_hold_is_reported_while_it_lasts() -> None:
    vt = VirtualTime()
    pacer = TeamsPacer(clock=vt.clock, sleep=vt.sleep)
    pacer.throttled(90.0)
    assert pacer.hold() == 90.0
    pacer.throttled(10.0)  # a shorter Retry-After does not shorten the hold
    assert pacer.hold() == 90.0


def test_idle_conversations_are_forgotten() -> None:
    vt = VirtualTime()
    pacer = TeamsPacer((Limit(7, 1.0, 7),), None, clock=vt.clock, sleep=vt.sleep)
    run_sends(vt, pacer, [(f"a:{i}", SEND) for i in range(100)])
    vt.slept += 10.0
    run_sends(vt, pacer, [("a:new", SEND)])
    assert len(pacer._conversations) == 1


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"retry-after": ["2.5"]}) == 2.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    found = retry_after({"Retry-After": later})
    assert found is not None and 25.0 <= found <= 30.0
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({}) is None and retry_after(None) is None
