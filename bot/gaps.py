"""The four gap rules of SPEC §3 and the improvement formatting. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

REQUIRED_ITEMS: tuple[str, ...] = ("integration", "monitoring", "rollback")
OPTIONAL_ITEMS: tuple[str, ...] = ("data-plumbing", "audit-log", "human-review", "kill-switch")
PATH_ITEMS: tuple[str, ...] = REQUIRED_ITEMS + OPTIONAL_ITEMS

MINUS = "\u2212"
ARROW = "\u2192"


class Gap(StrEnum):
    baseline = "baseline"
    owner = "owner"
    quality = "quality"
    path = "path"

    @property
    def label(self) -> str:
        return _GAP_LABELS[self]


_GAP_LABELS = {
    Gap.baseline: "Baseline",
    Gap.owner: "Owner",
    Gap.quality: "Quality control",
    Gap.path: "Production path",
}


class GapState(StrEnum):
    closed = "closed"
    at_risk = "at_risk"
    open = "open"


@dataclass(frozen=True)
class MetricFacts:
    """A metric against its baseline: what `improvement` and `verdict` word."""

    key: str
    unit: str
    direction: str
    baseline: float
    baseline_at: date
    latest: float | None = None
    latest_at: datetime | None = None


@dataclass(frozen=True)
class EvalFacts:
    """The latest eval run, as the quality gap reads it."""

    score: float
    cases: int
    run_at: datetime
    version: str | None = None


@dataclass(frozen=True)
class CheckInFacts:
    """A check-in the owner gap judges: missed when unanswered past due_at + grace."""

    due_at: datetime
    answered_at: datetime | None


@dataclass(frozen=True)
class PilotFacts:
    """What the gap rules need to know about one pilot."""

    slug: str
    name: str
    go_live: date | None = None
    has_owner: bool = False
    baseline_dates: tuple[date, ...] = ()
    threshold: float | None = None
    min_cases: int = 100
    latest_eval: EvalFacts | None = None
    path_states: dict[str, str] = field(default_factory=dict)
    # Check-ins with due_at <= now, newest first; only the first two matter.
    due_checkins: tuple[CheckInFacts, ...] = ()


class Reason(StrEnum):
    """Why a gap is in its state: what advice (bot/views.py next_step) keys on, never the sentence."""

    no_baseline = "no_baseline"
    golive_unset = "golive_unset"
    baselines_after_golive = "baselines_after_golive"
    no_owner = "no_owner"
    orphaned = "orphaned"
    missed_last = "missed_last"
    no_checkin_due = "no_checkin_due"
    no_threshold = "no_threshold"
    no_eval = "no_eval"
    too_few_cases = "too_few_cases"
    below_bar = "below_bar"
    path_todo = "path_todo"
    ok = "ok"


@dataclass(frozen=True)
class GapResult:
    gap: Gap
    state: GapState
    reason: str  # the sentence shown to people
    code: Reason


@dataclass(frozen=True)
class GapReport:
    slug: str
    results: tuple[GapResult, ...]

    @property
    def ready(self) -> bool:
        return all(r.state is GapState.closed for r in self.results)

    def state(self, gap: Gap) -> GapState:
        return next(r.state for r in self.results if r.gap is gap)


def fmt_number(value: float) -> str:
    """14.0 -> '14', 9.25 -> '9.25', 1234567 -> '1234567'; never scientific notation."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text.replace("-", MINUS)


def fmt_pct(value: float) -> str:
    return f"{fmt_number(round(value, 2))}%"


def with_unit(value: float, unit: str) -> str:
    if not unit:
        return fmt_number(value)
    if unit in ("%", "$") or unit.startswith("%"):
        return f"{fmt_number(value)}{unit}" if unit != "$" else f"${fmt_number(value)}"
    return f"{fmt_number(value)} {unit}"


def _round_half_away(x: float) -> int:
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


def _signed(n: float, suffix: str) -> str:
    if n > 0:
        return f"+{fmt_number(n)}{suffix}"
    if n < 0:
        return f"{MINUS}{fmt_number(-n)}{suffix}"
    return f"0{suffix}"


def verdict(metric: MetricFacts) -> str | None:
    """ "better", "worse" or "no change" against the baseline, by the metric's direction."""
    if metric.latest is None:
        return None
    delta = metric.latest - metric.baseline
    if delta == 0:
        return "no change"
    better = delta < 0 if metric.direction == "lower" else delta > 0
    return "better" if better else "worse"


def improvement(metric: MetricFacts) -> str:
    """`handle_time 14 → 9 min (−36%, better)`; `%` metrics also show the point change."""
    base, latest, unit = metric.baseline, metric.latest, metric.unit
    if latest is None:
        return f"{metric.key} baseline {with_unit(base, unit)} ({metric.direction} is better), no measurement yet"
    if unit == "%":
        values = f"{fmt_number(base)}% {ARROW} {fmt_number(latest)}%"
    elif unit == "$":
        values = f"${fmt_number(base)} {ARROW} ${fmt_number(latest)}"
    elif unit:
        values = f"{fmt_number(base)} {ARROW} {fmt_number(latest)} {unit}"
    else:
        values = f"{fmt_number(base)} {ARROW} {fmt_number(latest)}"
    parts: list[str] = []
    delta = latest - base
    if unit == "%":
        parts.append(_signed(round(delta, 1), " pts"))
    if base != 0:
        parts.append(_signed(_round_half_away(delta / abs(base) * 100), "%"))
    parts.append(verdict(metric) or "")
    return f"{metric.key} {values} ({', '.join(parts)})"


