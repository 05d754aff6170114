"""The neutral reply model every surface renders, and its plain-text renderer.

Slack Block Kit and Teams Adaptive Cards render the same dataclasses; the plain text is
also their notification fallback. Every sentence a user reads comes from here or from the
builders in bot/views.py; a renderer only lays the model out (marks, bold, order, limits).
A sentence that names a command is a `Hint`, so each surface writes the command its way
(`/pilot status <slug>` on Slack, a code span in text, bold on Teams).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from bot.forms import CheckinForm
from bot.gaps import Gap, GapState


class Tone(StrEnum):
    info = "info"
    success = "success"
    warning = "warning"
    error = "error"


class Intent(StrEnum):
    """What a button does, in the core's words; each adapter maps it to its own ids."""

    RUN_COMMAND = "run_command"  # run `Action.command` as if the user had typed it
    OPEN_CHECKIN = "open_checkin"  # open the check-in form of `Action.slug`
    # Turn `Action.slug` off in production: the surface confirms first (`Action.confirm`) and asks for
    # the reason, `Action.command` (`kill <slug> <default reason>`) when the user gives none.
    KILL = "kill"


STATE_MARK = {GapState.closed: "✅", GapState.at_risk: "⚠️", GapState.open: "❌"}
STATE_WORD = {GapState.closed: "closed", GapState.at_risk: "at risk", GapState.open: "open"}
GAP_SHORT = {Gap.baseline: "base", Gap.owner: "own", Gap.quality: "qc", Gap.path: "path"}  # text table columns
GAPS_LEGEND = "Gaps: baseline · owner · quality · production path"
READY = "ready to ship"
NOT_READY = "not ready to ship"
OWNER_LABEL = "owner"
GO_LIVE_LABEL = "go-live"
METRICS_TITLE = "Metrics vs baseline"
EVAL_TITLE = "Latest eval"
PATH_TITLE = "Production path"
NEXT_TITLE = "Next steps"


# A person named in a sentence. The sentence carries a token instead of a name, so each surface can
# write a real mention that notifies (Slack `<@U…>`, a Teams mention entity) and plain text `@name`.
_OPEN, _SEP, _CLOSE = "\ue000", "\ue001", "\ue002"
_MARKS = str.maketrans("", "", _OPEN + _SEP + _CLOSE)
MENTION_RE = re.compile(f"{_OPEN}([^{_SEP}{_CLOSE}]*){_SEP}([^{_SEP}{_CLOSE}]*){_SEP}([^{_SEP}{_CLOSE}]*){_CLOSE}")


@dataclass(frozen=True)
class Person:
    platform: str
    id: str
    name: str


def mention(platform: str, user_id: str, name: str | None = None) -> str:
    """The token for a person inside a sentence; renderers turn it into their platform's mention."""
    parts = (platform, user_id, name or user_id)
    return _OPEN + _SEP.join(p.translate(_MARKS) for p in parts) + _CLOSE


def mentions_in(text: str) -> list[Person]:
    return [Person(*m.groups()) for m in MENTION_RE.finditer(text)]


def expand_mentions(text: str, write: Callable[[Person], str]) -> str:
    return MENTION_RE.sub(lambda m: write(Person(*m.groups())), text)


def plain_mentions(text: str) -> str:
    return expand_mentions(text, lambda p: "@" + p.name)


@dataclass(frozen=True)
class Hint:
    """A sentence naming a command: `before` + the command + `after`."""

    before: str
    command: str
    after: str = ""

    @property
    def text(self) -> str:
        return f"{self.before}`{self.command}`{self.after}"


def more_note(n: int, what: str) -> str:
    """What a renderer says for the items it had to leave out to stay inside a surface's limits."""
    return f"… and {n} more {what}"


def more_fields_hint(n: int) -> Hint:
    """Under a check-in form cut to fit a surface: the other metrics are recorded by command."""
    return Hint(more_note(n, "metrics") + ": use ", "measure", ".")


@dataclass(frozen=True)
class Confirm:
    """The question a surface asks before a drastic action: title, sentence, the two buttons, and the
    label of the reason field (a surface that can take typed input asks for the reason there)."""

    title: str
    text: str
    yes: str
    no: str = "Cancel"
    reason_label: str = "Why? (the production system sees this)"


@dataclass(frozen=True)
class Action:
    """A follow-up the user can take: a command to run, or another neutral intent about a pilot."""

    label: str
    command: str | None = None  # Intent.RUN_COMMAND: the command text
    intent: Intent = Intent.RUN_COMMAND
    slug: str | None = None  # the pilot a non-command intent is about
    style: str | None = None  # "primary" | "danger" | None
    confirm: Confirm | None = None  # asked before the action runs (Intent.KILL always asks)

    def __post_init__(self) -> None:
        if self.intent is Intent.RUN_COMMAND and not self.command:
            raise ValueError(f"action {self.label!r} runs a command but names none")
        if self.intent is Intent.KILL and (not self.command or self.confirm is None):
            raise ValueError(f"kill action {self.label!r} needs its default command and a confirmation")
        if self.intent is not Intent.RUN_COMMAND and not self.slug:
            raise ValueError(f"action {self.label!r} ({self.intent}) names no pilot")


@dataclass(frozen=True)
class GapRow:
    gap: Gap
    state: GapState
    reason: str

    @property
    def label(self) -> str:
        return self.gap.label

    @property
    def mark(self) -> str:
        return STATE_MARK[self.state]

    @property
    def word(self) -> str:
        return STATE_WORD[self.state]


@dataclass(frozen=True)
class MetricLine:
    key: str
    text: str
    verdict: str | None  # "better" | "worse" | "no change" | None (no measurement)


