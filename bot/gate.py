"""The ship gate of SPEC §8 as one pure function next to the gap rules, and its wording.

`gate(report, facts)` decides whether a pilot may move from `pilot` to `production`. It
reads only what it is handed (no I/O, no clock): the pilot's `GapReport` from `bot.gaps`
and a small `GateFacts` of non-void records, so every surface shows the same verdict.

Boundary decisions (tested in tests/test_gate.py):

- **A measurement on the go-live day does not count as "after go-live".** §3 reads a
  baseline measured on the go-live day as "before" (`on or before go_live`); the same day
  cannot also be "after", or one value taken the morning the AI was switched on would be
  both the before-state and the proof of ROI. "After" is a strictly later calendar day in
  the pilot's zone (`local_day` does that conversion for the caller).
- **A latest value equal to its baseline is not worse** (`verdict` says "no change"), so it
  does not block the gate: the rule is "no metric worse", not "every metric better".
- **A pilot with no metric cannot ship**, and no extra condition is needed for it: with no
  baseline the baseline gap is open (§3), which is already an unmet condition. The metric
  conditions are then vacuous and add nothing.
- **No go-live, or a go-live in the future,** is one unmet condition, and each metric then
  also lacks a measurement after go-live: the refusal lists both, as the rule reads.
- The go-live date is compared with `today` so a date entered before the guard against
  future dates existed (the issue's 2027-03-01) cannot satisfy the gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.gaps import REQUIRED_ITEMS, Gap, GapReport, GapResult, GapState, MetricFacts, improvement, verdict


class UnmetCode(StrEnum):
    """Stable ids of the gate's conditions: kept in the audit of an override, matched by tests."""

    baseline_gap = "baseline_gap"
    owner_gap = "owner_gap"
    quality_gap = "quality_gap"
    path_gap = "path_gap"
    no_go_live = "no_go_live"
    go_live_future = "go_live_future"
    not_measured = "not_measured"  # one per metric without a measurement after go-live
    worse_than_baseline = "worse_than_baseline"  # one per metric whose latest value is worse
    no_checkin_answered = "no_checkin_answered"


GAP_CODES: dict[Gap, UnmetCode] = {
    Gap.baseline: UnmetCode.baseline_gap,
    Gap.owner: UnmetCode.owner_gap,
    Gap.quality: UnmetCode.quality_gap,
    Gap.path: UnmetCode.path_gap,
}


@dataclass(frozen=True)
class GateMetric:
    """One metric as the gate sees it; `metric.latest` is the latest non-void value."""

    metric: MetricFacts
    # Local calendar days (pilot's zone) of the metric's non-void measurements, any order.
    # Days rather than a count so the "after go-live" boundary is decided here, once.
    measured_on: tuple[date, ...] = ()

    def measured_after(self, go_live: date | None) -> int:
        if go_live is None:
            return 0
        return sum(1 for d in self.measured_on if d > go_live)


@dataclass(frozen=True)
class GateFacts:
    """What the gate needs beyond the four gaps; all records non-void."""

    go_live: date | None
    today: date  # in the pilot's zone, like go_live
    metrics: tuple[GateMetric, ...] = ()
    # Weekly check-ins answered by the CURRENT owner (a previous owner's answers do not count).
    owner_answered: int = 0


@dataclass(frozen=True)
class Unmet:
    code: UnmetCode
    sentence: str  # a clause without a final period, so refusals can list several
    command: str  # the command that meets it, without backticks
    metric: str | None = None  # the metric key for the per-metric conditions

    @property
    def hint(self) -> str:
        return f"{self.sentence} — `{self.command}`"


@dataclass(frozen=True)
class GateVerdict:
    met: bool
    unmet: tuple[Unmet, ...] = ()

    def __post_init__(self) -> None:
        if self.met == bool(self.unmet):
            raise ValueError("a gate verdict is met exactly when nothing is unmet")

    @property
    def codes(self) -> tuple[UnmetCode, ...]:
        return tuple(u.code for u in self.unmet)

    @property
    def gaps_closed(self) -> bool:
        return not any(u.code in GAP_CODES.values() for u in self.unmet)


def local_day(at: datetime, tz: str) -> date:
    """The calendar day of a stored (UTC) timestamp in the pilot's zone: what `measured_on` holds."""
    return at.astimezone(ZoneInfo(tz)).date()


def answer_command(slug: str, metrics: Sequence[GateMetric]) -> str:
    pairs = " ".join(f"{m.metric.key} <value>" for m in metrics) or "<metric> <value>"
    return f"answer {slug} {pairs}"


