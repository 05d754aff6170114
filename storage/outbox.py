"""Claim / mark statements for scheduled messages (check-ins and escalation-outbox rows).

The exactly-once protocol (SPEC §5), used by bot/schedule/deliver.py (the package's map is
bot/schedule/__init__.py):

1. A row exists once per (pilot, period) or per dedupe key: inserted with ON CONFLICT DO NOTHING,
   so a second planner (another tick, another replica) simply loses.
2. Claim: one conditional `UPDATE ... SET claimed_at = now WHERE id IN (...) AND sent_at IS NULL AND
   (claimed_at IS NULL OR claimed_at < now - lease) ... RETURNING id`. Only ids the UPDATE returns
   belong to this process; the WHERE is re-checked under the row lock, so two replicas can never
   both win a row, on SQLite or PostgreSQL.
3. Send through the Notifier, then mark: `UPDATE ... SET sent_at = now WHERE id = ? AND sent_at IS NULL`.

Why SKIP LOCKED on PostgreSQL (and not an advisory lock for the whole tick): correctness already
comes from step 2; `SELECT ... FOR UPDATE SKIP LOCKED` only makes replicas pick *different*
candidates instead of queueing on each other's row locks and then losing the re-check. Both
replicas therefore send in parallel, and a replica that dies mid-tick blocks nothing (its claims
expire after the lease), whereas a tick-wide advisory lock would serialise all delivery on one
process. SQLite has one writer at a time and ignores FOR UPDATE; step 2 alone decides there.

The one window where a duplicate remains possible: the process dies (SIGKILL, power loss, the
database unreachable) after the platform accepted a message and before its `sent_at` UPDATE
committed. That window is the read of the HTTP response plus the group commit the mark joins
(bot/schedule/deliver.py `GroupCommit`: at most the commit already running plus its own, milliseconds),
it affects only the messages inside it at that instant (at most the send concurrency), and the
duplicate goes out only after the lease expires. Chat.postMessage has no idempotency key; for Slack
check-ins the window is closed after the fact: a row whose claim lapsed is first looked up in the
DM history (adapters/slack/notifier.py `SlackDeliveryCheck`, needs the `im:history` scope) and recorded
instead of resent when it is there. It stays open for outbox rows (reminders, escalations, eval
alerts, digests), Teams, Slack without `im:history`, and a send cut off by its timeout. Measured
with random SIGKILLs (bench/crash_window.py, 1,000 DMs, concurrency 16, 50 ms latency): 3.8
duplicates per kill without the history check, 0 with it. A clean shutdown (SIGTERM) lets claimed
sends finish and be marked first (`Delivery.close`). Sends are cut off at 0.8 x lease, so a slow
send is never re-claimed while it is still running.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, col

from storage import counters
from storage.models import CheckIn, Escalation, Pilot, Stage

# After this many failed sends a message is reported undeliverable (logged, shown in `status` and
# `schedule`). It is still retried at the capped backoff (hourly), so an outage loses nothing.
MAX_ATTEMPTS = 6


def _pending(model: Any, now: datetime, lease: timedelta) -> sa.ColumnElement[bool]:
    return sa.and_(
        col(model.sent_at).is_(None),
        sa.or_(col(model.next_attempt_at).is_(None), col(model.next_attempt_at) <= now),
        sa.or_(col(model.claimed_at).is_(None), col(model.claimed_at) < now - lease),
    )


def _claim(
    session: Session, model: Any, where: sa.ColumnElement[bool], order: Any, now: datetime, limit: int
) -> dict[int, datetime | None]:
    """Claimed ids -> the claim they had before (not None: a claim that lapsed, e.g. a crash)."""
    pick = sa.select(col(model.id), col(model.claimed_at)).where(where).order_by(order).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    before = {r[0]: r[1] for r in session.execute(pick)}
    if not before:
        session.commit()
        return {}
    won = session.execute(
        sa.update(model).where(col(model.id).in_(before), where).values(claimed_at=now).returning(col(model.id))
    )
    out = {r[0]: before[r[0]] for r in won}
    session.commit()
    return dict(sorted(out.items()))


def claim_checkins(
    session: Session, now: datetime, lease: timedelta, platforms: Sequence[str], limit: int
) -> dict[int, datetime | None]:
    """Due, unanswered, unsent check-ins of running pilots whose owner is on a platform we can send
    to. A check-in planned before a pause (still pending, e.g. in backoff) is not sent while the
    pilot is paused or retired, nor after `resume`: a resumed pilot starts at its next cadence
    moment, with no backlog (SPEC §8)."""
    if not platforms:
        return {}
    running = sa.select(col(Pilot.id)).where(
        col(Pilot.stage).in_([Stage.pilot.value, Stage.production.value]),
        sa.or_(col(Pilot.resumed_at).is_(None), col(Pilot.resumed_at) <= col(CheckIn.due_at)),
    )
    where = sa.and_(
        _pending(CheckIn, now, lease),
        col(CheckIn.answered_at).is_(None),
        col(CheckIn.due_at) <= now,
        sa.or_(*[col(CheckIn.owner_ref).like(f"{p}:%") for p in platforms]),
        col(CheckIn.pilot_id).in_(running),
    )
    return _claim(session, CheckIn, where, col(CheckIn.due_at), now, limit)


def claim_escalations(
    session: Session, now: datetime, lease: timedelta, limit: int, ids: Sequence[int] | None = None
) -> list[int]:
    """Pending outbox rows; `ids`: only those (a change delivering the rows it just created)."""
    where = _pending(Escalation, now, lease)
    if ids is not None:
        where = sa.and_(where, col(Escalation.id).in_(list(ids)))
    return list(_claim(session, Escalation, where, col(Escalation.id), now, limit))


def mark_sent(session: Session, model: Any, row_id: int, now: datetime, **values: Any) -> bool:
    """Marks one row sent and counts it (storage/counters.py) in the same transaction."""
    kind = col(Escalation.kind) if model is Escalation else col(model.id)
    won = session.execute(
        sa.update(model)
        .where(col(model.id) == row_id, col(model.sent_at).is_(None))
        .values(sent_at=now, claimed_at=None, last_error=None, next_attempt_at=None, **values)
        .returning(kind)
    ).all()
    if won:
        name = f"{counters.ESCALATIONS_SENT}{won[0][0]}" if model is Escalation else counters.CHECKINS_SENT
        counters.bump(session, {name: 1})
    session.commit()
    return bool(won)


def backoff(attempts: int, base: float = 30.0) -> timedelta:
    """One tick, then 2, 4, 8 ... ticks (30 s, 1 min, 2 min ... with the default tick), capped at 1 h."""
    return timedelta(seconds=min(3600.0, base * 2 ** max(0, attempts - 1)))


def mark_failed(
    session: Session, model: Any, row_id: int, now: datetime, error: str, base: float = 30.0, not_before: float = 0.0
) -> int:
    """Release the claim and schedule the retry (the backoff, and at least `not_before` seconds: a
    platform's Retry-After); returns the attempt count."""
    row = session.get(model, row_id)
    if row is None:
        return 0
    attempts = row.attempts + 1
    session.execute(
        sa.update(model)
        .where(col(model.id) == row_id, col(model.sent_at).is_(None))
        .values(
            attempts=attempts,
            last_error=error[:500],
            claimed_at=None,
            next_attempt_at=now + max(backoff(attempts, base), timedelta(seconds=not_before)),
        )
    )
    session.commit()
    return int(attempts)


def insert_ignore(session: Session, model: Any, rows: list[dict[str, Any]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING: a row that already exists under its unique key wins."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(model).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(model).on_conflict_do_nothing()
    res = session.execute(stmt, rows)
    return int(getattr(res, "rowcount", 0) or 0)


def insert_ignore_id(session: Session, model: Any, row: dict[str, Any]) -> int | None:
    """One row with ON CONFLICT DO NOTHING; its new id, or None when its unique key was taken
    (by an earlier change, or a concurrent one: PostgreSQL waits for that one to commit)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(model).values(**row).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(model).values(**row).on_conflict_do_nothing()
    new_id = session.execute(stmt.returning(col(model.id))).scalar()
    return int(new_id) if new_id is not None else None


def undeliverable(session: Session) -> tuple[list[CheckIn], list[Escalation]]:
    from sqlmodel import select

    checkins = session.exec(
        select(CheckIn).where(col(CheckIn.sent_at).is_(None), col(CheckIn.attempts) >= MAX_ATTEMPTS)
    ).all()
    escs = session.exec(
        select(Escalation).where(col(Escalation.sent_at).is_(None), col(Escalation.attempts) >= MAX_ATTEMPTS)
    ).all()
    return list(checkins), list(escs)


def _unsent_failed(model: Any) -> Any:
    where = (col(model.sent_at).is_(None), col(model.attempts) >= MAX_ATTEMPTS)
    return sa.select(sa.func.count()).select_from(model).where(*where).scalar_subquery()


# Built once: `status` runs it on every portfolio read.
_UNDELIVERABLE = sa.select(_unsent_failed(CheckIn) + _unsent_failed(Escalation))


def undeliverable_count(session: Session) -> int:
    """How many scheduled messages were given up on, in one statement over the partial indexes
    ix_check_in_unsent_attempts and ix_escalation_unsent_attempts (no row reaches Python)."""
    return int(session.connection().execute(_UNDELIVERABLE).scalar() or 0)


def mark_sent_many(session: Session, model: Any, refs: Sequence[tuple[int, dict[str, Any]]], now: datetime) -> int:
    """Group commit: mark several sent check-ins in one transaction (one executemany UPDATE), and
    count them. Outbox rows are marked one by one (`mark_sent`), with their kind."""
    if model is not CheckIn:
        raise ValueError("mark_sent_many marks check-ins")
    if not refs:
        return 0
    table = cast(Any, CheckIn).__table__
    stmt = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("row_id"), table.c.sent_at.is_(None))
        .values(sent_at=now, claimed_at=None, last_error=None, next_attempt_at=None, message_ref=sa.bindparam("ref"))
    )
    res = session.connection().execute(stmt, [{"row_id": i, "ref": ref} for i, ref in refs])
    # Summed over the executemany (both dialects report it): rows another process marked first
    # (a lapsed claim) are not counted twice.
    marked = int(res.rowcount or 0)
    counters.bump(session, {counters.CHECKINS_SENT: marked})
    session.commit()
    return marked


def last_dm_channels(session: Session, owner_refs: Sequence[str]) -> dict[str, str]:
    """The conversation each owner's newest sent check-in went to (its stored `MessageRef`), if any."""
    if not owner_refs:
        return {}
    ranked = (
        sa.select(
            col(CheckIn.owner_ref),
            col(CheckIn.message_ref),
            sa.func.row_number()
            .over(partition_by=col(CheckIn.owner_ref), order_by=col(CheckIn.sent_at).desc())
            .label("rn"),
        )
        .where(col(CheckIn.owner_ref).in_(owner_refs), col(CheckIn.sent_at).is_not(None))
        .subquery()
    )
    out: dict[str, str] = {}
    for ref, message_ref, _ in session.execute(sa.select(ranked).where(ranked.c.rn == 1)):
        # `conversation` (bot.ports.MessageRef); `channel` in rows stored before it (Slack)
        channel = (message_ref or {}).get("conversation") or (message_ref or {}).get("channel")
        if channel:
            out[str(ref)] = str(channel)
    return out
