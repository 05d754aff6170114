"""Corrections (SPEC §8): a voided eval, measurement or baseline changes the gap card, the gate,
`history` and its chart series exactly as if it had never been made; `history` and `audit` show
the void with who and why. Console, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FixedClock
from bot.core import Core
from bot.replies import Reply, render_text
from tests.test_services import BOB, EVE
from tests.test_ship_story import SLUG, gaps_closed_pilot, refuse, run


def _card(core: Core) -> Reply:
    reply = core.router.handle(f"status {SLUG}", BOB)
    assert reply.card is not None
    return reply


def _series(core: Core) -> dict[str, tuple[float, ...]]:
    return {s.label: s.values for s in core.router.handle(f"history {SLUG}", BOB).series}


def _comparable(reply: Reply) -> str:
    return render_text(reply)


def test_void_eval_restores_the_previous_run_and_the_quality_gap(core: Core, clock: FixedClock) -> None:
    gaps_closed_pilot(core, clock)
    before = _comparable(_card(core))
    before_series = _series(core)
    clock.advance(timedelta(hours=1))
    run(core, f"eval {SLUG} 99% cases 3")  # a 3-case test import: quality gap at risk
    assert "latest eval has 3 cases < 100 needed" in render_text(_card(core))
    assert "Only the owner" in refuse(core, f"void {SLUG} eval oops", EVE)
    out = run(core, f"void {SLUG} eval test import")
    assert "the latest is now 93.4% on 120 cases" in out
    clock.advance(timedelta(minutes=1))
    assert _comparable(_card(core)) == before
    assert _series(core) == before_series
    history = run(core, f"history {SLUG}")
    assert "void: eval 99% on 3 cases of 2026-11-25 (voided 2026-11-25 by console:bob: test import)" in history
    audit = run(core, f"audit {SLUG}")
    assert "console:bob  void  record=eval, score=99.0, cases=3, void=True, reason=test import" in audit
    run(core, f"void {SLUG} eval")
    assert "no eval run" in render_text(_card(core))
    assert "has no eval run to withdraw" in refuse(core, f"void {SLUG} eval")


def test_void_measurement_and_baseline_as_if_never_made(core: Core, clock: FixedClock) -> None:
    gaps_closed_pilot(core, clock)
    run(core, f"golive {SLUG} 2026-11-10")
    core.services.answer_checkin(BOB, SLUG, {"handle_time": "9"})
    ready = _comparable(_card(core))
    assert "ready: `ship support-drafts`" in ready
    series = _series(core)

    run(core, f"measure {SLUG} handle_time 250")  # a typo: now worse than the baseline
    assert "worse than its baseline" in render_text(_card(core))
    assert "worse than its baseline" in refuse(core, f"ship {SLUG}")
    run(core, f"void {SLUG} measure handle_time typo, meant 9")
    assert _comparable(_card(core)) == ready
    assert _series(core) == series
    assert "void: handle_time 250 of 2026-11-25" in run(core, f"history {SLUG}")

    run(core, f"baseline {SLUG} revision_rate 38% lower at 2026-11-01")
    assert "revision_rate has no measurement after go-live" in render_text(_card(core))
    out = run(core, f"void {SLUG} baseline revision_rate wrong metric")
    assert "Withdrew the `support-drafts` metric revision_rate" in out
    assert _comparable(_card(core)) == ready
    assert _series(core) == series
    history = run(core, f"history {SLUG}")
    assert "void: metric revision_rate (baseline 38 %; voided 2026-11-25 by console:bob: wrong metric)" in history
    assert "has no metric `revision_rate`" in refuse(core, f"measure {SLUG} revision_rate 20")
    assert "record=baseline, metric=revision_rate" in run(core, f"audit {SLUG}")
    # A new baseline starts the metric again, without its withdrawn measurements.
    run(core, f"baseline {SLUG} revision_rate 30% lower at 2026-11-01")
    assert "revision_rate has no measurement after go-live" in render_text(_card(core))
