"""The CI gate of an eval run (SPEC §10): does it clear the pilot's bar? Pure.

It fails when no bar is set (a gate that passes without a bar would let CI pass by forgetting
to set one), when the score is below the threshold, or when the run has fewer cases than the
bar's `min_cases`; every reason is listed. A score equal to the threshold clears it, as in the
quality gap (bot/gaps.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.gaps import fmt_pct


@dataclass(frozen=True)
class Gate:
    passed: bool
    reasons: list[str] = field(default_factory=list)  # empty when passed

    def as_doc(self) -> dict[str, Any]:
        """The REST form: `{"passed": …, "reasons": […]}`."""
        return {"passed": self.passed, "reasons": list(self.reasons)}

    def text(self) -> str:
        if self.passed:
            return "Gate passed."
        return "Gate failed: " + "; ".join(self.reasons) + "."


def gate(slug: str, score: float, cases: int, threshold: float | None, min_cases: int | None) -> Gate:
    """`threshold`/`min_cases` from the pilot's eval policy; `threshold=None` means no bar is set."""
    if threshold is None:
        return Gate(False, [f"no bar is set for `{slug}`: `threshold {slug} <pct> min-cases <n>`"])
    reasons = []
    if score < threshold:
        reasons.append(f"{fmt_pct(score)} is below the {fmt_pct(threshold)} bar")
    if min_cases is not None and cases < min_cases:
        reasons.append(f"{cases} {'case is' if cases == 1 else 'cases is'} fewer than the {min_cases} the bar needs")
    return Gate(not reasons, reasons)
