"""Two worker lanes so that what must answer inside Slack's 3 seconds never queues behind bulk work.

`asyncio.to_thread` shares the loop's one default pool with everything (REST reads, `/metrics`
scrapes, the delivery fan-out): under load an ack-path read waited behind App Home portfolio
builds and went out after 3 s. Here:

- `fast`: a small dedicated pool for acks and interactive handlers (the modal submit, the check-in
  button's form read, a one-pilot command). Only short, single-pilot work may run here.
- `bulk`: a separate pool for portfolio builds (App Home, `status` without a slug) and other
  many-pilot work, so a burst of them cannot take the fast lane's threads.

The default pool stays for the rest (REST, scrapes, delivery). A bench of the mixed 10,000-pilot
load is bench/'s business; these are the lanes it measures.

The `portfolio` lane (module functions below) holds the portfolio-wide reads of issue 14:
`/metrics`, `GET /api/v1/pilots`, the trend; App Home runs there too.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

FAST_WORKERS = 4  # each interactive request holds one thread for a few milliseconds of SQL
BULK_WORKERS = 2  # portfolio builds are CPU-bound on 2 cores: more threads only add contention


class Lanes:
    def __init__(self, fast_workers: int = FAST_WORKERS, bulk_workers: int = BULK_WORKERS) -> None:
        self._fast = ThreadPoolExecutor(max_workers=fast_workers, thread_name_prefix="pilotbot-fast")
        self._bulk = ThreadPoolExecutor(max_workers=bulk_workers, thread_name_prefix="pilotbot-bulk")

    async def fast(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._fast, functools.partial(fn, *args, **kwargs))

    async def bulk(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._bulk, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._fast.shutdown(wait=False, cancel_futures=True)
        self._bulk.shutdown(wait=False, cancel_futures=True)



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
