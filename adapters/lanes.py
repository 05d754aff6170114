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
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

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
