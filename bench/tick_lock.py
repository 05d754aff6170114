"""A one-pilot write command while the scheduler's first tick rescores a 10,000-pilot portfolio.

On SQLite the write lock is the whole database's. The tick's rescoring used to be one transaction,
so a command that writes waited for the whole tick; now each batch of 500 pilots commits on its
own. Both are run here on copies of the same database, side by side: the tick's time and the
waits of a command (`threshold <slug> …`) sent every 50 ms meanwhile.

    .venv/bin/python bench/tick_lock.py pilotbot-10k.db

The database is only copied: build one with `bench/slack_commands.py --db pilotbot-10k.db`
(its scorecard marks are older than the clock, so a first tick rescores every pilot).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bot.schedule.plan as planning  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.core import build_core  # noqa: E402
from bot.ports import Actor  # noqa: E402


def measure(db: Path, batched: bool) -> tuple[float, list[float], Any]:
    settings = Settings(_env_file=None, database_url=f"sqlite:///{db}", pilotbot_scheduler=False)  # type: ignore[call-arg]
    core = build_core(settings)
    with core.engine.connect() as c:
        slug, owner = c.execute(sa.text("SELECT slug, owner_id FROM pilot WHERE owner_id IS NOT NULL LIMIT 1")).one()
    actor = Actor("slack", owner, "owner")
    waits: list[float] = []
    done = threading.Event()

    def writer() -> None:
        i = 0
        while not done.is_set():
            i += 1
            t = time.perf_counter()
            assert core.router.handle(f"threshold {slug} {80 + i % 10} min-cases 10", actor).ok
            waits.append(time.perf_counter() - t)
            time.sleep(0.05)

    real = planning.rescore_due

    def one_transaction(*args: Any, commit: Any = None, **kwargs: Any) -> int:
        return real(*args, **kwargs)  # the rescoring as before: no commit between batches

    planning.rescore_due = real if batched else one_transaction  # type: ignore[assignment]
    th = threading.Thread(target=writer)
    th.start()
    t0 = time.perf_counter()
    try:
        out = planning.plan(core.engine, core.settings, core.clock.now())
    finally:
        took = time.perf_counter() - t0
        done.set()
        th.join()
        planning.rescore_due = real
        core.engine.dispose()
    return took, waits, out


def main() -> None:
    source = Path(sys.argv[1])
    tmp = Path(tempfile.mkdtemp(prefix="pilotbot-tick-"))
    try:
        for name, batched in (("one transaction (before)", False), ("batch commits (now)", True)):
            db = tmp / f"{batched}.db"
            shutil.copyfile(source, db)
            took, waits, out = measure(db, batched)
            print(
                f"{name:25s}: tick {took:5.1f} s (rescored {out.rescored}, judged {out.judged}); "
                f"{len(waits)} writes meanwhile, median {statistics.median(waits) * 1000:6.0f} ms, "
                f"max {max(waits) * 1000:6.0f} ms"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
