"""Builders for scheduled messages: reminder, missed review, eval alert, no-owner note, digest.

All wording of scheduled messages lives here (neutral `Reply`s; each platform renders them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.gaps import fmt_number
from bot.replies import Action, Reply, Tone
from bot.reports import PilotReport, PortfolioEntry
from bot.views import checkin_action, gap_card, portfolio_reply


def _local(at: datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%a %Y-%m-%d %H:%M") + f" {tz}"


def _answer(slug: str) -> Action:
    return checkin_action(slug)


def reminder_reply(name: str, slug: str, period: str, due_at: datetime, tz: str) -> Reply:
    return Reply(
        text=f"Reminder: the {period} check-in for {name} ({slug}) is still unanswered.",
        tone=Tone.warning,
        lines=(f"It was due {_local(due_at, tz)}; please report this week's numbers.",),
        actions=(_answer(slug),),
    )


def missed_channel_reply(owner: str, report: PilotReport, period: str, due_at: datetime, grace_hours: float) -> Reply:
    p = report.pilot
    return Reply(
        text=f"@{owner} missed the weekly review of {p.slug}",
        tone=Tone.warning,
        card=gap_card(report),
        lines=(
            f"The {period} check-in was due {_local(due_at, p.checkin_tz)} and is still unanswered after "
            f"{fmt_number(grace_hours)} h.",
            f"Confirm the owner or reassign: `owner {p.slug} @someone`.",
        ),
        actions=(Action("Status", command=f"status {p.slug}"),),
    )


def missed_owner_reply(report: PilotReport, period: str, told_channel: str | None) -> Reply:
    p = report.pilot
    told = f" #{told_channel} was told." if told_channel else ""
    return Reply(
        text=f"You missed the weekly review of {p.slug} ({period}).{told}",
        tone=Tone.warning,
        lines=("Answer it now so the owner gap does not turn open.",),
        actions=(_answer(p.slug),),
    )


def eval_alert_reply(slug: str, payload: dict[str, Any]) -> Reply:
    lines = [str(payload["todo"])] if payload.get("todo") else []
    return Reply(
        text=str(payload.get("headline") or f"`{slug}` eval needs attention."),
        tone=Tone.error,
        lines=tuple(lines),
        actions=(Action("Status", command=f"status {slug}"), Action("History", command=f"history {slug}")),
    )


def owner_unreachable_reply(slug: str, sentence: str) -> Reply:
    """Told to the escalation channel when the owner's platform has no way to reach them yet."""
    return Reply(
        text=f"{sentence} Their weekly check-in for `{slug}` waits until then.",
        tone=Tone.warning,
        actions=(Action("Status", command=f"status {slug}"),),
    )


def no_owner_reply(name: str, slug: str) -> Reply:
    return Reply(
        text=f"{name} ({slug}) has no owner, so nobody gets its weekly check-in.",
        tone=Tone.warning,
        lines=(f"Name one accountable owner: `owner {slug} @someone`.",),
        actions=(Action("Status", command=f"status {slug}"),),
    )


@dataclass(frozen=True)
class DigestFacts:
    period: str
    missed: Sequence[str]  # "slug (period)" of check-ins missed in the last week
    escalations: Sequence[str]  # headlines of escalations raised in the last week
    no_owner: Sequence[str]
    undeliverable: int


def digest_reply(entries: Sequence[PortfolioEntry], facts: DigestFacts) -> Reply:
    base = portfolio_reply(entries)
    lines = [
        f"Missed check-ins this week: {len(facts.missed)}" + (f" ({', '.join(facts.missed)})" if facts.missed else ""),
        f"Escalations this week: {len(facts.escalations)}",
        *(f"  • {e}" for e in facts.escalations[:10]),
    ]
    if facts.no_owner:
        lines.append("Without an owner: " + ", ".join(facts.no_owner))
    if facts.undeliverable:
        lines.append(f"⚠️ {facts.undeliverable} scheduled message(s) undeliverable: `pilotbot schedule` lists them.")
    return Reply(
        text=f"Weekly pilot digest, {facts.period}",
        portfolio=base.portfolio,
        lines=tuple(lines),
        actions=(Action("Status", command="status"),),
    )


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