@dataclass(frozen=True)
class GapCard:
    slug: str
    name: str
    stage: str
    ready: bool
    gaps: tuple[GapRow, ...]
    owner: str | None = None
    go_live: str | None = None
    metrics: tuple[MetricLine, ...] = ()
    eval_line: str | None = None
    path_line: str | None = None
    next_steps: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        return READY if self.ready else NOT_READY


@dataclass(frozen=True)
class PortfolioRow:
    slug: str
    name: str
    states: tuple[GapState, GapState, GapState, GapState]
    ready: bool
    owner: str | None
    next_step: str  # the first thing to do, or "ready to ship"

    @property
    def marks(self) -> tuple[str, ...]:
        return tuple(STATE_MARK[s] for s in self.states)


@dataclass(frozen=True)
class Portfolio:
    ready: int
    total: int
    summary: str  # "1 of 3 pilots ready to ship (33%)"
    rows: tuple[PortfolioRow, ...]
    more: int = 0  # pilots not shown
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # gap -> state -> n
    legend: str = GAPS_LEGEND
    columns: tuple[str, ...] = tuple(GAP_SHORT.values())
    page: int = 1
    pages: int = 1
    next_command: str | None = None  # the command showing the next page
    empty_text: str | None = None  # a filter that matches nothing says so instead of "no pilots yet"

    @property
    def empty_hint(self) -> Hint | None:
        if self.rows:
            return None
        if self.empty_text:
            return Hint(self.empty_text + " ", "status", " shows the whole portfolio.")
        return Hint("No pilots yet: ", "new <slug> <name>", " registers one.")

    @property
    def more_hint(self) -> Hint | None:
        if self.next_command:
            return Hint(f"Page {self.page} of {self.pages}; ", self.next_command, " shows the next.")
        if self.pages > 1:
            return Hint(f"Page {self.page} of {self.pages}; ", "status", " starts again.")
        return Hint(f"… and {self.more} more; ", "status <slug>", " shows one pilot.") if self.more else None


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[float, ...]
    reference: float | None = None  # the bar or the baseline
    reference_label: str | None = None
    unit: str = ""


@dataclass(frozen=True)
class Reply:
    text: str = ""  # headline sentence; also the notification fallback
    tone: Tone = Tone.info
    lines: tuple[str, ...] = ()
    card: GapCard | None = None
    portfolio: Portfolio | None = None
    series: tuple[Series, ...] = ()
    actions: tuple[Action, ...] = ()
    form: CheckinForm | None = None  # a check-in to fill in (Teams renders it inline)

    @property
    def ok(self) -> bool:
        """Whether the request was accepted: every refusal is worded in the error tone."""
        return self.tone is not Tone.error


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: tuple[float, ...] | list[float]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = hi - lo
    if span == 0:
        return SPARK[3] * len(values)
    return "".join(SPARK[min(7, int((v - lo) / span * 7 + 0.5))] for v in values)


def series_summary(s: Series, points: int = 60) -> str:
    """`▁▆█ latest 93.4% (bar 90%)`: the sparkline of the newest points and the last value."""
    last = f"{s.values[-1]:g}{s.unit}" if s.values else "—"
    ref = f" ({s.reference_label})" if s.reference_label else ""
    return f"{sparkline(s.values[-points:])} latest {last}{ref}"


def render_gap_card_text(card: GapCard) -> list[str]:
    lines = [f"{card.name} ({card.slug}) — {card.stage}, {card.verdict}"]
    facts = []
    if card.owner:
        facts.append(f"{OWNER_LABEL} {card.owner}")
    if card.go_live:
        facts.append(f"{GO_LIVE_LABEL} {card.go_live}")
    if facts:
        lines.append("  " + " · ".join(facts))
    for row in card.gaps:
        lines.append(f"  {row.mark} {row.label}: {row.word} — {row.reason}")
    if card.metrics:
        lines.append(f"  {METRICS_TITLE}:")
        lines.extend(f"    {m.text}" for m in card.metrics)
    if card.eval_line:
        lines.append(f"  {EVAL_TITLE}: {card.eval_line}")
    if card.path_line:
        lines.append(f"  {PATH_TITLE}: {card.path_line}")
    if card.next_steps:
        lines.append(f"  {NEXT_TITLE}:")
        lines.extend(f"    • {s}" for s in card.next_steps)
    return lines


def render_portfolio_text(p: Portfolio) -> list[str]:
    lines = [p.summary]
    if p.empty_hint:
        return lines + [p.empty_hint.text]
    width = max(len(r.slug) for r in p.rows)
    # The heads sit over the two-cell-wide marks as they always have: "base own  qc  path".
    lines.append(f"  {'pilot'.ljust(width)}  {' '.join(p.columns[:2])}  {'  '.join(p.columns[2:])}")
    for r in p.rows:
        lines.append(f"  {r.slug.ljust(width)}  {'  '.join(r.marks)}  {r.next_step}")
    if p.more_hint:
        lines.append(f"  {p.more_hint.text}")
    return lines


def render_text(reply: Reply, keep_mentions: bool = False) -> str:
    """The reply as plain text; mentions as `@name`, or still as tokens for a renderer that writes
    its own (`keep_mentions`: Slack's notification text, the Teams mention entities)."""
    out: list[str] = []
    if reply.text:
        out.append(reply.text)
    if reply.portfolio:
        out.extend(render_portfolio_text(reply.portfolio))
    if reply.card:
        out.extend(render_gap_card_text(reply.card))
    out.extend(f"  {s.label.ljust(16)} {series_summary(s)}" for s in reply.series)
    out.extend(reply.lines)
    commands = [a.command for a in reply.actions if a.command]
    if commands:
        out.append("Try: " + " · ".join(f"`{c}`" for c in commands))
    text = "\n".join(out)
    return text if keep_mentions else plain_mentions(text)
