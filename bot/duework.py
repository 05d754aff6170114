"""Which scheduled work is due (SPEC §5). Pure over (database, settings, now): no sleeping, no I/O
beyond the database, no platform code. bot/delivery.py sends what this module plans.

Planning only *creates rows* under unique keys; sending is a separate claim/send/mark step
(storage/outbox.py). So planning can run on every tick, on every replica, any number of times:

- check-in: one `CheckIn` per (pilot, period), period = ISO week in the pilot's zone, for the most
  recent cadence moment, only if that moment is after the owner was set (`owner_since`);
- reminder: 24 h after the due time, unanswered -> outbox row `remind:<pilot>:<period>`;
- missed review: grace passed, unanswered -> `missed:<pilot>:<period>` (escalation channel + owner);
- no owner: once per cadence week -> `noowner:<pilot>:<period>` to the escalation channel;
- digest: Monday 09:00 in PILOTBOT_TIMEZONE -> `digest:<platform>:<channel>:<period>`.
Eval alerts are created by `Services.record_eval` (`eval:<run id>`); delivery picks them up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.cadence import latest_due, next_due, period_of
from bot.config import Settings
from bot.forms import build_checkin_form
from bot.gaps import is_missed
from bot.nudges import (
    DigestFacts,
    ScheduleRow,
    digest_reply,
    eval_alert_reply,
    missed_channel_reply,
    missed_owner_reply,
    no_owner_reply,
    owner_unreachable_reply,
    reminder_reply,
    schedule_reply,
)
from bot.replies import Reply
from bot.reports import PilotReport, pilot_report, portfolio
from bot.views import checkin_prompt, undeliverable_line, weekday_name
from storage import outbox
from storage.db import session_scope
from storage.models import CheckIn, Escalation, EscalationKind, Pilot, Stage

REMIND_AFTER = timedelta(hours=24)
LOOKBACK = timedelta(days=21)  # older unanswered check-ins are history, not news
ACTIVE_STAGES = (Stage.pilot.value, Stage.production.value)  # paused/retired pilots are not nudged
DIGEST_WEEKDAY, DIGEST_TIME = 0, "09:00"


@dataclass
class Planned:
    checkins: int = 0
    reminders: int = 0
    missed: int = 0
    no_owner: int = 0
    digests: int = 0


def grace_of(settings: Settings) -> timedelta:
    return timedelta(hours=settings.pilotbot_checkin_grace_hours)


def owner_ref(p: Pilot) -> str | None:
    return f"{p.owner_platform}:{p.owner_id}" if p.owner_id else None


def current_due(p: Pilot, now: datetime) -> datetime | None:
    """The check-in moment due now: the latest cadence moment, if it is after the owner was set."""
    if p.owner_id is None:
        return None
    due = latest_due(p.checkin_weekday, p.checkin_time, p.checkin_tz, now)
    since = p.owner_since or p.created_at
    return due if due > since else None


def next_checkin(p: Pilot, now: datetime) -> datetime | None:
    if p.owner_id is None:
        return None
    since = p.owner_since or p.created_at
    return next_due(p.checkin_weekday, p.checkin_time, p.checkin_tz, max(now, since))


def digest_channels(settings: Settings) -> list[tuple[str, str]]:
    """`slack:C0123,teams:19:abc@thread.tacv2` -> [("slack", "C0123"), ("teams", "19:abc@thread.tacv2")]."""
    out = []
    for part in settings.pilotbot_digest_channel.split(","):
        platform, _, channel = part.strip().partition(":")
        if platform and channel:
            out.append((platform, channel))
    return out


def plan(engine: Engine, settings: Settings, now: datetime) -> Planned:
    """Create every row that is due at `now`; idempotent and safe to run concurrently."""
    out = Planned()
    with session_scope(engine) as s:
        pilots = list(s.exec(select(Pilot).where(col(Pilot.stage).in_(ACTIVE_STAGES))))
        out.checkins = _plan_checkins(s, pilots, now)
        out.no_owner = _plan_no_owner(s, pilots, now)
        s.commit()
        out.reminders = _plan_followups(s, settings, now, reminder=True)
        out.missed = _plan_followups(s, settings, now, reminder=False)
        out.digests = _plan_digest(s, settings, now)
        s.commit()
    return out


def _plan_checkins(s: Session, pilots: list[Pilot], now: datetime) -> int:
    existing = set(
        s.execute(
            sa.select(col(CheckIn.pilot_id), col(CheckIn.period)).where(col(CheckIn.due_at) >= now - timedelta(days=8))
        ).all()
    )
    rows: list[dict[str, Any]] = []
    for p in pilots:
        due = current_due(p, now)
        if due is None:
            continue
        period = period_of(due, p.checkin_tz)
        if (p.id, period) in existing:
            continue
        rows.append({"pilot_id": p.id, "period": period, "owner_ref": owner_ref(p), "due_at": due, "attempts": 0})
    return outbox.insert_ignore(s, CheckIn, rows)


def _plan_no_owner(s: Session, pilots: list[Pilot], now: datetime) -> int:
    rows: list[dict[str, Any]] = []
    for p in pilots:
        if p.owner_id is not None or p.escalation_channel_id is None:
            continue  # without a channel the digest says it
        due = latest_due(p.checkin_weekday, p.checkin_time, p.checkin_tz, now)
        if p.created_at > due:
            continue
        period = period_of(due, p.checkin_tz)
        rows.append(
            _esc_row(
                p.id,
                EscalationKind.no_owner,
                f"noowner:{p.id}:{period}",
                [f"{p.escalation_platform}:channel:{p.escalation_channel_id}"],
                {"period": period},
                now,
            )
        )
    if not rows:
        return 0
    keys = {r["dedupe_key"] for r in rows}
    have = set(s.exec(select(col(Escalation.dedupe_key)).where(col(Escalation.dedupe_key).in_(keys))))
    return outbox.insert_ignore(s, Escalation, [r for r in rows if r["dedupe_key"] not in have])


def plan_owner_unreachable(s: Session, checkin_id: int, sentence: str, now: datetime) -> bool:
    """The owner cannot be messaged (e.g. never installed the Teams app): tell the escalation
    channel once per period. False when the pilot has no escalation channel (the log says it)."""
    checkin = s.get(CheckIn, checkin_id)
    pilot = s.get(Pilot, checkin.pilot_id) if checkin else None
    if checkin is None or pilot is None or pilot.id is None or pilot.escalation_channel_id is None:
        return False
    row = _esc_row(
        pilot.id,
        EscalationKind.owner_unreachable,
        f"unreachable:{pilot.id}:{checkin.period}",
        [f"{pilot.escalation_platform}:channel:{pilot.escalation_channel_id}"],
        {"period": checkin.period, "sentence": sentence},
        now,
    )
    outbox.insert_ignore(s, Escalation, [row])
    s.commit()
    return True


def _esc_row(
    pilot_id: int | None, kind: EscalationKind, key: str, targets: list[str], payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "pilot_id": pilot_id,
        "kind": kind.value,
        "dedupe_key": key,
        "targets": targets,
        "payload": payload,
        "created_at": now,
        "attempts": 0,
    }


def _plan_followups(s: Session, settings: Settings, now: datetime, reminder: bool) -> int:
    """Reminders (due + 24 h, still inside the grace) or missed-review escalations (due + grace).

    The check-in's `reminded_at` / `escalated_at` is set by a conditional UPDATE and the outbox row
    is inserted in the same transaction, so each is raised once even with two replicas planning.
    """
    grace = grace_of(settings)
    if reminder and REMIND_AFTER >= grace:
        return 0
    stamp = col(CheckIn.reminded_at) if reminder else col(CheckIn.escalated_at)
    conds = [col(CheckIn.answered_at).is_(None), stamp.is_(None), col(CheckIn.due_at) >= now - LOOKBACK]
    if reminder:
        # 24 h after the check-in went out (= the due time, unless it was caught up late after a
        # downtime: then the owner still gets a day before the nudge), and only inside the grace.
        conds += [col(CheckIn.sent_at) <= now - REMIND_AFTER, col(CheckIn.due_at) > now - grace]
    else:
        # Missed only if it reached the owner: a check-in held up by an outage is not the owner's
        # miss, and one sent late still gets a day before the escalation.
        conds += [col(CheckIn.due_at) <= now - grace, col(CheckIn.sent_at) <= now - REMIND_AFTER]
    ids = [r[0] for r in s.execute(sa.select(col(CheckIn.id)).where(*conds))]
    if not ids:
        return 0
    field = "reminded_at" if reminder else "escalated_at"
    won = [
        r[0]
        for r in s.execute(
            sa.update(CheckIn).where(col(CheckIn.id).in_(ids), *conds).values({field: now}).returning(col(CheckIn.id))
        )
    ]
    rows = []
    for c in s.exec(select(CheckIn).where(col(CheckIn.id).in_(won))):
        pilot = s.get(Pilot, c.pilot_id)
        if pilot is None or c.owner_ref is None or owner_ref(pilot) != c.owner_ref:
            continue  # reassigned since: the new owner is the answer, nobody to nudge about this one
        platform, _, user = c.owner_ref.partition(":")
        owner_dm = f"{platform}:user:{user}"
        payload = {"period": c.period, "checkin_id": c.id, "owner_ref": c.owner_ref}
        if reminder:
            rows.append(
                _esc_row(
                    c.pilot_id,
                    EscalationKind.checkin_reminder,
                    f"remind:{c.pilot_id}:{c.period}",
                    [owner_dm],
                    payload,
                    now,
                )
            )
        else:
            targets = []
            if pilot.escalation_channel_id:
                targets.append(f"{pilot.escalation_platform}:channel:{pilot.escalation_channel_id}")
            targets.append(owner_dm)
            payload["owner_name"] = pilot.owner_name or user
            rows.append(
                _esc_row(
                    c.pilot_id, EscalationKind.checkin_missed, f"missed:{c.pilot_id}:{c.period}", targets, payload, now
                )
            )
    return outbox.insert_ignore(s, Escalation, rows)


def _plan_digest(s: Session, settings: Settings, now: datetime) -> int:
    channels = digest_channels(settings)
    if not channels:
        return 0
    tz = settings.pilotbot_timezone
    due = latest_due(DIGEST_WEEKDAY, DIGEST_TIME, tz, now)
    if now - due > timedelta(days=1):
        return 0  # a digest more than a day late is stale; the next one comes next week
    period = period_of(due, tz)
    rows = [
        _esc_row(
            None, EscalationKind.digest, f"digest:{pf}:{ch}:{period}", [f"{pf}:channel:{ch}"], {"period": period}, now
        )
        for pf, ch in channels
    ]
    keys = {r["dedupe_key"] for r in rows}
    have = set(s.exec(select(col(Escalation.dedupe_key)).where(col(Escalation.dedupe_key).in_(keys))))
    return outbox.insert_ignore(s, Escalation, [r for r in rows if r["dedupe_key"] not in have])


# ---- what to say: rows -> neutral replies (read at send time, so the card is current) ----


def checkin_reply_for(report: PilotReport, period: str) -> Reply:
    """The weekly check-in DM (shared builder in bot/views.py) for one period."""
    p = report.pilot
    metrics = [(m.key, m.unit, m.latest) for m in report.metrics]
    return checkin_prompt(report, build_checkin_form(p.slug, p.name, period, metrics))


def escalation_reply(s: Session, esc: Escalation, target: str, settings: Settings, now: datetime) -> Reply:
    """The message one target of an outbox row gets."""
    grace = grace_of(settings)
    pay = esc.payload
    kind = esc.kind
    if kind == EscalationKind.digest.value:
        return digest_for(s, settings, now, str(pay.get("period", "")))
    pilot = s.get(Pilot, esc.pilot_id) if esc.pilot_id is not None else None
    if pilot is None:
        raise LookupError(f"pilot {esc.pilot_id} is gone")
    if kind in (EscalationKind.eval_below_bar.value, EscalationKind.eval_drop.value):
        return eval_alert_reply(pilot.slug, pay)
    if kind == EscalationKind.no_owner.value:
        return no_owner_reply(pilot.name, pilot.slug)
    if kind == EscalationKind.owner_unreachable.value:
        return owner_unreachable_reply(pilot.slug, str(pay.get("sentence", "")))
    checkin = s.get(CheckIn, pay.get("checkin_id")) if pay.get("checkin_id") else None
    period = str(pay.get("period", ""))
    due_at = checkin.due_at if checkin else now
    if kind == EscalationKind.checkin_reminder.value:
        return reminder_reply(pilot.name, pilot.slug, period, due_at, pilot.checkin_tz)
    if kind != EscalationKind.checkin_missed.value:
        raise ValueError(f"no message for escalation kind {kind!r}")
    report = pilot_report(s, pilot, now, grace)
    if ":channel:" in target:
        return missed_channel_reply(
            str(pay.get("owner_name") or "owner"), report, period, due_at, settings.pilotbot_checkin_grace_hours
        )
    return missed_owner_reply(report, period, pilot.escalation_channel_name if pilot.escalation_channel_id else None)


def digest_for(s: Session, settings: Settings, now: datetime, period: str) -> Reply:
    grace = grace_of(settings)
    entries = portfolio(s, now, grace)
    week_ago = now - timedelta(days=7)
    slugs = {p.id: p.slug for p in s.exec(select(Pilot))}
    missed = []
    for c in s.exec(select(CheckIn).where(col(CheckIn.due_at) >= week_ago - grace, col(CheckIn.due_at) <= now)):
        from bot.gaps import CheckInFacts

        deadline = c.due_at + grace
        if week_ago <= deadline <= now and is_missed(CheckInFacts(c.due_at, c.answered_at), now, grace):
            missed.append(f"{slugs.get(c.pilot_id, '?')} ({c.period})")
    escalations = [
        str(e.payload.get("headline") or f"{slugs.get(e.pilot_id or 0, '?')}: {e.kind.replace('_', ' ')}")
        for e in s.exec(
            select(Escalation).where(
                col(Escalation.created_at) >= week_ago,
                col(Escalation.kind).in_(
                    [
                        EscalationKind.eval_below_bar.value,
                        EscalationKind.eval_drop.value,
                        EscalationKind.checkin_missed.value,
                    ]
                ),
            )
        )
    ]
    no_owner = sorted(e.pilot.slug for e in entries if e.pilot.owner_id is None and e.pilot.stage in ACTIVE_STAGES)
    bad_c, bad_e = outbox.undeliverable(s)
    return digest_reply(entries, DigestFacts(period, sorted(missed), escalations, no_owner, len(bad_c) + len(bad_e)))


# ---- for operators: `status` and `pilotbot schedule` ----


def delivery_warning(engine: Engine) -> str | None:
    """One line for the portfolio `status` when scheduled messages failed for good (SPEC §5)."""
    with session_scope(engine) as s:
        bad_c, bad_e = outbox.undeliverable(s)
        return undeliverable_line([c.last_error for c in bad_c] + [e.last_error for e in bad_e])


def with_delivery_warning(reply: Reply, engine: Engine) -> Reply:
    from dataclasses import replace

    line = delivery_warning(engine)
    return replace(reply, lines=(*reply.lines, line)) if line else reply


def schedule(engine: Engine, settings: Settings, now: datetime) -> Reply:
    with session_scope(engine) as s:
        pilots = list(s.exec(select(Pilot).order_by(col(Pilot.slug))))
        latest: dict[int, CheckIn] = {}
        for c in s.exec(select(CheckIn).where(col(CheckIn.due_at) >= now - LOOKBACK).order_by(col(CheckIn.due_at))):
            latest[c.pilot_id] = c
        pending: dict[int, int] = {}
        for e in s.exec(select(Escalation).where(col(Escalation.sent_at).is_(None))):
            pending[e.pilot_id or 0] = pending.get(e.pilot_id or 0, 0) + 1
        bad_c, bad_e = outbox.undeliverable(s)
        bad: dict[int, int] = {}
        for pid in [c.pilot_id for c in bad_c] + [e.pilot_id or 0 for e in bad_e]:
            bad[pid] = bad.get(pid, 0) + 1
        rows = []
        for p in pilots:
            assert p.id is not None
            cadence = f"{weekday_name(p.checkin_weekday)} {p.checkin_time} {p.checkin_tz}"
            if p.stage not in ACTIVE_STAGES:
                nxt = f"none ({p.stage})"
            elif p.owner_id is None:
                nxt = "none (no owner)"
            else:
                at = next_checkin(p, now)
                nxt = (
                    f"{at.astimezone(_zone(p.checkin_tz)):%a %Y-%m-%d %H:%M} local ({at:%Y-%m-%d %H:%M} UTC)"
                    if at
                    else "none"
                )
            rows.append(
                ScheduleRow(
                    slug=p.slug,
                    owner=f"@{p.owner_name or p.owner_id}" if p.owner_id else None,
                    cadence=cadence,
                    next_checkin=nxt,
                    current=_checkin_state(latest.get(p.id), now, grace_of(settings)),
                    pending=pending.get(p.id, 0),
                    undeliverable=bad.get(p.id, 0),
                )
            )
        return schedule_reply(rows, now)


def _zone(tz: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)


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
