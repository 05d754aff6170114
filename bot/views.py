"""Builders: reports -> neutral replies. All user-facing wording of cards lives here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from bot.commands import GRAMMAR, WEEKDAYS
from bot.gaps import (
    OPTIONAL_ITEMS,
    REQUIRED_ITEMS,
    Gap,
    GapResult,
    GapState,
    Reason,
    fmt_pct,
    improvement,
    verdict,
)
from bot.gate import gate_hint
from bot.lifecycle import policy, portfolio_header, portfolio_line
from bot.ports import Actor
from bot.replies import (
    READY,
    Action,
    GapCard,
    GapRow,
    Intent,
    MetricLine,
    Portfolio,
    PortfolioRow,
    Reply,
    Tone,
    mention,
)
from bot.reports import PilotReport, PortfolioEntry, PortfolioPage
from bot.schedule.operator import undeliverable_line
from storage.models import Pilot, Stage
from storage.scorecard import Counts

PORTFOLIO_PAGE = 25
INTERNAL_ERROR = "Something went wrong on our side; nothing was changed. Please try again."


def owner_label(platform: str | None, user_id: str | None, name: str | None) -> str | None:
    if user_id is None:
        return None
    return f"@{name or user_id}"


# What to do about each open or at-risk gap, keyed on its reason code: (short form, full sentence).
# {slug} is the pilot, {reason} the gap's sentence, {todo} the production-path items not done.
_NEXT_STEPS: dict[Reason, tuple[str, str]] = {
    Reason.no_baseline: ("record a baseline", "Record a pre-pilot number: `baseline {slug} <metric> <value> <unit>`"),
    Reason.baselines_after_golive: (
        "find a pre-go-live baseline",
        "Every baseline was measured after go-live: find a pre-go-live number "
        "(`baseline {slug} <metric> <value> at <YYYY-MM-DD>`)",
    ),
    Reason.no_owner: ("name an owner", "Name one accountable owner: `owner {slug} @someone`"),
    Reason.orphaned: (
        "owner missed 2 check-ins",
        "The owner missed two check-ins: confirm or reassign with `owner {slug} @someone`",
    ),
    Reason.missed_last: ("answer the check-in", "The last weekly check-in was missed: answer this week's"),
    Reason.no_threshold: ("set an eval bar", "Write the acceptance bar: `threshold {slug} 95 min-cases 100`"),
    Reason.no_eval: ("run the eval", "Score the eval set and record it: `eval {slug} <pct> cases <n>`"),
    Reason.too_few_cases: ("grow the eval set", "Grow the labelled eval set ({reason})"),
    Reason.below_bar: ("fix quality below bar", "Quality is below the bar ({reason}): fix and re-run the eval"),
    Reason.path_todo: ("finish the production path", "Finish the production path ({todo}): `path {slug} <item> done`"),
}


def next_step(slug: str, gap: GapResult, short: bool = False) -> str:
    """The advice for a gap that is not closed ("" for a closed one: nothing to do)."""
    short_text, sentence = _NEXT_STEPS.get(gap.code, ("", ""))
    if short:
        return short_text
    return sentence.format(slug=slug, reason=gap.reason, todo=gap.reason.removeprefix("to do: "))


def gap_card(report: PilotReport, wiring: str | None = None) -> GapCard:
    """`wiring`: the kill-switch's read evidence (bot.flags.Flags.wiring), shown on its path item."""
    p = report.pilot
    rows = tuple(GapRow(r.gap, r.state, r.reason) for r in report.gaps.results)
    metrics = tuple(
        MetricLine(
            m.key,
            improvement(m),
            verdict(m),
        )
        for m in report.metrics
    )
    eval_line = None
    if report.evals:
        run = report.evals[0]
        bits = [f"{fmt_pct(run.score)} on {run.cases} cases"]
        if report.policy:
            bits.append(f"bar {fmt_pct(report.policy.threshold)}")
        if len(report.evals) > 1:
            delta = run.score - report.evals[1].score
            bits.append(f"{'+' if delta >= 0 else '−'}{abs(round(delta, 1)):g} pts vs previous")
        if run.version:
            bits.append(f"version {run.version}")
        bits.append(run.run_at.date().isoformat())
        eval_line = ", ".join(bits)
    elif report.policy:
        eval_line = f"no run yet; bar {fmt_pct(report.policy.threshold)} on ≥ {report.policy.min_cases} cases"
    states = {i.item: i for i in report.path}
    shown = list(REQUIRED_ITEMS) + [i for i in OPTIONAL_ITEMS if i in states or (i == KILL_ITEM and wiring)]
    path_line = ", ".join(
        f"{'☑' if states.get(i) and states[i].state == 'done' else '☐'} {i}"
        + (f" ({wiring})" if i == KILL_ITEM and wiring else "")
        for i in shown
    )
    steps = tuple(next_step(p.slug, r) for r in report.gaps.results if r.state is not GapState.closed)
    hint = gate_line(report)
    if hint:
        steps += (hint,)
    return GapCard(
        slug=p.slug,
        name=p.name,
        stage=p.stage,
        ready=report.gaps.ready,
        gaps=rows,
        owner=owner_label(p.owner_platform, p.owner_id, p.owner_name),
        go_live=p.go_live.isoformat() if p.go_live else None,
        metrics=metrics,
        eval_line=eval_line,
        path_line=path_line,
        next_steps=steps,
    )


