"""Client-side pacing of proactive Teams sends to Microsoft's documented bot rate limits.

Microsoft Teams, "Optimize your bot with rate limiting in Teams"
(learn.microsoft.com/microsoftteams/platform/bots/how-to/rate-limit; read in the MicrosoftDocs/
msteams-docs source, msteams-platform/bots/how-to/rate-limit.md), "Per bot per thread limit":
"Send to conversation" and "Create conversation" each allow 7 operations per 1 s, 8 per 2 s,
60 per 30 s and 1800 per 3600 s in one conversation (1:1 chat, group chat or channel). "The global
limit per app per tenant is 30 Requests Per Second" (that page; Microsoft Q&A answers quote 50): we
pace every request of the bot to the lower figure, 30 a second. Past a limit Teams answers 429,
usually with `Retry-After`.

So every send first takes a slot here:
- the global budget (every send and create-conversation of the bot, whatever the conversation);
- the conversation's budgets (all four windows), kept per scenario ("send", "create");
- a global "blocked until" set by any 429's Retry-After: one 429 holds back every Teams sender in
  the process, because Teams does not say which limit it was.

The clock and the sleep are injected (tests: virtual time; bench: `adapters.pacing.scaled_time`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from typing import Any

from adapters.pacing import Budget, Clock, Limit, Sleep

SEND = "send"
CREATE = "create"
THREAD_LIMITS: tuple[Limit, ...] = (
    Limit(7, 1.0, 7),
    Limit(8, 2.0, 8),
    Limit(60, 30.0, 60),
    Limit(1800, 3600.0, 1800),
)
# Evenly spaced, no burst: the global cap is what a fan-out runs into, and a burst would only move
# the wait to the next second.
GLOBAL_LIMIT = Limit(30, 1.0, 1)
# Pace to limit / (1 + MARGIN): a request that leaves on time can reach Teams a little late.
MARGIN = 0.05
_EPSILON = 1e-9  # a clock that woke "at" a slot may read a rounding error short of it


class Conversation:
    """The budgets of one conversation and scenario: every window at once."""

    def __init__(self, limits: Sequence[Limit], margin: float) -> None:
        self.budgets = [Budget(limit, margin) for limit in limits]

    def next_slot(self, earliest: float) -> float:
        # Each budget only says "not before X", so the latest of them satisfies all.
        return max((b.next_slot(earliest) for b in self.budgets), default=earliest)

    def take(self, slot: float) -> None:
        for b in self.budgets:
            b.take(slot)

    def idle_since(self, now: float) -> bool:
        return all(b.idle_since(now) for b in self.budgets)


class TeamsPacer:
    """`acquire(conversation, scenario)` waits for the send's slot; `throttled(retry_after)` records
    a 429; `hold()` says how long every sender is still held back."""

    def __init__(
        self,
        thread_limits: Sequence[Limit] = THREAD_LIMITS,
        global_limit: Limit | None = GLOBAL_LIMIT,
        *,
        margin: float = MARGIN,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.thread_limits = tuple(thread_limits)
        self.margin = margin
        self.clock = clock
        self.sleep = sleep
        self.blocked_until = float("-inf")
        self.throttles = 0  # 429s recorded (for logs and the bench)
        self._global = Budget(global_limit, margin) if global_limit is not None else None
        # Least recently used first: a fan-out touches each DM once, so old ones are dropped from the
        # front once nothing they recorded constrains a send any more.
        self._conversations: OrderedDict[tuple[str, str], Conversation] = OrderedDict()

    def _conversation(self, key: tuple[str, str]) -> Conversation:
        now = self.clock()
        while self._conversations:
            oldest_key, oldest = next(iter(self._conversations.items()))
            if oldest_key == key or not oldest.idle_since(now):
                break
            del self._conversations[oldest_key]
        found = self._conversations.get(key)
        if found is None:
            found = self._conversations[key] = Conversation(self.thread_limits, self.margin)
        self._conversations.move_to_end(key)
        return found

    def hold(self) -> float:
        """Seconds until the last 429's Retry-After has passed (0 when no hold is on)."""
        return max(0.0, self.blocked_until - self.clock())

    async def acquire(self, conversation: str, scenario: str = SEND) -> None:
        """Waits until a send (or create-conversation) in `conversation` may go.

        First the conversation: wait, without taking anything, until it allows a call; then take the
        global slot and record that same slot on the conversation in one synchronous step, so a send
        that waits for its own conversation never holds the global budget (and the fan-out to other
        conversations) back. A 429 that arrives while we wait for our slot moves us behind it.
        """
        per_conversation = self._conversation((scenario, conversation))
        while True:
            now = self.clock()
            free = per_conversation.next_slot(max(now, self.blocked_until))
            if free - now > _EPSILON:
                await self.sleep(free - now)
                continue  # others may have taken the conversation, or a 429 come in, meanwhile
            slot = self._global.take(self._global.next_slot(now)) if self._global is not None else now
            per_conversation.take(slot)
            delay = slot - self.clock()
            if delay > 0:
                await self.sleep(delay)
            if self.blocked_until <= slot:
                return

    def throttled(self, retry_after: float) -> None:
        """Teams answered 429: no Teams send goes before `retry_after` seconds from now."""
        self.throttles += 1
        self.blocked_until = max(self.blocked_until, self.clock() + max(0.0, retry_after))


def retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date); None when missing or unreadable."""
    value = None
    for key, v in dict(headers or {}).items():
        if str(key).lower() == "retry-after":
            value = v[0] if isinstance(v, list | tuple) and v else v
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        return max(0.0, parsedate_to_datetime(str(value)).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


# Teams' limits belong to the bot (its app id), not to one notifier object: the server's notifier
# and any other built in the same process share one pacer. (Two replicas each pace to the full
# limit; the 429s they then get are still honoured.)
_PACERS: dict[str, TeamsPacer] = {}


def bot_pacer(app_id: str | None) -> TeamsPacer:
    key = app_id or ""
    pacer = _PACERS.get(key)
    if pacer is None:
        pacer = _PACERS[key] = TeamsPacer()
    return pacer
