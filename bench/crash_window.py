"""How narrow is the duplicate window? SIGKILL `pilotbot serve` at a random moment of a fan-out
(no gate: the kill may land between "Slack accepted" and "sent_at committed"), restart, and count
owners who got the check-in twice. The deterministic crash test (tests/schedule/test_processes.py)
kills outside that window; this measures what a kill inside it costs.

    .venv/bin/python bench/crash_window.py [--n 1000] [--kills 10] [--delay 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage.db import make_engine, upgrade  # noqa: E402
from tests.schedule.fake import DeliveryFake  # noqa: E402
from tests.schedule.seed import seed_due_pilots, sent_count  # noqa: E402
from tests.schedule.test_processes import _serve, _stop, _until  # noqa: E402


async def one(n: int, delay: float, rng: random.Random) -> tuple[int, int, int]:
    tmp = Path(tempfile.mkdtemp(prefix="crashwin-"))
    url = f"sqlite:///{tmp}/db.sqlite"
    engine = make_engine(url)
    upgrade(engine)
    seed_due_pilots(engine, n)
    fake = await DeliveryFake(delay=delay).start()
    try:
        target = rng.randint(n // 5, 4 * n // 5)
        proc = await _serve(url, fake.api_url, tmp)
        await _until(lambda: len(fake.delivered) >= target, 120, "kill point")
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        at_kill = len(fake.delivered)
        proc = await _serve(url, fake.api_url, tmp)
        try:
            await _until(lambda: sent_count(engine) == (n, n), 120, "all sent")
        finally:
            await _stop(proc)
        counts = Counter(fake.delivered)
        dupes = sum(k - 1 for k in counts.values())
        assert len(counts) == n, "lost messages"
        return at_kill, dupes, len(fake.delivered)
    finally:
        await fake.stop()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args()
    rng = random.Random(42)
    total = 0
    for i in range(args.kills):
        at_kill, dupes, delivered = asyncio.run(one(args.n, args.delay, rng))
        total += dupes
        print(f"kill {i + 1}: killed after {at_kill} accepted; duplicates {dupes}; none lost", flush=True)
    print(
        f"{args.kills} random SIGKILLs, {args.n} check-ins each, concurrency 16, latency {args.delay * 1000:.0f} ms: "
        f"{total} duplicates in total ({total / args.kills:.1f} per kill), 0 lost"
    )


if __name__ == "__main__":
    main()
