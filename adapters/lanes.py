"""Named, bounded thread pools ("lanes") so slow work never queues in front of an ack.

`asyncio.to_thread` shares the loop's default executor: six `/metrics` scrapes or App Home builds
there once pushed Slack acks and modal submits past Slack's 3 s window (issue 14). Portfolio-wide
reads (the portfolio page, App Home, `/metrics`, `GET /api/v1/pilots`) run in the `portfolio`
lane instead; whatever piles up there waits for its own two workers, never for the default pool
the chat handlers use.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

PORTFOLIO_WORKERS = 2

_lanes: dict[str, ThreadPoolExecutor] = {}


def lane(name: str, workers: int = PORTFOLIO_WORKERS) -> ThreadPoolExecutor:
    """The named pool, created on first use (one per process)."""
    pool = _lanes.get(name)
    if pool is None:
        pool = _lanes[name] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"lane-{name}")
    return pool


async def run_in(name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(lane(name), functools.partial(fn, *args, **kwargs))


async def portfolio(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs a portfolio-wide read in the portfolio lane."""
    return await run_in("portfolio", fn, *args, **kwargs)
