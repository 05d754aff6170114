"""Shared by the Slack and Teams alert tests: the SPEC §10 sequence and the labelled runs that flip.

93 → 89 → 88.5 → 95 → 92.5 with bar 90 and drop-alert 2 is exactly: (nothing for the first run),
page, nothing, recovery, warn.
"""

from __future__ import annotations

SEQUENCE = (93.0, 89.0, 88.5, 95.0, 92.5)
EXPECTED = (None, "page", None, "recovery", "warn")
HEADLINE = {
    "page": "Page: `{slug}` eval fell below the bar: 93% → 89%, bar 90%.",
    "recovery": "`{slug}` eval recovered: 88.5% → 95% clears the 90% bar again.",
    "warn": "Warning: `{slug}` eval dropped 2.5 pts: 95% → 92.5%, bar 90%.",
}
# Labelled runs (tests/test_evalscore_cli.py): run 1 JSONL 77.33%, run 2 JUnit 76.67%; bar 77%.
FLIPS = "3 cases regressed (case-1 amount, case-3 party, case-2), 2 fixed (case-7, case-14)"
