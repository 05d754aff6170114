"""Which scheduled work is due (SPEC §5). Pure over (database, settings, now): no sleeping, no I/O
beyond the database, no platform code. bot/schedule/deliver.py sends what this module plans.

Planning only *creates rows* under unique keys; sending is a separate claim/send/mark step
(storage/outbox.py). So planning can run on every tick, on every replica, any number of times:

- check-in: one `CheckIn` per (pilot, period), period = ISO week in the pilot's zone, for the most
  recent cadence moment, only if that moment is after the owner was set (`owner_since`);
- reminder: 24 h after the due time, unanswered -> outbox row `remind:<pilot>:<period>`;
- missed review: grace passed, unanswered -> `missed:<pilot>:<period>` (escalation channel + owner);
- no owner: once per cadence week -> `noowner:<pilot>:<period>` to the escalation channel;
- digest: Monday 09:00 in PILOTBOT_TIMEZONE -> `digest:<platform>:<channel>:<period>`;
- verdicts: a check-in whose grace passed unanswered is counted missed once (verdicts.py, /metrics).
Eval alerts are created by `Services.record_eval` (one per breach, keys in alerts.py) and
delivered right after that change's commit (the tick is the safety net). Every row stores facts
and destinations, never a sentence (messages.py words it). A reminder or missed-review row is planned
only for a check-in the platform accepted (`sent_at`): a refused send keeps the check-in pending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.lifecycle import policy
from bot.ports import Destination
from bot.schedule.cadence import latest_due, next_due, period_of
from bot.schedule.reopened import is_reopening, reopened
from bot.schedule.verdicts import judge_due
from bot.scorecard import rescore_due
from storage import outbox
from storage.db import session_scope
from storage.models import CheckIn, Escalation, EscalationKind, GapTransition, Pilot, Stage

REMIND_AFTER = timedelta(hours=24)
LOOKBACK = timedelta(days=21)  # older unanswered check-ins are history, not news
ACTIVE_STAGES = (Stage.pilot.value, Stage.production.value)  # paused/retired pilots are not nudged


def stages_with(what: str) -> tuple[str, ...]:
    """The stages whose `bot.lifecycle.policy` grants `what` ("checkins", "reminders", "escalations")."""
    return tuple(s.value for s in Stage if getattr(policy(s), what))
DIGEST_WEEKDAY, DIGEST_TIME = 0, "09:00"


@dataclass
class Planned:
    checkins: int = 0
    reminders: int = 0
    missed: int = 0
    no_owner: int = 0
    digests: int = 0
    rescored: int = 0
    reopened: int = 0
    judged: int = 0  # check-in verdicts counted for /metrics (verdicts.py)


def grace_of(settings: Settings) -> timedelta:
    return timedelta(hours=settings.pilotbot_checkin_grace_hours)


def owner_ref(p: Pilot) -> str | None:
    return f"{p.owner_platform}:{p.owner_id}" if p.owner_id else None


def owner_destination(owner: str) -> Destination:
    """A check-in's `owner_ref` (`slack:U1`, the actor form) as the owner's DM destination."""
    platform, _, user = owner.partition(":")
    return Destination.user(platform, user)


def escalation_channel(p: Pilot) -> Destination | None:
    if p.escalation_channel_id is None or p.escalation_platform is None:
        return None
    return Destination.channel(p.escalation_platform, p.escalation_channel_id, p.escalation_channel_name)


def current_due(p: Pilot, now: datetime) -> datetime | None:
    """The check-in moment due now: the latest cadence moment, if it is after the owner was set."""
    if p.owner_id is None:
        return None
    due = latest_due(p.checkin_weekday, p.checkin_time, p.checkin_tz, now)
    return due if due > _asking_since(p) else None


def _asking_since(p: Pilot) -> datetime:
    """Check-ins are due after the owner was set and, for a resumed pilot, after it resumed: the
    weeks it was paused are not caught up (SPEC §8)."""
    since = p.owner_since or p.created_at
    return max(since, p.resumed_at) if p.resumed_at is not None else since


def next_checkin(p: Pilot, now: datetime) -> datetime | None:
    if p.owner_id is None:
        return None
    return next_due(p.checkin_weekday, p.checkin_time, p.checkin_tz, max(now, _asking_since(p)))


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
        pilots = list(s.exec(select(Pilot).where(col(Pilot.stage).in_(stages_with("checkins")))))
        out.checkins = _plan_checkins(s, pilots, now)
        out.no_owner = _plan_no_owner(s, pilots, now)
        s.commit()
        out.reminders = _plan_followups(s, settings, now, reminder=True)
        out.missed = _plan_followups(s, settings, now, reminder=False)
        out.digests = _plan_digest(s, settings, now)
        s.commit()
        out.judged = judge_due(s, now, grace_of(settings))  # grace passed unanswered: missed (counted once)
        s.commit()

        def tell_reopened(session: Session, pilots: Sequence[Pilot], moved: list[GapTransition]) -> None:
            out.reopened += _plan_reopened(session, pilots, moved, now)

        # What time alone moved (bot/scorecard.py), and a production gap that reopened by it.
        out.rescored = rescore_due(s, now, grace_of(settings), tell_reopened, commit=s.commit)
        s.commit()
    return out


def _plan_reopened(s: Session, pilots: Sequence[Pilot], moved: list[GapTransition], now: datetime) -> int:
    """The reopened-gap notice of a production pilot whose gap time alone reopened (a check-in past
    its grace period): the same row, under the same key, a change reopening it would have saved."""
    # Filtered first: a batch's first scoring moves every gap of hundreds of pilots, none reopened.
    reopenings = [t for t in moved if is_reopening(t)]
    if not reopenings:
        return 0
    by_id = {p.id: p for p in pilots}
    ids = sorted({t.pilot_id for t in reopenings if t.pilot_id in by_id})
    rows = [esc.model_dump(exclude={"id"}) for i in ids for esc in reopened(s, by_id[i], reopenings, now)]
    return outbox.insert_ignore(s, Escalation, rows)


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
        channel = escalation_channel(p)
        if p.owner_id is not None or channel is None:
            continue  # without a channel the digest says it
        due = latest_due(p.checkin_weekday, p.checkin_time, p.checkin_tz, now)
        if p.created_at > due:
            continue
        period = period_of(due, p.checkin_tz)
        rows.append(
            _esc_row(p.id, EscalationKind.no_owner, f"noowner:{p.id}:{period}", [channel], {"period": period}, now)
        )
    return _insert_new(s, rows)


def _insert_new(s: Session, rows: list[dict[str, Any]]) -> int:
    """Insert the outbox rows whose dedupe key is not taken yet (read first: most already exist)."""
    if not rows:
        return 0
    keys = {r["dedupe_key"] for r in rows}
    have = set(s.exec(select(col(Escalation.dedupe_key)).where(col(Escalation.dedupe_key).in_(keys))))
    return outbox.insert_ignore(s, Escalation, [r for r in rows if r["dedupe_key"] not in have])


def plan_owner_unreachable(s: Session, checkin_id: int, unreachable: Destination, now: datetime) -> bool:
    """The owner cannot be messaged (e.g. never installed the Teams app): tell the escalation
    channel once per period. False when the pilot has no escalation channel (the log says it)."""
    checkin = s.get(CheckIn, checkin_id)
    pilot = s.get(Pilot, checkin.pilot_id) if checkin else None
    channel = escalation_channel(pilot) if pilot else None
    if checkin is None or pilot is None or pilot.id is None or channel is None:
        return False
    facts = {"period": checkin.period, "unreachable": unreachable.key, "name": unreachable.name}
    key = f"unreachable:{pilot.id}:{checkin.period}"
    outbox.insert_ignore(
        s, Escalation, [_esc_row(pilot.id, EscalationKind.owner_unreachable, key, [channel], facts, now)]
    )
    s.commit()
    return True


def _esc_row(
    pilot_id: int | None,
    kind: EscalationKind,
    key: str,
    targets: list[Destination],
    facts: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    return {
        "pilot_id": pilot_id,
        "kind": kind.value,
        "dedupe_key": key,
        "targets": [d.key for d in targets],
        "facts": facts,
        "payload": {},
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
    # A check-in sent before a pause is neither reminded nor escalated while paused (or retired).
    # A resumed pilot is not nudged about a check-in from before its pause (no backlog).
    nudged = sa.exists().where(
        col(Pilot.id) == col(CheckIn.pilot_id),
        col(Pilot.stage).in_(stages_with("reminders" if reminder else "escalations")),
        sa.or_(col(Pilot.resumed_at).is_(None), col(Pilot.resumed_at) <= col(CheckIn.due_at)),
    )
    conds = [col(CheckIn.answered_at).is_(None), stamp.is_(None), col(CheckIn.due_at) >= now - LOOKBACK, nudged]
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
        rows.append(_followup_row(c, pilot, reminder, now))
    return outbox.insert_ignore(s, Escalation, rows)


def _followup_row(c: CheckIn, pilot: Pilot, reminder: bool, now: datetime) -> dict[str, Any]:
    """The reminder (owner DM) or the missed-review escalation (channel, then owner) of a check-in."""
    assert c.owner_ref is not None
    owner = owner_destination(c.owner_ref)
    facts: dict[str, Any] = {"period": c.period, "checkin_id": c.id, "owner_ref": c.owner_ref}
    if reminder:
        key = f"remind:{c.pilot_id}:{c.period}"
        return _esc_row(c.pilot_id, EscalationKind.checkin_reminder, key, [owner], facts, now)
    channel = escalation_channel(pilot)
    facts["owner_name"] = pilot.owner_name or owner.id
    key = f"missed:{c.pilot_id}:{c.period}"
    return _esc_row(
        c.pilot_id, EscalationKind.checkin_missed, key, ([channel] if channel else []) + [owner], facts, now
    )


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
            None,
            EscalationKind.digest,
            f"digest:{pf}:{ch}:{period}",
            [Destination.channel(pf, ch)],
            {"period": period},
            now,
        )
        for pf, ch in channels
    ]
    return _insert_new(s, rows)