def baseline_gap(facts: PilotFacts) -> GapResult:
    if not facts.baseline_dates:
        return GapResult(Gap.baseline, GapState.open, "no baseline recorded", Reason.no_baseline)
    n = len(facts.baseline_dates)
    noun = "baseline" if n == 1 else "baselines"
    if facts.go_live is None:
        return GapResult(Gap.baseline, GapState.closed, f"{n} {noun}; go-live not set yet", Reason.golive_unset)
    before = [d for d in facts.baseline_dates if d <= facts.go_live]
    if before:
        return GapResult(
            Gap.baseline,
            GapState.closed,
            f"{len(before)} of {n} {noun} measured on or before go-live {facts.go_live.isoformat()}",
            Reason.ok,
        )
    return GapResult(
        Gap.baseline,
        GapState.at_risk,
        f"every baseline was measured after go-live {facts.go_live.isoformat()} (reconstructed)",
        Reason.baselines_after_golive,
    )


def is_missed(checkin: CheckInFacts, now: datetime, grace: timedelta) -> bool:
    # The deadline's own instant belongs to "missed" on both sides: the scheduler escalates an
    # unanswered check-in at `due + grace`, so an answer at that instant is late too; were it on
    # time, a tick and an answer at one instant would give one check-in two verdicts.
    deadline = checkin.due_at + grace
    if checkin.answered_at is not None:
        return checkin.answered_at >= deadline
    return now >= deadline


def is_decided(checkin: CheckInFacts, now: datetime, grace: timedelta) -> bool:
    # A check-in still inside its grace period and unanswered has no verdict yet; judging it
    # "missed" early would flap the owner gap every Monday morning.
    return checkin.answered_at is not None or now >= checkin.due_at + grace


def owner_gap(facts: PilotFacts, now: datetime, grace: timedelta) -> GapResult:
    if not facts.has_owner:
        return GapResult(Gap.owner, GapState.open, "no owner", Reason.no_owner)
    decided = [c for c in facts.due_checkins if c.due_at <= now and is_decided(c, now, grace)]
    decided.sort(key=lambda c: c.due_at, reverse=True)
    missed = [is_missed(c, now, grace) for c in decided[:2]]
    if len(missed) == 2 and all(missed):
        return GapResult(Gap.owner, GapState.open, "orphaned: the last two check-ins were missed", Reason.orphaned)
    if missed and missed[0]:
        return GapResult(Gap.owner, GapState.at_risk, "the last check-in was missed", Reason.missed_last)
    if not decided:
        return GapResult(Gap.owner, GapState.closed, "owner set; no check-in due yet", Reason.no_checkin_due)
    return GapResult(Gap.owner, GapState.closed, "the last check-in was answered", Reason.ok)


def quality_gap(facts: PilotFacts) -> GapResult:
    if facts.threshold is None:
        return GapResult(Gap.quality, GapState.open, "no acceptance bar set", Reason.no_threshold)
    bar = fmt_pct(facts.threshold)
    run = facts.latest_eval
    if run is None:
        return GapResult(Gap.quality, GapState.open, f"no eval run yet ({bar} bar)", Reason.no_eval)
    if run.cases < facts.min_cases:
        return GapResult(
            Gap.quality,
            GapState.open,
            f"latest eval has {run.cases} cases < {facts.min_cases} needed",
            Reason.too_few_cases,
        )
    if run.score < facts.threshold:
        return GapResult(Gap.quality, GapState.open, f"latest eval {fmt_pct(run.score)} < {bar} bar", Reason.below_bar)
    return GapResult(
        Gap.quality,
        GapState.closed,
        f"latest eval {fmt_pct(run.score)} \u2265 {bar} bar on {run.cases} cases",
        Reason.ok,
    )


def path_gap(facts: PilotFacts) -> GapResult:
    todo = [i for i in REQUIRED_ITEMS if facts.path_states.get(i) != "done"]
    if todo:
        return GapResult(Gap.path, GapState.open, "to do: " + ", ".join(todo), Reason.path_todo)
    return GapResult(Gap.path, GapState.closed, "integration, monitoring and rollback done", Reason.ok)


def evaluate(facts: PilotFacts, now: datetime, grace: timedelta) -> GapReport:
    return GapReport(
        facts.slug,
        (baseline_gap(facts), owner_gap(facts, now, grace), quality_gap(facts), path_gap(facts)),
    )


def ready_line(ready: int, total: int) -> str:
    pct = _round_half_away(ready / total * 100) if total else 0
    noun = "pilot" if total == 1 else "pilots"
    return f"{ready} of {total} {noun} ready to ship ({pct}%)"
