"""The neutral reply model every surface renders, and its plain-text renderer.

Slack Block Kit and Teams Adaptive Cards render the same dataclasses; the plain text is
also their notification fallback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bot.forms import CheckinForm
from bot.gaps import Gap, GapState


class Tone(StrEnum):
    info = "info"
    success = "success"
    warning = "warning"
    error = "error"


STATE_MARK = {GapState.closed: "✅", GapState.at_risk: "⚠️", GapState.open: "❌"}
STATE_WORD = {GapState.closed: "closed", GapState.at_risk: "at risk", GapState.open: "open"}


@dataclass(frozen=True)
class Action:
    """A follow-up the user can take: a command to run, or a named interaction."""

    label: str
    command: str | None = None
    action_id: str | None = None  # for interactions (e.g. "checkin_open"), else None
    value: str | None = None
    style: str | None = None  # "primary" | "danger" | None


@dataclass(frozen=True)
class GapRow:
    gap: Gap
    state: GapState
    reason: str

    @property
    def label(self) -> str:
        return self.gap.label


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


@dataclass(frozen=True)
class PortfolioRow:
    slug: str
    name: str
    states: tuple[GapState, GapState, GapState, GapState]
    ready: bool
    owner: str | None
    next_step: str


@dataclass(frozen=True)
class Portfolio:
    ready: int
    total: int
    summary: str  # "1 of 3 pilots ready to ship (33%)"
    rows: tuple[PortfolioRow, ...]
    more: int = 0  # pilots not shown
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # gap -> state -> n


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
    ok: bool = True
    form: CheckinForm | None = None  # a check-in to fill in (Teams renders it inline)


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
    verdict = "ready to ship" if card.ready else "not ready to ship"
    lines = [f"{card.name} ({card.slug}) — {card.stage}, {verdict}"]
    facts = []
    if card.owner:
        facts.append(f"owner {card.owner}")
    if card.go_live:
        facts.append(f"go-live {card.go_live}")
    if facts:
        lines.append("  " + " · ".join(facts))
    for row in card.gaps:
        lines.append(f"  {STATE_MARK[row.state]} {row.label}: {STATE_WORD[row.state]} — {row.reason}")
    if card.metrics:
        lines.append("  Metrics:")
        lines.extend(f"    {m.text}" for m in card.metrics)
    if card.eval_line:
        lines.append(f"  Eval: {card.eval_line}")
    if card.path_line:
        lines.append(f"  Path: {card.path_line}")
    if card.next_steps:
        lines.append("  Next:")
        lines.extend(f"    • {s}" for s in card.next_steps)
    return lines


def render_portfolio_text(p: Portfolio) -> list[str]:
    lines = [p.summary]
    if not p.rows:
        return lines + ["No pilots yet: `new <slug> <name>` registers one."]
    width = max(len(r.slug) for r in p.rows)
    lines.append(f"  {'pilot'.ljust(width)}  base own  qc  path")
    for r in p.rows:
        marks = "  ".join(f"{STATE_MARK[s]}" for s in r.states)
        tail = "ready to ship" if r.ready else r.next_step
        lines.append(f"  {r.slug.ljust(width)}  {marks}  {tail}")
    if p.more:
        lines.append(f"  … and {p.more} more; `status <slug>` shows one pilot.")
    return lines


def render_text(reply: Reply) -> str:
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
    return "\n".join(out)
