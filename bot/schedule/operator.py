"""What operators see of the schedule: `pilotbot schedule` (per pilot: cadence, next check-in,
state, pending and undeliverable messages) and the undeliverable warning under `status`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.commands import WEEKDAYS
from bot.config import Settings
from bot.replies import Reply
from bot.schedule.plan import ACTIVE_STAGES, LOOKBACK, grace_of, next_checkin
from storage import outbox
from storage.db import session_scope
from storage.models import CheckIn, Escalation, Pilot


def undeliverable_line(last_errors: Sequence[str | None] | int) -> str | None:
    """Scheduled messages given up on (SPEC §5: visible in `status`), or None when there are none.
    Takes their last errors or just how many there are: only the count is shown."""
    n = last_errors if isinstance(last_errors, int) else len(last_errors)
    if not n:
        return None
    # The platform's error text stays in the log and `pilotbot schedule` (operators), not in chat.
    return (
        f"⚠️ {n} scheduled message(s) failed {outbox.MAX_ATTEMPTS} or more times and are retried "
        "hourly; `pilotbot schedule` shows why."
    )


def delivery_warning(engine: Engine) -> str | None:
    """One line for the portfolio `status` when scheduled messages failed for good (SPEC §5):
    one count statement, whatever the number of failed rows."""
    with session_scope(engine) as s:
        return undeliverable_line(outbox.undeliverable_count(s))


def with_delivery_warning(reply: Reply, engine: Engine) -> Reply:
    line = delivery_warning(engine)
    return replace(reply, lines=(*reply.lines, line)) if line else reply


@dataclass(frozen=True)
class ScheduleRow:
    slug: str
    owner: str | None
    cadence: str
    next_checkin: str  # local and UTC, or why there is none
    current: str  # state of the latest check-in
    pending: int  # outbox messages waiting
    undeliverable: int


def schedule_reply(rows: Sequence[ScheduleRow], now: datetime) -> Reply:
    lines = []
    for r in rows:
        owner = r.owner or "no owner"
        tail = f"; {r.pending} pending" if r.pending else ""
        tail += f"; ⚠️ {r.undeliverable} undeliverable" if r.undeliverable else ""
        lines.append(f"{r.slug}: {owner}, {r.cadence} — next {r.next_checkin}; {r.current}{tail}")
    if not rows:
        lines.append("No pilots yet.")
    return Reply(text=f"Scheduled work as of {now.strftime('%Y-%m-%d %H:%M')} UTC:", lines=tuple(lines))


def schedule(engine: Engine, settings: Settings, now: datetime) -> Reply:
    """`pilotbot schedule`: one line per pilot."""
    with session_scope(engine) as s:
        pilots = list(s.exec(select(Pilot).order_by(col(Pilot.slug))))
        latest: dict[int, CheckIn] = {}
        for c in s.exec(select(CheckIn).where(col(CheckIn.due_at) >= now - LOOKBACK).order_by(col(CheckIn.due_at))):
            latest[c.pilot_id] = c
        pending = Counter(e.pilot_id or 0 for e in s.exec(select(Escalation).where(col(Escalation.sent_at).is_(None))))
        bad_c, bad_e = outbox.undeliverable(s)
        bad = Counter([c.pilot_id for c in bad_c] + [e.pilot_id or 0 for e in bad_e])
        rows = []
        for p in pilots:
            assert p.id is not None
            rows.append(
                ScheduleRow(
                    slug=p.slug,
                    owner=f"@{p.owner_name or p.owner_id}" if p.owner_id else None,
                    cadence=f"{WEEKDAYS[p.checkin_weekday].capitalize()} {p.checkin_time} {p.checkin_tz}",
                    next_checkin=_next(p, now),
                    current=_checkin_state(latest.get(p.id), now, grace_of(settings)),
                    pending=pending[p.id],
                    undeliverable=bad[p.id],
                )
            )
        return schedule_reply(rows, now)


def _next(p: Pilot, now: datetime) -> str:
    if p.stage not in ACTIVE_STAGES:
        return f"none ({p.stage})"
    if p.owner_id is None:
        return "none (no owner)"
    at = next_checkin(p, now)
    if at is None:
        return "none"
    return f"{at.astimezone(ZoneInfo(p.checkin_tz)):%a %Y-%m-%d %H:%M} local ({at:%Y-%m-%d %H:%M} UTC)"


def _checkin_state(c: CheckIn | None, now: datetime, grace: timedelta) -> str:
    if c is None:
        return "no check-in yet"
    if c.answered_at:
        return f"{c.period} answered"
    if c.escalated_at:
        return f"{c.period} missed, escalated"
    if c.sent_at is None:
        err = f" (attempt {c.attempts} failed: {c.last_error})" if c.attempts else ""
        return f"{c.period} not sent yet{err}"
    if c.reminded_at:
        return f"{c.period} sent, reminded"
    return f"{c.period} sent, awaiting answer"