KILL_ITEM = "kill-switch"


def flag_line(p: Pilot) -> str:
    """The kill switch on `status <slug>`: on, or off with who turned it off, when and why."""
    if p.stage == Stage.retired.value:
        return "Kill switch: off in production (retired)."
    if p.flag_on:
        return "Kill switch: on in production (its flag reads `true`)."
    who = p.flag_changed_by or "someone"
    if p.owner_id and who == f"{p.owner_platform}:{p.owner_id}":
        who = f"@{p.owner_name or p.owner_id}"
    when = f" {p.flag_changed_at:%Y-%m-%d %H:%M} UTC" if p.flag_changed_at else ""
    return (
        f"Kill switch: OFF in production since{when}, by {who}: {p.flag_reason or 'no reason given'} "
        f"(`restore {p.slug}` turns it back on)."
    )


def gate_line(report: PilotReport) -> str | None:
    """The card's line about the ship gate (SPEC §8): only for a running pilot whose gaps are closed."""
    if report.gate is None or report.pilot.stage != Stage.pilot.value:
        return None
    return gate_hint(report.pilot.slug, report.gate)


def _person(ref: str | None, owner_ref: str | None, owner_name: str | None) -> str:
    platform, _, user_id = (ref or "?:someone").partition(":")
    return mention(platform, user_id, owner_name if ref == owner_ref else None)


def stage_lines(pilot: Any, tz: str = "UTC") -> list[str]:
    """What `status <slug>` says about the stage: paused since/by/why, the override it shipped with."""
    owner_ref = f"{pilot.owner_platform}:{pilot.owner_id}" if pilot.owner_id else None
    out = []
    if pilot.stage in (Stage.paused.value, Stage.retired.value) and pilot.stage_changed_at is not None:
        since = pilot.stage_changed_at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
        why = f": {pilot.stage_reason}" if pilot.stage_reason else ""
        who = _person(pilot.stage_changed_by, owner_ref, pilot.owner_name)
        out.append(f"{pilot.stage.capitalize()} since {since} by {who}{why}.")
        if pilot.stage == Stage.paused.value:
            out.append(f"`resume {pilot.slug}` returns it to {pilot.paused_from or Stage.pilot.value}.")
    if pilot.stage == Stage.production.value and pilot.override_by:
        who = _person(pilot.override_by, owner_ref, pilot.owner_name)
        out.append(f"Shipped with an override by {who}: {pilot.override_reason}.")
    return out


def _refused_line(report: PilotReport) -> str | None:
    """The escalation channel refuses posts (bot/schedule/channels.py): what would let the bot in."""
    from bot.schedule.messages import channel_unreachable_line  # messages.py builds on this module

    r = report.refused_channel
    if r is None:
        return None
    return channel_unreachable_line(r.channel.platform, r.channel.name or r.channel.id, report.pilot.slug, r.reason)


def status_reply(report: PilotReport, viewer: Actor | None = None, wiring: str | None = None) -> Reply:
    """`wiring`: the kill-switch's read evidence (bot.flags.Flags.wiring), shown on its path item."""
    p = report.pilot
    slug = p.slug
    warnings = [w for w in (undeliverable_line(report.undeliverable), _refused_line(report)) if w]
    actions = [Action("History", command=f"history {slug}"), Action("Audit log", command=f"audit {slug}")]
    owner = viewer is not None and (p.owner_platform, p.owner_id) == (viewer.platform, viewer.user_id)
    if owner and p.stage == Stage.pilot.value and report.gate is not None and report.gate.met:
        actions.insert(0, Action("Ship", command=f"ship {slug}", style="primary"))
    return Reply(
        card=gap_card(report, wiring),
        lines=(flag_line(p), *stage_lines(p, p.checkin_tz or "UTC"), *warnings),
        tone=Tone.success if report.gaps.ready else Tone.info,
        actions=tuple(actions),
    )


