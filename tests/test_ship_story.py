"""SPEC §8 as the user lives it, on the console against a real database (SQLite and PostgreSQL):
`ship` refused with every unmet condition, the conditions met one by one, `ship` succeeding, the
pilot in production on every reader, and a reopened gap announced exactly once."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FixedClock
from bot.core import Core
from bot.ports import Actor
from bot.replies import render_text
from storage.db import session_scope
from storage.models import Escalation, EscalationKind, Pilot
from tests.helpers import row_counts
from tests.test_services import ANA, BOB, EVE, ROOT

SLUG = "support-drafts"


def run(core: Core, text: str, actor: Actor = BOB) -> str:
    reply = core.router.handle(text, actor)
    assert reply.ok, render_text(reply)
    return render_text(reply)


def refuse(core: Core, text: str, actor: Actor = BOB) -> str:
    before = row_counts(core.engine)
    reply = core.router.handle(text, actor)
    assert not reply.ok, render_text(reply)
    assert row_counts(core.engine) == before, "a refused command wrote to the database"
    return reply.text


def _escalations(core: Core, kind: EscalationKind) -> list[Escalation]:
    with session_scope(core.engine) as s:
        from sqlmodel import col, select

        return list(s.exec(select(Escalation).where(col(Escalation.kind) == kind.value)))


def _stage(core: Core) -> str:
    with session_scope(core.engine) as s:
        from storage import repo

        p = repo.pilot_by_slug(s, SLUG)
        assert p is not None
        return p.stage


def _answer_a_checkin(core: Core, values: dict[str, object]) -> None:
    core.services.answer_checkin(BOB, SLUG, values)


def gaps_closed_pilot(core: Core, clock: FixedClock) -> None:
    """Four closed gaps in five minutes: what issue 13 found already called "ready to ship"."""
    run(core, f"new {SLUG} Support reply drafts", ANA)
    run(core, f"owner {SLUG} @bob", ANA)
    run(core, f"escalate {SLUG} #ai-pilots")
    run(core, f"baseline {SLUG} handle_time 14 min lower at 2026-11-01")
    run(core, f"threshold {SLUG} 90 min-cases 100")
    run(core, f"eval {SLUG} 93.4% cases 120 version prompt-v9")
    for item in ("integration", "monitoring", "rollback"):
        run(core, f"path {SLUG} {item} done")


def test_ship_is_refused_until_every_condition_is_met_then_announced(core: Core, clock: FixedClock) -> None:
    gaps_closed_pilot(core, clock)
    card = run(core, f"status {SLUG}")
    assert "the ship gate still needs: go-live is not set — `golive support-drafts <YYYY-MM-DD>`" in card

    refused = refuse(core, f"ship {SLUG}")
    assert refused.startswith(f"{SLUG} cannot ship yet: go-live is not set — `golive {SLUG} <YYYY-MM-DD>`")
    assert f"handle_time has no measurement after go-live — `measure {SLUG} handle_time <value>`" in refused
    assert "the current owner has not answered a weekly check-in yet — `answer support-drafts handle_time" in refused
    assert "override" not in refused  # the owner is not an admin: no way past the gate offered
    assert refused.count(".") >= 1 and "\n" not in refused  # one sentence

    # A future go-live is refused with one sentence, and nothing is written.
    future = (clock.now() + timedelta(days=90)).date().isoformat()
    assert "cannot be in the future" in refuse(core, f"golive {SLUG} {future}")
    run(core, f"golive {SLUG} 2026-11-10")
    refused = refuse(core, f"ship {SLUG}")
    assert "go-live is not set" not in refused and "handle_time has no measurement after go-live 2026-11-10" in refused

    run(core, f"measure {SLUG} handle_time 16")  # measured after go-live, but worse than its baseline
    refused = refuse(core, f"ship {SLUG}")
    assert "has no measurement after go-live" not in refused
    assert f"handle_time is worse than its baseline: 14 → 16 min (+14%, worse) — `measure {SLUG} handle_time" in refused

    _answer_a_checkin(core, {"handle_time": "9"})  # the weekly review, answered: 9 min is better
    assert "ready: `ship support-drafts`" in run(core, f"status {SLUG}")
    owner_view = core.router.handle(f"status {SLUG}", BOB)
    assert any(a.command == f"ship {SLUG}" and a.label == "Ship" for a in owner_view.actions)
    assert not any(a.label == "Ship" for a in core.router.handle(f"status {SLUG}", EVE).actions)

    assert "Only its owner (@bob) or an admin can ship" in refuse(core, f"ship {SLUG}", EVE)
    out = run(core, f"ship {SLUG}")
    assert f"`{SLUG}` is in production." in out and "ROI: handle_time 14 → 9 min (−36%, better)." in out
    assert _stage(core) == "production"
    assert f"{SLUG} is already in production." == refuse(core, f"ship {SLUG}")

    shipped = _escalations(core, EscalationKind.shipped)
    assert len(shipped) == 1 and shipped[0].targets == ["console:channel:ai-pilots"]
    assert shipped[0].facts is not None and shipped[0].facts["roi"] == ["handle_time 14 → 9 min (−36%, better)"]

    status = run(core, f"status {SLUG}")
    assert "Support reply drafts (support-drafts) — production" in status
    assert "ready: `ship" not in status and "the ship gate" not in status
    portfolio = run(core, "status")
    assert portfolio.splitlines()[0] == "1 of 1 pilot ready to ship (100%) · 1 in production"
    audit = run(core, f"audit {SLUG}")
    assert "console:bob  ship  stage=production" in audit

    # In production an eval falls below the bar: the quality gap reopens and is told once.
    out = run(core, f"eval {SLUG} 85% cases 120")
    reopened = _escalations(core, EscalationKind.gap_reopened)
    assert len(reopened) == 1
    assert reopened[0].targets == ["console:user:bob", "console:channel:ai-pilots"]
    assert reopened[0].facts is not None and reopened[0].facts["gap"] == "quality"
    run(core, f"eval {SLUG} 84% cases 120")  # still open: no second notice
    assert len(_escalations(core, EscalationKind.gap_reopened)) == 1
    from bot.schedule.messages import gap_reopened_reply

    text = render_text(gap_reopened_reply(SLUG, reopened[0].facts))
    assert text.startswith("support-drafts is in production and its quality control gap reopened: latest eval 85% <")


def test_an_admin_override_is_kept_and_shown_while_in_production(core: Core, clock: FixedClock) -> None:
    gaps_closed_pilot(core, clock)
    assert "Only an admin may use `ship support-drafts override <reason>`" in refuse(
        core, f"ship {SLUG} override launch week"
    )
    assert "An override needs a reason" in refuse(core, f"ship {SLUG} override", ROOT)
    refused = refuse(core, f"ship {SLUG}", ROOT)
    assert refused.endswith("; or, as an admin, ship it anyway with `ship support-drafts override <reason>`.")
    run(core, f"ship {SLUG} override launch week, measured next sprint", ROOT)
    status = run(core, f"status {SLUG}")
    assert "Shipped with an override by @root: launch week, measured next sprint." in status
    audit = run(core, f"audit {SLUG}")
    assert "override=['no_go_live', 'not_measured', 'no_checkin_answered']" in audit
    with session_scope(core.engine) as s:
        from storage import repo

        p = repo.pilot_by_slug(s, SLUG)
        assert p is not None and p.override_unmet is not None and "go-live is not set" in p.override_unmet
    shipped = _escalations(core, EscalationKind.shipped)
    assert shipped[0].facts is not None and shipped[0].facts["override"] == "launch week, measured next sprint"


def test_pause_resume_retire_and_the_portfolio_header(core: Core, clock: FixedClock) -> None:
    gaps_closed_pilot(core, clock)
    run(core, "new legal-intake", ANA)
    assert run(core, "status").splitlines()[0] == "1 of 2 pilots ready to ship (50%)"
    assert "is paused: vendor outage" in run(core, f"pause {SLUG} vendor outage")
    assert f"{SLUG} is already paused: `resume {SLUG}` to continue." == refuse(core, f"pause {SLUG}")
    status = run(core, f"status {SLUG}")
    assert "Paused since 2026-11-25 12:00 by @bob: vendor outage." in status
    assert f"`resume {SLUG}` returns it to pilot." in status
    assert run(core, "status").splitlines()[0] == "0 of 1 pilot ready to ship (0%)"
    assert f"{SLUG} is paused: `resume {SLUG}` first" in refuse(core, f"ship {SLUG}")
    assert "is back in pilot" in run(core, f"resume {SLUG}")
    assert "nothing to resume" in refuse(core, f"resume {SLUG}")
    assert "Only the owner" in refuse(core, f"retire {SLUG}", EVE)
    run(core, f"retire {SLUG} replaced by v2")
    with session_scope(core.engine) as s:
        from storage import repo

        p = repo.pilot_by_slug(s, SLUG)
        assert isinstance(p, Pilot) and p.stage == "retired" and p.flag_on is False
    portfolio = run(core, "status")
    assert portfolio.splitlines()[0] == "0 of 1 pilot ready to ship (0%)" and SLUG not in portfolio
    assert "Retired since" in run(core, f"status {SLUG}")
    assert f"{SLUG} is retired" in refuse(core, f"resume {SLUG}")
