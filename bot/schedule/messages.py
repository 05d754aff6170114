"""The wording of every scheduled message: check-in, reminder, missed review, eval alert,
owner-unreachable and no-owner notes, digest.

Each builder takes facts and returns a neutral `Reply` (each platform renders it); nothing here
reads the database. Messages are worded when they are sent (bot/schedule/compose.py gathers the
facts a row names), so a card is current and a stored row never holds a sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.forms import CheckinForm
from bot.gaps import fmt_number, fmt_pct
from bot.ports import Destination
from bot.replies import Action, Portfolio, Reply, Tone
from bot.reports import PilotReport, PortfolioEntry
from bot.views import checkin_action, gap_card, portfolio_reply, transition_phrase
from storage.models import EscalationKind, Pilot


def _local(at: datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%a %Y-%m-%d %H:%M") + f" {tz}"


def _answer(slug: str) -> Action:
    return checkin_action(slug)


def checkin_prompt(report: PilotReport, form: CheckinForm) -> Reply:
    """The weekly check-in DM: the gap card, this week's question per metric, a way to answer."""
    p = report.pilot
    asks = [
        f"What is {f.label} this week?" + (f" ({f.hint})" if f.hint else "")
        for f in form.fields
        if f.kind == "number" and not f.optional
    ]
    if not asks:
        asks = [f"No metrics yet: record a baseline first (`baseline {p.slug} <metric> <value> <unit>`)."]
    return Reply(
        text=f"Weekly check-in for {p.name} ({p.slug}), {form.period}: please report this week's numbers.",
        card=gap_card(report),
        lines=tuple(asks),
        actions=(_answer(p.slug),),
        form=form,
    )


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


EVAL_KINDS = (EscalationKind.eval_below_bar.value, EscalationKind.eval_drop.value)


def eval_headline(slug: str, kind: str, facts: dict[str, Any]) -> str:
    """`<slug>` eval fell below the bar / dropped N pts: old → new (version v), bar B."""
    if facts.get("new") is None:  # a row from before alerts kept facts: its stored headline, if any
        return str(facts.get("headline") or f"`{slug}` eval needs attention.")
    old, new, bar = facts.get("old"), float(facts["new"]), float(facts["bar"])
    scores = f"{fmt_pct(old) if old is not None else 'no previous run'} → {fmt_pct(new)}"
    version = f" (version {facts['version']})" if facts.get("version") else ""
    if kind == EscalationKind.eval_below_bar.value:
        return f"`{slug}` eval fell below the bar: {scores}{version}, bar {fmt_pct(bar)}."
    drop = fmt_number(round(float(old) - new, 1)) if old is not None else "0"
    return f"`{slug}` eval dropped {drop} pts: {scores}{version}, bar {fmt_pct(bar)}."


def eval_alert_reply(slug: str, kind: str, facts: dict[str, Any]) -> Reply:
    return Reply(
        text=eval_headline(slug, kind, facts),
        tone=Tone.error,
        lines=(f"Look at the failing cases of this run, fix, and re-run: `eval {slug} <pct> cases <n>`.",),
        actions=(Action("Status", command=f"status {slug}"), Action("History", command=f"history {slug}")),
    )


def alert_line(pilot: Pilot, kind: str, facts: dict[str, Any]) -> str:
    """The warning a write's reply carries when it raised an eval alert: what, and who is pinged."""
    who = []
    if pilot.owner_id:
        who.append(f"@{pilot.owner_name or pilot.owner_id}")
    if pilot.escalation_channel_id:
        who.append(f"#{pilot.escalation_channel_name or pilot.escalation_channel_id}")
    pinging = ("Pinging " + " and ".join(who) + ".") if who else "No owner or escalation channel to ping."
    return f"⚠️ {eval_headline(pilot.slug, kind, facts)} {pinging}"


def unreachable_sentence(dest: Destination) -> str:
    """Why a destination cannot be messaged yet, and what would fix it."""
    who = dest.name or dest.id
    if dest.is_channel:
        return (
            f"I cannot post to the {dest.platform} channel {who}: add pilotbot to that team and mention it there once."
        )
    return (
        f"I cannot message @{who} on {dest.platform.capitalize()}: they must install the "
        "pilotbot app (or message it once) before it can reach them."
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
    changes: Sequence[str] = ()  # "slug: quality gap reopened" from the gap transitions of the week


def digest_reply(entries: Sequence[PortfolioEntry], facts: DigestFacts, portfolio: Portfolio | None = None) -> Reply:
    """`portfolio`: the stored portfolio's first page (bot/scorecard.py); else built from `entries`."""
    base = Reply(portfolio=portfolio) if portfolio is not None else portfolio_reply(entries)
    lines = [
        f"Missed check-ins this week: {len(facts.missed)}" + (f" ({', '.join(facts.missed)})" if facts.missed else ""),
        f"Escalations this week: {len(facts.escalations)}",
        *(f"  • {e}" for e in facts.escalations[:10]),
    ]
    if facts.no_owner:
        lines.append("Without an owner: " + ", ".join(facts.no_owner))
    lines.extend(digest_changes_lines(facts.changes))
    if facts.undeliverable:
        lines.append(f"⚠️ {facts.undeliverable} scheduled message(s) undeliverable: `pilotbot schedule` lists them.")
    return Reply(
        text=f"Weekly pilot digest, {facts.period}",
        portfolio=base.portfolio,
        lines=tuple(lines),
        actions=(Action("Status", command="status"),),
    )


def digest_changes_lines(changes: Sequence[str]) -> list[str]:
    """What changed this week, from the stored gap transitions (a block of its own)."""
    if not changes:
        return ["Gap changes this week: none"]
    return [f"Gap changes this week: {len(changes)}", *(f"  • {c}" for c in changes[:15])]


def change_line(slug: str, gap: str, before: str | None, after: str) -> str:
    return f"{slug}: {transition_phrase(gap, before, after)}"


def digest_escalation_line(slug: str, kind: str, facts: dict[str, Any]) -> str:
    """One escalation of the week, as the digest lists it."""
    if kind in EVAL_KINDS:
        return eval_headline(slug, kind, facts)
    return f"{slug}: {kind.replace('_', ' ')}"
