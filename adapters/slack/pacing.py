"""Client-side pacing of Slack Web API calls to Slack's published rate tiers.

Slack limits each Web API method per app per workspace (its "tiers", per minute) and
`chat.postMessage` also to about one message a second per channel; past a limit it answers 429
with `Retry-After` (seconds). A fan-out of thousands of check-ins must stay under those limits
instead of finding them by bursts of 429s, so every call the bot makes first takes a slot here:

- a budget per method: at most `calls` in any window of `per` seconds (stretched by `margin`, so
  network jitter cannot push two windows' worth into one of Slack's), handed out as a short burst
  (`burst`) then evenly spaced. Slots are *reserved* synchronously (no lock, no await between
  reading and writing the state), so concurrent callers never race, and one Pacer can be shared
  by clients running in different event loops (the bench runs one loop per round);
- a per-channel spacing for `chat.postMessage` (one a second per channel);
- a "blocked until" per method, set by any 429's `Retry-After`: one 429 holds back every sender
  of that method in the process, not just the one that got it. Slack does not say whether a
  `chat.postMessage` 429 was the channel's or the workspace's limit, so the whole method waits.

The clock and the sleep are injected: tests run on a fake time source, the bench on a scaled one
(`scaled_time`). Limits are constants below; tests and benches pass their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from adapters.pacing import Budget, Clock, Limit, Sleep, scaled_time

__all__ = ["Clock", "Limit", "Pacer", "Sleep", "scaled_limits", "scaled_time", "tier"]


def tier(per_minute: int) -> Limit:
    """A Slack tier: `per_minute` calls a minute, a tenth of them allowed as a burst (interactive
    calls such as a few users.info lookups for one command should not be spaced out)."""
    return Limit(per_minute, 60.0, max(1, per_minute // 10))


# Slack's documented tiers (api.slack.com/apis/rate-limits): Tier 2 20+/min, Tier 3 50+/min,
# Tier 4 100+/min. We pace to the floor of each tier.
TIER_2 = 20
TIER_3 = 50
TIER_4 = 100
# chat.postMessage is "special": about one a second per channel, plus a workspace-wide cap that
# Slack does not publish; "several hundred a minute" is what its docs and support answers imply.
# 600/min (10/s) is our working figure: a 429 past it is still honoured globally.
CHAT_POST_PER_MINUTE = 600
CHAT_POST_PER_CHANNEL = Limit(1, 1.0)

METHOD_LIMITS: dict[str, Limit] = {
    "conversations.open": tier(TIER_3),
    "conversations.history": tier(TIER_3),
    "chat.update": tier(TIER_3),
    "users.info": tier(TIER_4),
    "chat.postEphemeral": tier(TIER_4),
    "views.open": tier(TIER_4),
    "views.update": tier(TIER_4),
    "views.publish": tier(TIER_4),
    "files.getUploadURLExternal": tier(TIER_4),
    "files.completeUploadExternal": tier(TIER_4),
    "users.list": tier(TIER_2),
    "chat.postMessage": tier(CHAT_POST_PER_MINUTE),
}
CHANNEL_LIMITS: dict[str, Limit] = {"chat.postMessage": CHAT_POST_PER_CHANNEL}
# Pace to limit / (1 + MARGIN): a request that leaves on time can still reach Slack a little late
# (event loop, network), and a rolling window counts arrivals.
MARGIN = 0.05
# A channel spacing entry older than this many seconds can go (it constrains nothing any more).
_CHANNEL_PRUNE_AT = 4096


class Pacer:
    """Hands out send slots per Slack method (and per channel), and holds a method back after a 429.

    `acquire(method, channel)` waits for the slot; `throttled(method, retry_after)` records a 429.
    Methods without a limit are not spaced, but still wait out a 429 on them.
    """

    def __init__(
        self,
        limits: Mapping[str, Limit] | None = None,
        channel_limits: Mapping[str, Limit] | None = None,
        *,
        margin: float = MARGIN,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limits = dict(METHOD_LIMITS if limits is None else limits)
        self.channel_limits = dict(CHANNEL_LIMITS if channel_limits is None else channel_limits)
        self.margin = margin
        self.clock = clock
        self.sleep = sleep
        self.blocked_until: dict[str, float] = {}
        self.throttles = 0  # 429s recorded (for logs and the bench)
        self._methods: dict[str, Budget] = {}
        self._channels: dict[tuple[str, str], Budget] = {}

    def reserve(self, method: str) -> float:
        """The clock time at which a call of `method` may go (now or later); the slot is taken.
        Slots only move forward (now and `blocked_until` never go back), so the budget's record
        of the last slots stays in order."""
        now = self.clock()
        slot = max(now, self.blocked_until.get(method, now))
        limit = self.limits.get(method)
        if limit is None:
            return slot
        budget = self._methods.get(method)
        if budget is None:
            budget = self._methods[method] = Budget(limit, self.margin)
        return budget.take(budget.next_slot(slot))

    def _channel_budget(self, method: str, channel: str | None) -> Budget | None:
        limit = self.channel_limits.get(method)
        if limit is None or not channel:
            return None
        key = (method, channel)
        budget = self._channels.get(key)
        if budget is None:
            if len(self._channels) >= _CHANNEL_PRUNE_AT:  # a fan-out touches each DM once: forget old ones
                now = self.clock()
                for k in [k for k, b in self._channels.items() if b.tat <= now]:
                    del self._channels[k]
            budget = self._channels[key] = Budget(limit, self.margin)
        return budget

    async def acquire(self, method: str, channel: str | None = None) -> None:
        """Waits until this call may go.

        First the channel (if the method has a per-channel limit): wait, without taking anything,
        until the channel allows a call; then take the method's slot and record that same slot
        on the channel in one synchronous step, so a call that waits for its channel never holds
        a method slot (and the fan-out to other channels) back. A 429 that arrives while we wait
        for our slot moves us behind it.
        """
        per_channel = self._channel_budget(method, channel)
        while True:
            now = self.clock()
            if per_channel is not None:
                free = per_channel.next_slot(now)
                if free > now:
                    await self.sleep(free - now)
                    continue  # someone else may have taken the channel meanwhile: look again
            slot = self.reserve(method)
            if per_channel is not None:
                per_channel.take(slot)
            delay = slot - self.clock()
            if delay > 0:
                await self.sleep(delay)
            if self.blocked_until.get(method, float("-inf")) <= slot:
                return

    def throttled(self, method: str, retry_after: float) -> None:
        """Slack answered 429: nobody sends `method` again before `retry_after` seconds from now."""
        self.throttles += 1
        until = self.clock() + max(0.0, retry_after)
        self.blocked_until[method] = max(self.blocked_until.get(method, until), until)


def scaled_limits(limits: Mapping[str, Limit], factor: float) -> dict[str, Limit]:
    """`limits` with `factor` times the calls (and burst) per window: a Slack that allows more."""
    if factor <= 0:
        raise ValueError(f"a rate limit factor must be above 0, got {factor}")
    return {
        m: Limit(max(1, round(x.calls * factor)), x.per, max(1, min(round(x.burst * factor), round(x.calls * factor))))
        for m, x in limits.items()
    }
