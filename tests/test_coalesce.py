"""adapters/coalesce.py: concurrent callers share a run; none gets a run that began before it came."""

from __future__ import annotations

import asyncio

import pytest

from adapters.coalesce import Coalesced


class Source:
    """A read whose answer is the number of writes it saw when it started; `gate` holds it open."""

    def __init__(self) -> None:
        self.writes = 0
        self.runs = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_next = False

    async def read(self) -> int:
        self.runs += 1
        seen = self.writes
        await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database went away")
        return seen


async def test_callers_arriving_together_share_one_run() -> None:
    src = Source()
    read = Coalesced(src.read)
    got = await asyncio.gather(*(read() for _ in range(6)))
    assert got == [0] * 6 and src.runs == 1


async def test_a_caller_arriving_during_a_run_waits_for_the_next_and_sees_every_earlier_write() -> None:
    src = Source()
    read = Coalesced(src.read)
    src.gate.clear()
    early = [asyncio.ensure_future(read()) for _ in range(3)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the first run has started and read writes == 0
    assert src.runs == 1
    src.writes = 1  # committed before the next callers arrive
    late = [asyncio.ensure_future(read()) for _ in range(4)]
    await asyncio.sleep(0)
    assert src.runs == 1  # the next run waits for the first: one in progress at a time
    src.gate.set()
    assert await asyncio.gather(*early) == [0, 0, 0]
    assert await asyncio.gather(*late) == [1, 1, 1, 1]
    assert src.runs == 2
    src.writes = 2
    assert await read() == 2 and src.runs == 3  # nothing in flight: a fresh run


async def test_a_failed_run_fails_only_its_own_callers() -> None:
    src = Source()
    read = Coalesced(src.read)
    src.gate.clear()
    src.fail_next = True
    first = [asyncio.ensure_future(read()) for _ in range(2)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    second = asyncio.ensure_future(read())
    src.gate.set()
    for f in first:
        with pytest.raises(RuntimeError):
            await f
    assert await second == 0


async def test_a_caller_that_goes_away_does_not_cancel_the_others() -> None:
    src = Source()
    read = Coalesced(src.read)
    src.gate.clear()
    leaving, staying = asyncio.ensure_future(read()), asyncio.ensure_future(read())
    await asyncio.sleep(0)
    leaving.cancel()
    await asyncio.sleep(0)
    src.gate.set()
    assert await staying == 0
    with pytest.raises(asyncio.CancelledError):
        await leaving
