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

from bot.evals.compare import Flips, flips_text
from bot.forms import CheckinForm
from bot.gaps import fmt_number, fmt_pct
from bot.ports import Destination
from bot.replies import Action, Confirm, Intent, Portfolio, Reply, Tone, mention, plain_mentions
from bot.reports import PilotReport, PortfolioEntry
from bot.views import checkin_action, gap_card, portfolio_reply, transition_phrase
from storage.cases import CaseResult
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


def owner_mention(p: Pilot) -> str | None:
    """The pilot's owner as a mention token (a real mention on the owner's platform), if any."""
    if not p.owner_id or not p.owner_platform:
        return None
    return mention(p.owner_platform, p.owner_id, p.owner_name or p.owner_id)


def missed_channel_reply(owner: str, report: PilotReport, period: str, due_at: datetime, grace_hours: float) -> Reply:
    """`owner`: a mention token (bot.replies.mention), so the channel post notifies the owner."""
    p = report.pilot
    return Reply(
        text=f"{owner} missed the weekly review of {p.slug}",
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


EVAL_KINDS = (
    EscalationKind.eval_below_bar.value,
    EscalationKind.eval_drop.value,
    EscalationKind.eval_recovered.value,
)
SEVERITY_LABEL = {"page": "Page", "warn": "Warning"}


def eval_headline(slug: str, kind: str, facts: dict[str, Any]) -> str:
    """`<slug>` eval fell below the bar / dropped N pts / recovered: old → new (version v), bar B."""
    if facts.get("new") is None:  # a row from before alerts kept facts: its stored headline, if any
        return str(facts.get("headline") or f"`{slug}` eval needs attention.")
    old, new, bar = facts.get("old"), float(facts["new"]), float(facts["bar"])
    scores = f"{fmt_pct(old) if old is not None else 'no previous run'} → {fmt_pct(new)}"
    version = f" (version {facts['version']})" if facts.get("version") else ""
    label = SEVERITY_LABEL.get(str(facts.get("severity")))
    prefix = f"{label}: " if label and kind != EscalationKind.eval_recovered.value else ""
    if kind == EscalationKind.eval_below_bar.value:
        return f"{prefix}`{slug}` eval fell below the bar: {scores}{version}, bar {fmt_pct(bar)}."
    if kind == EscalationKind.eval_recovered.value:
        return f"`{slug}` eval recovered: {scores}{version} clears the {fmt_pct(bar)} bar again."
    drop = fmt_number(round(float(old) - new, 1)) if old is not None else "0"
    return f"{prefix}`{slug}` eval dropped {drop} pts: {scores}{version}, bar {fmt_pct(bar)}."


def _cases_of(raw: Any) -> tuple[CaseResult, ...]:
    return tuple(CaseResult(str(c[0]), False, tuple(str(f) for f in c[1])) for c in raw or ())


def flips_sentence(facts: dict[str, Any]) -> str | None:
    """The flipped cases an alert's facts name (`3 cases regressed (c17 party, ...), 1 fixed (c5)`)."""
    if "regressed_total" not in facts:
        return None  # a bare score: no per-case results to compare
    regressed = _cases_of(facts.get("regressed"))
    fixed = tuple(r._replace(passed=True) for r in _cases_of(facts.get("fixed")))
    f = Flips(True, regressed, int(facts["regressed_total"]), fixed, int(facts.get("fixed_total") or 0))
    return flips_text(f)


def eval_alert_reply(slug: str, kind: str, facts: dict[str, Any], owner: str | None = None) -> Reply:
    """`owner`: a mention token, for the escalation channel's copy (the owner is pinged there too)."""
    ping = (f"Pinging {owner}.",) if owner else ()
    flipped = flips_sentence(facts)
    recovered = kind == EscalationKind.eval_recovered.value
    tone = Tone.success if recovered else (Tone.warning if facts.get("severity") == "warn" else Tone.error)
    advice = (
        "No further alert until a run falls below the bar again."
        if recovered
        else f"Look at the failing cases of this run, fix, and re-run: `eval {slug} <pct> cases <n>`."
    )
    killed = (killed_by_eval_line(slug, facts),) if facts.get("killed") else ()
    actions = [
        Action("Status", command=f"status {slug}"),
        Action("Cases", command=f"cases {slug}"),
        Action("History", command=f"history {slug}"),
    ]
    if not killed and not recovered and facts.get("new") is not None:
        actions.append(kill_action(slug, f"eval alert: {fmt_pct(float(facts['new']))}"))
    return Reply(
        text=eval_headline(slug, kind, facts),
        tone=tone,
        lines=(*killed, *ping, *((flipped,) if flipped else ()), advice),
        actions=tuple(actions),
    )


def bar_lowered_sentence(slug: str, facts: dict[str, Any]) -> str:
    """`bar of legal-intake lowered from 95% to 90% by @x` (and/or min-cases), naming who as a mention."""
    parts = []
    if facts.get("threshold"):
        old, new = facts["threshold"]
        parts.append(f"bar of {slug} lowered from {fmt_pct(old)} to {fmt_pct(new)}")
    if facts.get("min_cases"):
        old, new = facts["min_cases"]
        parts.append(f"min-cases of {slug} lowered from {old} to {new}")
    by = facts.get("by") or {}
    who = mention(str(by.get("platform")), str(by.get("id")), by.get("name")) if by.get("id") else "someone"
    return f"{' and '.join(parts) or f'bar of {slug} lowered'} by {who}"


def bar_lowered_reply(slug: str, facts: dict[str, Any]) -> Reply:
    return Reply(
        text=bar_lowered_sentence(slug, facts),
        tone=Tone.warning,
        lines=("Runs are now judged against the lower bar; the audit keeps who lowered it and from what.",),
        actions=(Action("Status", command=f"status {slug}"), Action("History", command=f"history {slug}")),
    )


# ---- the kill switch (SPEC §9) ----

KILL_LABEL = "Kill switch"


def kill_action(slug: str, default_reason: str) -> Action:
    """The "Kill switch" button of an alert: confirmed before it acts; the reason typed in the
    confirmation (where the surface can ask) or `default_reason`."""
    return Action(
        KILL_LABEL,
        command=f"kill {slug} {default_reason}",
        intent=Intent.KILL,
        slug=slug,
        style="danger",
        confirm=Confirm(
            title=f"Turn {slug} off in production?"[:100],
            text=(
                f"Its kill-switch flag reads false at once, so its AI stops wherever production reads the "
                f"flag, until someone runs `restore {slug}`. Reason if none is given: {default_reason}."
            )[:300],
            yes="Turn it off",
        ),
    )


def killed_by_eval_line(slug: str, facts: dict[str, Any]) -> str:
    below = f" kill-below {fmt_pct(float(facts['kill_below']))}" if facts.get("kill_below") is not None else ""
    return (
        f"⛔ The kill switch turned `{slug}` off in production: this run is below{below}. "
        f"Its flag reads `false` until someone runs `restore {slug}`."
    )


def _flipper(facts: dict[str, Any]) -> str:
    """Who flipped the flag, as a real mention (None actor: pilotbot itself, on an eval run)."""
    if not facts.get("actor_id"):
        return "pilotbot (an eval run below kill-below)"
    return mention(str(facts.get("actor_platform") or ""), str(facts["actor_id"]), facts.get("actor_name"))


def flag_killed_reply(slug: str, facts: dict[str, Any]) -> Reply:
    reason = facts.get("reason") or "no reason given"
    return Reply(
        text=f"⛔ `{slug}` was turned off in production by {_flipper(facts)}: {reason}.",
        tone=Tone.error,
        lines=(
            f"Its kill-switch flag now reads `false`. Production: {facts.get('last_read') or 'unknown'}.",
            f"`restore {slug}` turns it back on.",
        ),
        actions=(Action("Status", command=f"status {slug}"),),
    )


def flag_restored_reply(slug: str, facts: dict[str, Any]) -> Reply:
    return Reply(
        text=f"`{slug}` was turned back on in production by {_flipper(facts)}.",
        tone=Tone.warning,
        lines=(f"Its kill-switch flag reads `true` again. Production: {facts.get('last_read') or 'unknown'}.",),
        actions=(Action("Status", command=f"status {slug}"),),
    )


def alert_line(pilot: Pilot, kind: str, facts: dict[str, Any]) -> str:
    """The warning a write's reply carries when it raised an eval alert: what, and who is pinged."""
    who = []  # plain names: this line also goes into REST and CLI output; the alert itself mentions
    if pilot.owner_id:
        who.append(f"@{pilot.owner_name or pilot.owner_id}")
    if pilot.escalation_channel_id and facts.get("severity") != "warn":  # a warn goes to the owner only
        who.append(f"#{pilot.escalation_channel_name or pilot.escalation_channel_id}")
    pinging = ("Pinging " + " and ".join(who) + ".") if who else "No owner or escalation channel to ping."
    mark = "✅" if kind == EscalationKind.eval_recovered.value else "⚠️"
    return f"{mark} {eval_headline(pilot.slug, kind, facts)} {pinging}"


def unreachable_sentence(dest: Destination) -> str:
    """Why a destination cannot be messaged yet, and what would fix it."""
    who = dest.name or dest.id
    if dest.is_channel:
        return (
            f"I cannot post to the {dest.platform} channel {who}: add pilotbot to that team and mention it there once."
        )
    return (
        f"I cannot message {mention(dest.platform, dest.id, who)} on {dest.platform.capitalize()}: they must "
        "install the pilotbot app (or message it once) before it can reach them."
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
    shipped: Sequence[str] = ()  # shipped_headline of each pilot shipped in the last week
    changes: Sequence[str] = ()  # "slug: quality gap reopened" from the gap transitions of the week


def digest_reply(entries: Sequence[PortfolioEntry], facts: DigestFacts, portfolio: Portfolio | None = None) -> Reply:
    """`portfolio`: the stored portfolio's first page (bot/scorecard.py); else built from `entries`."""
    base = Reply(portfolio=portfolio) if portfolio is not None else portfolio_reply(entries)
    lines = [
        f"Missed check-ins this week: {len(facts.missed)}" + (f" ({', '.join(facts.missed)})" if facts.missed else ""),
        f"Escalations this week: {len(facts.escalations)}",
        *(f"  • {e}" for e in facts.escalations[:10]),
    ]
    if facts.shipped:
        lines.append(f"Shipped this week: {len(facts.shipped)}")
        lines.extend(f"  • {e}" for e in facts.shipped[:10])
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
    if kind == EscalationKind.bar_lowered.value:
        return plain_mentions(bar_lowered_sentence(slug, facts))
    if kind == EscalationKind.flag_killed.value:
        return f"{slug}: turned off in production ({facts.get('reason') or 'no reason given'})"
    if kind == EscalationKind.gap_reopened.value:
        return reopened_headline(slug, facts)
    return f"{slug}: {kind.replace('_', ' ')}"


def invite_sentence(channel_name: str, bot_name: str = "pilotbot") -> str:
    """Said to whoever set `escalate` when the platform says the bot cannot post there (a private
    Slack channel it was not invited to)."""
    return f"invite @{bot_name} to #{channel_name} so escalations can reach it."


def channel_unreachable_sentence(platform: str, channel_name: str, slug: str, reason: str | None = None) -> str:
    """What lets the bot post to an escalation channel that refused it, in the platform's terms (a
    Teams bot can post to a channel once it has been mentioned there: that stores the conversation).
    `reason`: the platform's answer; an archived Slack channel takes no one's invitation."""
    if platform == "teams":
        return f"add @pilotbot to the team and mention it once in #{channel_name} so escalations can reach it."
    if reason == "is_archived":
        return (
            f"#{channel_name} is archived: unarchive it, or name another channel with `escalate {slug} #channel`, "
            "so escalations can reach it."
        )
    return invite_sentence(channel_name)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def channel_unreachable_line(platform: str, channel_name: str, slug: str, reason: str | None = None) -> str:
    """Under `status <slug>` while the escalation channel is known to refuse posts."""
    return "⚠️ " + _sentence(channel_unreachable_sentence(platform, channel_name, slug, reason))


# What the refused post was, for the DM (the kinds a pilot's escalation channel gets).
REFUSED_POST = {
    EscalationKind.eval_below_bar.value: "eval alert",
    EscalationKind.eval_drop.value: "eval alert",
    EscalationKind.eval_recovered.value: "eval recovery notice",
    EscalationKind.bar_lowered.value: "lowered-bar notice",
    EscalationKind.checkin_missed.value: "missed-review escalation",
    EscalationKind.no_owner.value: "no-owner note",
    EscalationKind.owner_unreachable.value: "owner-unreachable note",
    EscalationKind.flag_killed.value: "kill-switch notice",
    EscalationKind.flag_restored.value: "kill-switch notice",
    EscalationKind.shipped.value: "shipping announcement",
    EscalationKind.gap_reopened.value: "reopened-gap alert",
}


def channel_unreachable_reply(slug: str, facts: dict[str, Any]) -> Reply:
    """The DM to whoever set `escalate` (else the owner), once per episode (bot/schedule/channels.py)."""
    name = str(facts.get("name") or "the escalation channel")
    platform = str(facts.get("channel") or "slack").partition(":")[0]
    what = REFUSED_POST.get(str(facts.get("about")), "message")
    return Reply(
        text=_sentence(channel_unreachable_sentence(platform, name, slug, facts.get("reason"))),
        tone=Tone.warning,
        lines=(
            f"The {what} of `{slug}` could not be posted to #{name}. `status {slug}` says so until a post gets "
            f"through there, or until `escalate {slug} #channel` names a channel the bot can reach.",
        ),
        actions=(Action("Status", command=f"status {slug}"),),
    )


# ---- the lifecycle (SPEC §8): a pilot shipped, a production pilot's gap reopened ----


def shipped_headline(slug: str, facts: dict[str, Any]) -> str:
    """`support-drafts` shipped to production by @dana: handle_time 14 → 9 min (−36%, better)."""
    who = mention(str(facts.get("by_platform", "")), str(facts.get("by_id", "someone")), facts.get("by_name"))
    roi = "; ".join(str(r) for r in facts.get("roi") or ()) or "no metric recorded"
    return f"`{slug}` shipped to production by {who}: {roi}."


def shipped_reply(slug: str, facts: dict[str, Any]) -> Reply:
    lines = []
    if facts.get("override"):
        lines.append(f"Shipped with an override: {facts['override']}.")
        lines.extend(f"Unmet at shipping: {u}." for u in facts.get("unmet") or ())
    lines.append("Its gaps keep being checked in production; a reopened gap is announced here.")
    return Reply(
        text=shipped_headline(slug, facts),
        tone=Tone.success,
        lines=tuple(lines),
        actions=(Action("Status", command=f"status {slug}"),),
    )


def reopened_headline(slug: str, facts: dict[str, Any]) -> str:
    """`support-drafts is in production and its quality gap reopened: 88% < bar 90%`."""
    label = str(facts.get("label") or facts.get("gap") or "a").lower()
    return f"{slug} is in production and its {label} gap reopened: {facts.get('reason', '')}"


def gap_reopened_reply(slug: str, facts: dict[str, Any], owner: str | None = None) -> Reply:
    """`owner`: a mention token, for the escalation channel's copy (the owner is pinged there too)."""
    ping = (f"Pinging {owner}.",) if owner else ()
    return Reply(
        text=reopened_headline(slug, facts),
        tone=Tone.error,
        lines=(
            *ping,
            f"`status {slug}` shows what it needs; `pause {slug}` stops its check-ins while it is fixed.",
        ),
        actions=(
            Action("Status", command=f"status {slug}"),
            Action("History", command=f"history {slug}"),
            kill_action(slug, "production gap reopened"),
        ),
    )
