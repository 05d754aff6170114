"""Monotonic event counters (`metric_counter`): what `/metrics` reports as `_total` counters.

Each counter moves in the same transaction as the event it counts, so it is exactly as durable as
that event and a scrape reads a handful of rows instead of aggregating every check-in ever sent:

- `checkins_sent`: a check-in marked sent (storage/outbox.py, the delivery's mark);
- `checkins_answered`: a check-in's first answer (bot/services/checkin_answer.py);
- `checkins_missed` / `checkins_on_time`: a check-in's verdict, counted once (its `judged_at`) by
  bot/schedule/verdicts.py with the rule `bot.gaps.is_missed`;
- `escalations_sent:<kind>`: an outbox row marked sent, by kind.

An increment is one `INSERT ... ON CONFLICT DO UPDATE SET value = value + n`: atomic on SQLite (one
writer) and PostgreSQL (the row lock), so concurrent events never lose a count. Counters of one
transaction are taken in name order, so two transactions never wait on each other in a cycle.
Migration 0014_counters filled them from the rows that existed before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, col

from storage.models import CheckIn, Escalation, MetricCounter

CHECKINS_SENT = "checkins_sent"
CHECKINS_ANSWERED = "checkins_answered"
CHECKINS_MISSED = "checkins_missed"
CHECKINS_ON_TIME = "checkins_on_time"
ESCALATIONS_SENT = "escalations_sent:"  # + EscalationKind value
# Not a metric: the newest check-in id stored before 0014_counters (set by the migration), reset to 0
# by the one transaction that counts those check-ins' verdicts (`take_backfill`).
BACKFILL_THROUGH = "backfill:check_in_through"


def _upsert(session: Session) -> tuple[Any, Any]:
    """The counter table and this dialect's INSERT (which has ON CONFLICT)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return cast(Any, MetricCounter).__table__, insert


def bump(session: Session, counts: Mapping[str, int]) -> None:
    """Adds each count to its counter in the caller's transaction (zero counts are skipped)."""
    table, insert = _upsert(session)
    for name in sorted(k for k, v in counts.items() if v):
        stmt = insert(table).values(name=name, value=int(counts[name]))
        stmt = stmt.on_conflict_do_update(index_elements=["name"], set_={"value": table.c.value + stmt.excluded.value})
        session.execute(stmt)


def read(session: Session) -> dict[str, int]:
    return {str(n): int(v) for n, v in session.execute(sa.select(col(MetricCounter.name), col(MetricCounter.value)))}


def pending_retry(session: Session) -> int:
    """Check-ins and outbox rows whose last send failed and that wait for a retry: counted through
    the partial index `ix_check_in_retry` (only those rows) and `ix_escalation_sent_at` (unsent rows)."""
    q = sa.select(
        sa.select(sa.func.count())
        .select_from(CheckIn)
        .where(col(CheckIn.sent_at).is_(None), col(CheckIn.last_error).is_not(None))
        .scalar_subquery(),
        sa.select(sa.func.count())
        .select_from(Escalation)
        .where(col(Escalation.sent_at).is_(None), col(Escalation.last_error).is_not(None))
        .scalar_subquery(),
    )
    a, b = session.execute(q).one()
    return int(a or 0) + int(b or 0)


def take_backfill(session: Session) -> int:
    """The newest check-in id whose verdict the backfill still has to count (0: none). Resets it in
    the caller's transaction, re-checked under the row lock: one transaction gets it, once."""
    q = sa.select(col(MetricCounter.value)).where(col(MetricCounter.name) == BACKFILL_THROUGH)
    through = int(session.execute(q).scalar() or 0)
    if not through:
        return 0
    won = session.execute(
        sa.update(MetricCounter)
        .where(col(MetricCounter.name) == BACKFILL_THROUGH, col(MetricCounter.value) == through)
        .values(value=0)
    )
    return through if getattr(won, "rowcount", 0) else 0


def unjudged(session: Session, due_by: datetime, limit: int) -> list[tuple[int, datetime]]:
    """Unanswered check-ins without a counted verdict, due at or before `due_by`, oldest first (read
    through the partial index `ix_check_in_unjudged_due`, which holds only those rows)."""
    q = (
        sa.select(col(CheckIn.id), col(CheckIn.due_at))
        .where(col(CheckIn.judged_at).is_(None), col(CheckIn.answered_at).is_(None), col(CheckIn.due_at) <= due_by)
        .order_by(col(CheckIn.due_at), col(CheckIn.id))
        .limit(limit)
    )
    return [(int(i), due) for i, due in session.execute(q)]


def answered(session: Session, through_id: int, batch: int = 10_000) -> Iterator[tuple[datetime, datetime]]:
    """(due_at, answered_at) of every answered check-in up to `through_id`, streamed (the backfill)."""
    q = sa.select(col(CheckIn.due_at), col(CheckIn.answered_at)).where(
        col(CheckIn.answered_at).is_not(None), col(CheckIn.id) <= through_id
    )
    return ((due, at) for due, at in session.execute(q.execution_options(yield_per=batch)))


def judge(session: Session, ids: Sequence[int], now: datetime, unanswered: bool = False) -> int:
    """Stamps `judged_at` on those of `ids` not judged yet (and, with `unanswered`, still unanswered);
    how many this call stamped. The WHERE is re-checked under the row lock, so a verdict another
    transaction counted first (the answer, another replica's tick) is not counted again."""
    if not ids:
        return 0
    where = [col(CheckIn.id).in_(list(ids)), col(CheckIn.judged_at).is_(None)]
    if unanswered:
        where.append(col(CheckIn.answered_at).is_(None))
    won = session.execute(sa.update(CheckIn).where(*where).values(judged_at=now).returning(col(CheckIn.id)))
    return len(won.all())
