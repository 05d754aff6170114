"""Concurrent requests for the same read share one run of it, and no answer is older than its request.

Six Prometheus servers scraping `/metrics` at once rendered it six times side by side; on two cores
those renders held the GIL that a Slack modal submit needed for its ack. Here a request joins the
run that has not started yet, or starts one: it never takes the result of a run that began before
it arrived (that run may have read the database before a write the caller has already seen
committed). So at most one run is in progress and one waits, whatever the number of callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Coalesced(Generic[T]):
    def __init__(self, run: Callable[[], Awaitable[T]]) -> None:
        self._run = run
        self._waiting: asyncio.Task[T] | None = None  # the next run; callers arriving now join it
        self._running: asyncio.Task[T] | None = None

    async def __call__(self) -> T:
        if self._waiting is None:
            self._waiting = asyncio.ensure_future(self._next())
        # shield: one caller going away (a client that hung up) does not cancel the others' run
        return await asyncio.shield(self._waiting)

    async def _next(self) -> T:
        me = self._waiting
        previous = self._running
        if previous is not None:
            await asyncio.wait([previous])  # its failure is its own callers' to see
        # From here on, a new caller needs a run that starts after it: the next one.
        self._waiting, self._running = None, me
        try:
            return await self._run()
        finally:
            if self._running is me:
                self._running = None
