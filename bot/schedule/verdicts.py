"""Each check-in's verdict, counted once for /metrics: missed, or answered on time.

The rule is `bot.gaps.is_missed` (the owner gap's), applied here in Python; nothing restates it in
SQL. A verdict is counted (storage/counters.py) in the same transaction as the event that decides it:

- the first answer (`count_answer`, from bot/services/checkin_answer.py) decides it at once, on time
  or late, unless the tick already counted it missed;
- the scheduler's tick (`judge_due`, from bot/schedule/plan.py): a check-in whose grace period
  ended unanswered is missed, whether or not it was ever sent (as the owner gap judges it).

Either stamps the check-in's `judged_at`, re-checked under the row lock, so the other never counts
it again. A check-in answered late after the tick counted it missed stays missed (and counts as
answered). `backfill` counts the check-ins stored before migration 0014_counters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.gaps import CheckInFacts, is_decided, is_missed
from storage import counters
from storage.db import session_scope
from storage.models import CheckIn

log = logging.getLogger(__name__)

BATCH = 5000


def count_answer(session: Session, checkin: CheckIn, now: datetime, grace: timedelta, first: bool) -> None:
    """In the answer's transaction, after the check-in is flushed: `first` is its first answer (a
    replacing answer changes no count: the first one decided the verdict)."""
    assert checkin.id is not None
    if not first or checkin.answered_at is None:
        return
    moved = {counters.CHECKINS_ANSWERED: 1}
    if counters.judge(session, [checkin.id], now):
        facts = CheckInFacts(checkin.due_at, checkin.answered_at)
        moved[counters.CHECKINS_MISSED if is_missed(facts, now, grace) else counters.CHECKINS_ON_TIME] = 1
    counters.bump(session, moved)


def count_written(
    session: Session, answered: Iterable[tuple[datetime, datetime]], now: datetime, grace: timedelta
) -> int:
    """Counts the verdicts of answered check-ins written without the answer (history stored before
    0014_counters, or loaded directly by the demo): (due_at, answered_at) pairs."""
    moved = {counters.CHECKINS_MISSED: 0, counters.CHECKINS_ON_TIME: 0}
    for due_at, answered_at in answered:
        late = is_missed(CheckInFacts(due_at, answered_at), now, grace)
        moved[counters.CHECKINS_MISSED if late else counters.CHECKINS_ON_TIME] += 1
    counters.bump(session, moved)
    return sum(moved.values())


def judge_due(session: Session, now: datetime, grace: timedelta, limit: int = BATCH) -> int:
    """The scheduler's step: counts missed up to `limit` unanswered check-ins whose verdict is due
    and not counted yet (the caller commits). Returns how many it counted."""
    # Only a check-in due `grace` ago can be decided without an answer; the bound narrows the read
    # (through the partial index of unanswered, unjudged rows), the rule decides each.
    rows = counters.unjudged(session, now - grace, limit)
    missed = [
        row_id
        for row_id, due_at in rows
        if is_decided(CheckInFacts(due_at, None), now, grace) and is_missed(CheckInFacts(due_at, None), now, grace)
    ]
    n = counters.judge(session, missed, now, unanswered=True)
    counters.bump(session, {counters.CHECKINS_MISSED: n})
    return n


def backfill(engine: Engine, now: datetime, grace: timedelta) -> int:
    """Counts the verdicts of the check-ins stored before 0014_counters: the answered ones in one
    pass (once: `take_backfill` hands their id range to one transaction), the unanswered ones past
    their grace with the tick's own step, a committed batch at a time. Once done: two small reads."""
    total = 0
    with session_scope(engine) as s:
        through = counters.take_backfill(s)
        if through:
            total += count_written(s, counters.answered(s, through), now, grace)
        s.commit()
    while True:
        with session_scope(engine) as s:
            n = judge_due(s, now, grace, limit=50_000)
            s.commit()
        total += n
        if n == 0:
            break
    if total:
        log.info("counted the verdicts of %d stored check-in(s) for /metrics", total)
    return total