def portfolio_reply(entries: Sequence[PortfolioEntry], page: int = PORTFOLIO_PAGE) -> Reply:
    # SPEC §8: the header counts the whole portfolio's active pilots; retired ones are not listed.
    summary = portfolio_line((e.pilot.stage, e.gaps.ready) for e in entries)
    active = [e for e in entries if policy(e.pilot.stage).counted]
    entries = [e for e in entries if policy(e.pilot.stage).listed]
    ready = sum(1 for e in active if e.gaps.ready)
    counts: dict[str, dict[str, int]] = {g.value: {s.value: 0 for s in GapState} for g in Gap}
    for e in entries:
        for r in e.gaps.results:
            counts[r.gap.value][r.state.value] += 1
    # Pilots that need attention first; ready ones last; then by slug.
    ordered = sorted(entries, key=lambda e: (e.gaps.ready, e.pilot.slug))
    rows = [portfolio_row(e) for e in ordered[:page]]
    return Reply(
        portfolio=Portfolio(ready, len(active), summary, tuple(rows), max(0, len(entries) - page), counts),
    )


def header_line(counts: Counts) -> str:
    """SPEC §8's header over the whole portfolio (bot.lifecycle.portfolio_header) from the stored
    aggregate, never from a list of every pilot."""
    return portfolio_header(counts.ready, counts.active, counts.production)


_EMPTY = {
    "at-risk": "No pilot has a gap open or at risk.",
    "ready": "No pilot is ready to ship yet.",
    "mine": "You own no pilots.",
    "production": "No pilot is in production.",
    "retired": "No pilot is retired.",
}


def portfolio_row(e: PortfolioEntry) -> PortfolioRow:
    p = e.pilot
    first_gap = next((r for r in e.gaps.results if r.state is not GapState.closed), None)
    return PortfolioRow(
        slug=p.slug,
        name=p.name,
        states=tuple(r.state for r in e.gaps.results),  # type: ignore[arg-type]
        ready=e.gaps.ready,
        owner=owner_label(p.owner_platform, p.owner_id, p.owner_name),
        next_step=next_step(p.slug, first_gap, short=True) if first_gap else READY,
    )


def portfolio_page_reply(page: PortfolioPage) -> Reply:
    """One page of the stored portfolio, riskiest first; header counts cover every pilot."""
    counts = page.counts
    words = ["status", *([page.filter] if page.filter else [])]
    nxt = " ".join([*words, "page", str(page.next_page)]) if page.next_page else None
    return Reply(
        portfolio=Portfolio(
            counts.ready,
            counts.active,
            header_line(counts),
            tuple(portfolio_row(e) for e in page.entries),
            max(0, page.matching - page.page * len(page.entries)) if page.entries else 0,
            counts.gaps,
            page=page.page,
            pages=page.pages,
            next_command=nxt,
            empty_text=_EMPTY.get(page.filter or "") if page.matching == 0 and counts.active else None,
        ),
    )


def transition_phrase(gap: str, before: str | None, after: str) -> str:
    """`quality gap closed`, `owner gap reopened`, `now ready to ship`: one stored transition."""
    if gap == "ready":
        return "now ready to ship" if after == "closed" else "no longer ready to ship"
    label = Gap(gap).label.lower()
    if after == "closed":
        verb = "closed"
    elif before == "closed":
        verb = "reopened" if after == "open" else "reopened (at risk)"
    else:
        verb = "at risk" if after == "at_risk" else "open"
    return f"{label} gap {verb}"


def help_reply(prefix: str = "") -> Reply:
    lines = [f"`{prefix}{usage}` — {summary}. e.g. `{prefix}{example}`" for _, usage, example, summary in GRAMMAR]
    return Reply(text="pilotbot commands:", lines=tuple(lines))


def error_reply(sentence: str, with_help: bool = False) -> Reply:
    if with_help:
        return Reply(text=sentence, tone=Tone.error, lines=help_reply().lines)
    return Reply(text=sentence, tone=Tone.error)


def done_reply(text: str, *lines: str, actions: tuple[Action, ...] = ()) -> Reply:
    return Reply(text=text, tone=Tone.success, lines=tuple(lines), actions=actions)


def checkin_action(slug: str) -> Action:
    """The button under every check-in message: opens the check-in form of `slug`."""
    return Action("Report this week's numbers", intent=Intent.OPEN_CHECKIN, slug=slug, style="primary")


def weekday_name(i: int) -> str:
    return WEEKDAYS[i].capitalize()
