"""The parts of client-side pacing every platform shares: a rate limit, the reserved slots of one
budget, and an injected clock and sleep (adapters/slack/pacing.py, adapters/teams/pacing.py).

Slots are *reserved* synchronously (no await between reading and writing a budget), so concurrent
senders never race for one slot, and a budget can be shared by clients in different event loops.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Limit:
    """At most `calls` per `per` seconds; `burst` of them may go back to back after a quiet spell."""

    calls: int
    per: float = 60.0
    burst: int = 1

    def __post_init__(self) -> None:
        if self.calls < 1 or self.per <= 0 or not 1 <= self.burst <= self.calls:
            raise ValueError(f"a limit needs calls >= 1, per > 0 and 1 <= burst <= calls, got {self}")


class Budget:
    """The reserved slots of one limit: a GCRA spacing with a burst, plus the last `calls` slots so
    that no window of `per * (1 + margin)` seconds holds more than `calls`."""

    def __init__(self, limit: Limit, margin: float) -> None:
        self.window = limit.per * (1 + margin)
        self.interval = self.window / limit.calls
        self.burst = limit.burst
        self.tat = float("-inf")  # theoretical arrival time of the next call at the steady rate
        self.slots: deque[float] = deque(maxlen=limit.calls)

    def next_slot(self, earliest: float) -> float:
        """The first time at or after `earliest` this budget allows (nothing is taken)."""
        slot = max(earliest, self.tat - (self.burst - 1) * self.interval)
        if len(self.slots) == self.slots.maxlen:
            slot = max(slot, self.slots[0] + self.window)
        return slot

    def take(self, slot: float) -> float:
        """Records a call at `slot` (never earlier than the slots already taken)."""
        self.tat = max(self.tat, slot) + self.interval
        self.slots.append(slot)
        return slot

    def idle_since(self, now: float) -> bool:
        """Nothing recorded here constrains a call at `now` or later any more."""
        return not self.slots or self.slots[-1] + self.window <= now


def scaled_time(factor: float) -> tuple[Clock, Sleep]:
    """A clock running `factor` times faster than real time, and the sleep that goes with it:
    the benches replay per-minute (Slack) or per-second (Teams) limits faster than real time."""

    def clock() -> float:
        return time.monotonic() * factor

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds / factor)

    return clock, sleep