def _gap_command(slug: str, result: GapResult, answer: str) -> str:
    # Matches the reasons of bot.gaps (tests build reports with gaps.evaluate, so a changed
    # reason fails them), as bot.views.next_step does for the card's next steps.
    if result.gap is Gap.baseline:
        if result.state is GapState.open:
            return f"baseline {slug} <metric> <value> <unit>"
        return f"baseline {slug} <metric> <value> at <YYYY-MM-DD>"
    if result.gap is Gap.owner:
        return answer if result.state is GapState.at_risk else f"owner {slug} @someone"
    if result.gap is Gap.quality:
        if "no acceptance bar" in result.reason:
            return f"threshold {slug} <pct> min-cases <n>"
        return f"eval {slug} <pct> cases <n>"
    todo = [i for i in REQUIRED_ITEMS if i in result.reason.removeprefix("to do:")]
    return f"path {slug} {todo[0] if len(todo) == 1 else '<item>'} done"


def _gap_unmet(slug: str, report: GapReport, answer: str) -> list[Unmet]:
    return [
        Unmet(
            GAP_CODES[r.gap],
            f"the {r.gap.label.lower()} gap is {r.state.value.replace('_', ' ')} ({r.reason})",
            _gap_command(slug, r, answer),
        )
        for r in report.results
        if r.state is not GapState.closed
    ]


def _go_live_unmet(slug: str, facts: GateFacts) -> list[Unmet]:
    command = f"golive {slug} <YYYY-MM-DD>"
    if facts.go_live is None:
        return [Unmet(UnmetCode.no_go_live, "go-live is not set", command)]
    if facts.go_live > facts.today:
        return [Unmet(UnmetCode.go_live_future, f"go-live {facts.go_live.isoformat()} is in the future", command)]
    return []


def _metric_unmet(slug: str, facts: GateFacts) -> list[Unmet]:
    out: list[Unmet] = []
    since = f" {facts.go_live.isoformat()}" if facts.go_live else ""
    # A future go-live has no "after" yet: nothing measured so far can count.
    live = facts.go_live if facts.go_live is not None and facts.go_live <= facts.today else None
    for gm in facts.metrics:
        m = gm.metric
        command = f"measure {slug} {m.key} <value>"
        if gm.measured_after(live) == 0:
            sentence = f"{m.key} has no measurement after go-live{since}"
            out.append(Unmet(UnmetCode.not_measured, sentence, command, m.key))
        if verdict(m) == "worse":
            values = improvement(m).removeprefix(f"{m.key} ")
            out.append(
                Unmet(UnmetCode.worse_than_baseline, f"{m.key} is worse than its baseline: {values}", command, m.key)
            )
    return out


def gate(report: GapReport, facts: GateFacts) -> GateVerdict:
    """SPEC §8's ship gate. Unmet conditions come in a fixed order: the four gaps (in §3's
    order), go-live, each metric (unmeasured, then worse), the owner's check-in."""
    slug = report.slug
    answer = answer_command(slug, facts.metrics)
    unmet = _gap_unmet(slug, report, answer) + _go_live_unmet(slug, facts) + _metric_unmet(slug, facts)
    if facts.owner_answered < 1:
        unmet.append(
            Unmet(UnmetCode.no_checkin_answered, "the current owner has not answered a weekly check-in yet", answer)
        )
    return GateVerdict(met=not unmet, unmet=tuple(unmet))


def refusal_sentence(slug: str, verdict: GateVerdict, *, offer_override: bool = False) -> str:
    """One sentence naming every unmet condition with its command (the `ship` refusal).

    `offer_override` adds the admins' way past the gate; the caller passes True for an admin.
    """
    if verdict.met:
        return f"{slug} meets the ship gate: `ship {slug}`."
    text = f"{slug} cannot ship yet: " + "; ".join(u.hint for u in verdict.unmet)
    if offer_override:
        text += f"; or, as an admin, ship it anyway with `ship {slug} override <reason>`"
    return text + "."


def gate_hint(slug: str, verdict: GateVerdict) -> str | None:
    """The gap card's line about the gate, for a pilot whose four gaps are closed.

    None while a gap is still open or at risk: the card's next steps already say what the
    gaps need, and repeating them as gate conditions would say it twice. The gate is the way
    out of stage `pilot` only; the caller shows this line for pilots in that stage.
    """
    if not verdict.gaps_closed:
        return None
    if verdict.met:
        return f"ready: `ship {slug}`"
    return "the ship gate still needs: " + "; ".join(u.hint for u in verdict.unmet)


def roi_lines(metrics: Sequence[MetricFacts]) -> tuple[str, ...]:
    """The ROI of a shipped pilot, one line per metric: `handle_time 14 → 9 min (−36%, better)`."""
    return tuple(improvement(m) for m in metrics)


def roi_line(metrics: Sequence[MetricFacts]) -> str:
    """The ROI lines on one line, for the shipping announcement and the digest."""
    # Only an override can ship a pilot without metrics; say so rather than print nothing.
    return "; ".join(roi_lines(metrics)) or "no metric recorded"
