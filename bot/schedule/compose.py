"""Row -> message, at send time: read the facts a check-in or outbox row names (the pilot's current
report, the check-in, the week's escalations) and let messages.py word them. Read when sent, so a
card is current; nothing here is platform code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from bot.config import Settings
from bot.forms import build_checkin_form
from bot.gaps import CheckInFacts, is_missed
from bot.ports import Destination
from bot.replies import Portfolio, Reply, mention
from bot.reports import PilotReport, pilot_report
from bot.schedule import channels
from bot.schedule.messages import (
    EVAL_KINDS,
    DigestFacts,
    bar_lowered_reply,
    change_line,
    channel_unreachable_reply,
    checkin_prompt,
    digest_escalation_line,
    digest_reply,
    eval_alert_reply,
    flag_killed_reply,
    flag_restored_reply,
    gap_reopened_reply,
    missed_channel_reply,
    missed_owner_reply,
    no_owner_reply,
    owner_mention,
    owner_unreachable_reply,
    reminder_reply,
    shipped_headline,
    shipped_reply,
    unreachable_sentence,
)
from bot.schedule.plan import ACTIVE_STAGES, grace_of
from storage import outbox
from storage.models import CheckIn, Escalation, EscalationKind, Pilot

# What the digest counts as escalations.
DIGEST_KINDS = (*EVAL_KINDS, EscalationKind.checkin_missed.value, EscalationKind.gap_reopened.value)


def facts_of(esc: Escalation) -> dict[str, Any]:
    """The row's facts; rows from before 0003_alert_facts kept them in `payload`."""
    return dict(esc.facts) if esc.facts is not None else dict(esc.payload)


def checkin_reply_for(report: PilotReport, period: str) -> Reply:
    """The weekly check-in DM for one period."""
    p = report.pilot
    metrics = [(m.key, m.unit, m.latest) for m in report.metrics]
    return checkin_prompt(report, build_checkin_form(p.slug, p.name, period, metrics))


def escalation_reply(s: Session, esc: Escalation, dest: Destination, settings: Settings, now: datetime) -> Reply:
    """The message one destination of an outbox row gets."""
    facts, kind = facts_of(esc), esc.kind
    if kind == EscalationKind.digest.value:
        return digest_for(s, settings, now, str(facts.get("period", "")))
    pilot = s.get(Pilot, esc.pilot_id) if esc.pilot_id is not None else None
    if pilot is None:
        raise LookupError(f"pilot {esc.pilot_id} is gone")
    if kind in EVAL_KINDS:
        return eval_alert_reply(pilot.slug, kind, facts, owner_mention(pilot) if dest.is_channel else None)
    if kind == EscalationKind.bar_lowered.value:
        return bar_lowered_reply(pilot.slug, facts)
    if kind == EscalationKind.flag_killed.value:
        return flag_killed_reply(pilot.slug, facts)
    if kind == EscalationKind.flag_restored.value:
        return flag_restored_reply(pilot.slug, facts)
    if kind == EscalationKind.no_owner.value:
        return no_owner_reply(pilot.name, pilot.slug)
    if kind == EscalationKind.owner_unreachable.value:
        return owner_unreachable_reply(pilot.slug, _unreachable(facts))
    if kind == EscalationKind.channel_unreachable.value:
        return channel_unreachable_reply(pilot.slug, facts)
    if kind == EscalationKind.shipped.value:
        return shipped_reply(pilot.slug, facts)
    if kind == EscalationKind.gap_reopened.value:
        return gap_reopened_reply(pilot.slug, facts, owner_mention(pilot) if dest.is_channel else None)
    checkin = s.get(CheckIn, facts.get("checkin_id")) if facts.get("checkin_id") else None
    period = str(facts.get("period", ""))
    due_at = checkin.due_at if checkin else now
    if kind == EscalationKind.checkin_reminder.value:
        return reminder_reply(pilot.name, pilot.slug, period, due_at, pilot.checkin_tz)
    if kind != EscalationKind.checkin_missed.value:
        raise ValueError(f"no message for escalation kind {kind!r}")
    report = pilot_report(s, pilot, now, grace_of(settings))
    if dest.is_channel:
        return missed_channel_reply(_owner_of(facts), report, period, due_at, settings.pilotbot_checkin_grace_hours)
    told = pilot.escalation_channel_id is not None and channels.open_episode(s, pilot) is None
    return missed_owner_reply(report, period, pilot.escalation_channel_name if told else None)


def _owner_of(facts: dict[str, Any]) -> str:
    """The owner the check-in went to (its `owner_ref`, `slack:U1`), as a mention token."""
    name = str(facts.get("owner_name") or "owner")
    platform, _, user = str(facts.get("owner_ref") or "").partition(":")
    return mention(platform, user, name) if user else "@" + name


def _unreachable(facts: dict[str, Any]) -> str:
    if not facts.get("unreachable"):
        return str(facts.get("sentence", ""))  # a row from before 0003_alert_facts
    dest = Destination.parse(str(facts["unreachable"]))
    return unreachable_sentence(Destination(dest.platform, dest.kind, dest.id, facts.get("name")))


def digest_for(s: Session, settings: Settings, now: datetime, period: str) -> Reply:
    grace = grace_of(settings)
    week_ago = now - timedelta(days=7)
    pilots = {p.id: p for p in s.exec(select(Pilot))}
    slugs = {i: p.slug for i, p in pilots.items()}
    missed = []
    for c in s.exec(select(CheckIn).where(col(CheckIn.due_at) >= week_ago - grace, col(CheckIn.due_at) <= now)):
        deadline = c.due_at + grace
        if week_ago <= deadline <= now and is_missed(CheckInFacts(c.due_at, c.answered_at), now, grace):
            pilot = pilots.get(c.pilot_id)
            who = owner_mention(pilot) if pilot is not None else None
            missed.append(f"{slugs.get(c.pilot_id, '?')} ({c.period}{', ' + who if who else ''})")
    recent = select(Escalation).where(col(Escalation.created_at) >= week_ago, col(Escalation.kind).in_(DIGEST_KINDS))
    escalations = [digest_escalation_line(slugs.get(e.pilot_id or 0, "?"), e.kind, facts_of(e)) for e in s.exec(recent)]
    shipped_q = select(Escalation).where(
        col(Escalation.created_at) >= week_ago, col(Escalation.kind) == EscalationKind.shipped.value
    )
    shipped = [shipped_headline(slugs.get(e.pilot_id or 0, "?"), facts_of(e)) for e in s.exec(shipped_q)]
    unowned = select(Pilot.slug).where(col(Pilot.owner_id).is_(None), col(Pilot.stage).in_(ACTIVE_STAGES))
    no_owner = sorted(s.exec(unowned))
    bad_c, bad_e = outbox.undeliverable(s)
    changes, first_page = digest_scorecard(s, week_ago)
    facts = DigestFacts(period, sorted(missed), escalations, no_owner, len(bad_c) + len(bad_e), shipped, changes)
    return digest_reply((), facts, first_page)


def digest_scorecard(s: Session, since: datetime) -> tuple[list[str], Portfolio]:
    """The digest's stored parts: the week's gap transitions, and the portfolio's riskiest page."""
    from bot.reports import portfolio_page
    from bot.views import portfolio_page_reply
    from storage.scorecard import transitions_since

    changes = [change_line(slug, t.gap, t.from_state, t.to_state) for t, slug in transitions_since(s, since)]
    reply = portfolio_page_reply(portfolio_page(s, None, None, 1, 25))
    assert reply.portfolio is not None
    return changes, reply.portfolio
