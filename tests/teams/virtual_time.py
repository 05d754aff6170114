"""Pacer time for tests: it moves only when every Teams send in flight is asleep in the pacer.

A send that is talking to the connector (or the database) holds time still, so the connector's
clock reads exactly the slot the pacer gave that send: windows and Retry-After holds can be
checked at the connector without any real waiting. `base` lets pacer time follow a FixedClock
that the test moves by hand (the outbox's clock), on top of what the pacer slept.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class VirtualTime:
    def __init__(self, base: Callable[[], float] = lambda: 0.0) -> None:
        self.base = base
        self.slept = 0.0
        self.busy = 0  # tracked sends in flight
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._changed: asyncio.Event | None = None

    def clock(self) -> float:
        return self.base() + self.slept

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.clock() + seconds, next(self._seq), fut))
        self._poke()
        await fut

    def track(self, send: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        """`send`, counted while in flight (time stands still unless it is asleep in the pacer)."""

        @functools.wraps(send)
        async def tracked(*args: Any, **kwargs: Any) -> T:
            self.busy += 1
            try:
                return await send(*args, **kwargs)
            finally:
                self.busy -= 1
                self._poke()

        return tracked

    async def run(self, aw: Awaitable[T]) -> T:
        """Awaits `aw`, moving time to the next wake-up whenever every tracked send is asleep."""
        self._changed = asyncio.Event()
        task = asyncio.ensure_future(aw)
        while not task.done():
            live = [s for s in self._sleepers if not s[2].done()]
            if live and len(live) >= self.busy:
                heapq.heapify(live)
                target, _, fut = heapq.heappop(live)
                self._sleepers = live
                self.slept += max(0.0, target - self.clock())
                fut.set_result(None)
                await asyncio.sleep(0)
                continue
            self._changed.clear()
            waiter = asyncio.ensure_future(self._changed.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        return task.result()
