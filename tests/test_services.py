"""The executor end to end on a real database (SQLite and PostgreSQL): permissions, audit,
nothing written on refusal, and the replies users see."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.clock import FixedClock
from bot.core import Core
from bot.errors import NotFound, UserError
from bot.ports import Actor
from bot.replies import render_text
from storage import repo
from storage.db import session_scope
from tests.helpers import row_counts

ANA = Actor("console", "ana", "Ana")  # creator
BOB = Actor("console", "bob", "Bob")  # owner
EVE = Actor("console", "eve", "Eve")  # anyone else
ROOT = Actor("console", "root", "Root")  # admin (conftest settings)


def run(core: Core, text: str, actor: Actor = ANA) -> str:
    reply = core.router.handle(text, actor)
    assert reply.ok, render_text(reply)
    return render_text(reply)


def refuse(core: Core, text: str, actor: Actor = ANA) -> str:
    before = row_counts(core.engine)
    reply = core.router.handle(text, actor)
    assert not reply.ok, render_text(reply)
    assert row_counts(core.engine) == before, "a refused command wrote to the database"
    return reply.text


def setup_pilot(core: Core) -> None:
    run(core, "new support-drafts Support reply drafts")
    run(core, "owner support-drafts @bob")


def test_full_walkthrough_closes_every_gap(core: Core, clock: FixedClock) -> None:
    setup_pilot(core)
    clock.advance(timedelta(days=1))
    run(core, "baseline support-drafts handle_time 14 min lower", BOB)
    run(core, "baseline support-drafts revision_rate 38% lower", BOB)
    clock.advance(timedelta(days=14))
    run(core, f"golive support-drafts {clock.now().date().isoformat()}", BOB)
    clock.advance(timedelta(days=56))
    assert "−36%, better" in run(core, "measure support-drafts handle_time 9", BOB)
    run(core, "measure support-drafts revision_rate 21%", BOB)
    run(core, "threshold support-drafts 90 min-cases 100", BOB)
    run(core, "eval support-drafts 93.4% cases 120 version prompt-v9", BOB)
    for item in ("integration", "monitoring", "rollback"):
        run(core, f"path support-drafts {item} done", BOB)
    text = run(core, "status support-drafts")
    assert "handle_time 14 → 9 min (−36%, better)" in text
    assert "revision_rate 38% → 21% (−17 pts, −45%, better)" in text
    assert "ready to ship" in text
    assert "1 of 1 pilot ready to ship (100%)" in run(core, "status")


def test_unknown_slug_suggests_the_close_one(core: Core) -> None:
    setup_pilot(core)
    assert refuse(core, "status suport-drafts") == "No pilot `suport-drafts`; did you mean `support-drafts`?"
    assert "`new zzz-top <name>`" in refuse(core, "status zzz-top")


def test_only_owner_or_admin_may_change(core: Core) -> None:
    setup_pilot(core)
    msg = refuse(core, "golive support-drafts 2026-10-01", EVE)
    assert msg.startswith("Only the owner of `support-drafts` (@bob) or an admin can change it. ")
    # ... and how one becomes an admin, with the refused user's own entry (issue 12)
    assert "PILOTBOT_ADMINS" in msg and "add you there as `console:eve`" in msg and "`<platform>:<user id>`" in msg
    refuse(core, "golive support-drafts 2026-10-01", ANA)  # the creator lost the right once an owner exists
    run(core, "golive support-drafts 2026-10-01", BOB)
    run(core, "golive support-drafts 2026-10-02", ROOT)
    run(core, "status support-drafts", EVE)  # anyone may read


def test_creator_may_set_first_owner_but_not_others(core: Core) -> None:
    run(core, "new legal-intake")
    assert "no owner yet" in refuse(core, "owner legal-intake @eve", EVE)
    run(core, "owner legal-intake @bob", ANA)


def test_every_change_writes_an_audit_event(core: Core) -> None:
    setup_pilot(core)
    run(core, "baseline support-drafts handle_time 14 min", BOB)
    run(core, "measure support-drafts handle_time 9", BOB)
    run(core, "threshold support-drafts 95", BOB)
    run(core, "eval support-drafts 96 cases 150", BOB)
    run(core, "path support-drafts rollback done", BOB)
    run(core, "checkin support-drafts tue 10:00 Europe/Berlin", BOB)
    run(core, "escalate support-drafts #ai-ops", BOB)
    text = run(core, "audit support-drafts")
    for action in ("new", "owner", "baseline", "measure", "threshold", "eval", "path", "checkin", "escalate"):
        assert f"  {action}  " in text
    assert "console:bob" in text


def test_duplicate_slug_refused(core: Core) -> None:
    setup_pilot(core)
    assert "already exists" in refuse(core, "new support-drafts Again")


def test_measure_needs_a_baseline_first(core: Core) -> None:
    setup_pilot(core)
    msg = refuse(core, "measure support-drafts handle_time 9", BOB)
    assert "record its baseline first" in msg and "`baseline support-drafts handle_time" in msg


def test_measure_with_the_wrong_unit(core: Core) -> None:
    setup_pilot(core)
    run(core, "baseline support-drafts handle_time 14 min", BOB)
    assert "measured in min" in refuse(core, "measure support-drafts handle_time 9%", BOB)


def test_fraction_is_read_and_said(core: Core) -> None:
    setup_pilot(core)
    assert "I read that as a fraction: 95%" in run(core, "threshold support-drafts 0.95", BOB)


def test_baseline_in_the_future_refused(core: Core, clock: FixedClock) -> None:
    setup_pilot(core)
    later = (clock.now() + timedelta(days=3)).date().isoformat()
    assert "future" in refuse(core, f"baseline support-drafts t 4 at {later}", BOB)


def test_unknown_command_answers_with_help(core: Core) -> None:
    reply = core.router.handle("deploy all", ANA)
    assert not reply.ok
    assert "I don't know the command `deploy`" in reply.text
    assert any("status" in line for line in reply.lines)


def test_eval_drop_creates_one_pending_escalation(core: Core, clock: FixedClock) -> None:
    setup_pilot(core)
    run(core, "escalate support-drafts #ai-ops", BOB)
    run(core, "threshold support-drafts 95 min-cases 100", BOB)
    run(core, "eval support-drafts 97 cases 150", BOB)
    clock.advance(timedelta(hours=1))
    text = run(core, "eval support-drafts 96.5 cases 150", BOB)  # -0.5 pts: no alert
    assert "⚠️" not in text
    clock.advance(timedelta(hours=1))
    text = run(core, "eval support-drafts 94 cases 150 version v2", BOB)  # below bar
    assert "fell below the bar: 96.5% → 94% (version v2), bar 95%" in text
    assert "@bob and #ai-ops" in text
    clock.advance(timedelta(hours=1))
    text = run(core, "eval support-drafts 93.5 cases 150", BOB)  # still below, small drop: no repeat
    assert "⚠️" not in text
    clock.advance(timedelta(hours=1))
    text = run(core, "eval support-drafts 90 cases 150", BOB)  # dropped 3.5 pts, same breach: no repeat
    assert "⚠️" not in text
    clock.advance(timedelta(hours=1))
    text = run(core, "eval support-drafts 98 cases 150", BOB)  # clears the bar: recovered
    assert "✅ `support-drafts` eval recovered: 90% → 98% clears the 95% bar again." in text
    clock.advance(timedelta(hours=1))
    text = run(core, "eval support-drafts 95.5 cases 150", BOB)  # dropped 2.5 pts, still above: a warn
    assert "Warning: `support-drafts` eval dropped 2.5 pts" in text and "Pinging @bob." in text
    with session_scope(core.engine) as s:
        from sqlmodel import select

        from storage.models import Escalation

        rows = s.exec(select(Escalation).order_by(Escalation.id)).all()  # type: ignore[arg-type]
        assert [r.kind for r in rows] == ["eval_below_bar", "eval_recovered", "eval_drop"]
        assert all(r.sent_at is None for r in rows)
        assert rows[0].targets == ["console:user:bob", "console:channel:ai-ops"] == rows[1].targets
        assert rows[2].targets == ["console:user:bob"]  # a warn: the owner only


def test_status_statement_count_is_constant(core: Core, clock: FixedClock) -> None:
    """No N+1: a pilot with a long history costs the same number of statements as a short one."""
    import sqlalchemy as sa

    setup_pilot(core)
    run(core, "baseline support-drafts a 1", BOB)
    run(core, "baseline support-drafts b 1", BOB)
    run(core, "threshold support-drafts 90", BOB)

    def count() -> int:
        n = 0

        def on(*_: object) -> None:
            nonlocal n
            n += 1

        sa.event.listen(core.engine, "before_cursor_execute", on)
        try:
            core.router.handle("status support-drafts", EVE)
        finally:
            sa.event.remove(core.engine, "before_cursor_execute", on)
        return n

    short = count()
    for i in range(20):
        clock.advance(timedelta(days=7))
        run(core, f"measure support-drafts a {i}", BOB)
        run(core, f"measure support-drafts b {i}", BOB)
        run(core, f"eval support-drafts 9{i % 10} cases 100", BOB)
    assert count() == short


def test_pilot_report_reads_latest_values(core: Core, clock: FixedClock) -> None:
    setup_pilot(core)
    run(core, "baseline support-drafts a 10", BOB)
    for v in (9, 8, 7):
        clock.advance(timedelta(days=1))
        run(core, f"measure support-drafts a {v}", BOB)
    with session_scope(core.engine) as s:
        pilot = repo.pilot_by_slug(s, "support-drafts")
        assert pilot is not None and pilot.id is not None
        ((metric, latest),) = repo.metrics_with_latest(s, pilot.id)
        assert latest is not None and latest.value == 7


@pytest.mark.parametrize("text", ["status", "help", "history support-drafts", "audit support-drafts"])
def test_reads_write_nothing(core: Core, text: str) -> None:
    setup_pilot(core)
    before = row_counts(core.engine)
    core.router.handle(text, EVE)
    assert row_counts(core.engine) == before


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("owner support-drafts @bbo", "I could not tell who `@bbo` is"),
        ("escalate support-drafts #ops", "I could not tell which channel `#ops` is"),
    ],
)
def test_plain_mentions_are_refused_on_chat_platforms(core: Core, text: str, says: str) -> None:
    """Slack and Teams send real mentions as ids; plain `@name` text would store an owner nobody is."""
    slack_ana = Actor("slack", "UANA", "ana")
    assert core.router.handle("new support-drafts Drafts", slack_ana).ok
    assert says in refuse(core, text, slack_ana)
    assert core.router.handle("owner support-drafts <@UBOB|bob>", slack_ana).ok


def test_a_drop_of_exactly_drop_alert_points_alerts(core: Core, clock: FixedClock) -> None:
    setup_pilot(core)
    run(core, "threshold support-drafts 50 drop-alert 2", BOB)
    run(core, "eval support-drafts 65.1 cases 150", BOB)
    clock.advance(timedelta(hours=1))
    assert "dropped 2 pts" in run(core, "eval support-drafts 63.1 cases 150", BOB)  # 65.1 - 63.1 < 2 in floats


def test_reassigning_an_orphaned_pilot_closes_the_owner_gap(core: Core, clock: FixedClock) -> None:
    from storage.models import CheckIn

    setup_pilot(core)
    with session_scope(core.engine) as s:
        pilot = repo.pilot_by_slug(s, "support-drafts")
        assert pilot is not None and pilot.id is not None
        for weeks, period in ((1, "2026-W47"), (2, "2026-W46")):
            s.add(CheckIn(pilot_id=pilot.id, period=period, due_at=clock.now() + timedelta(weeks=weeks)))
        s.commit()
    clock.advance(timedelta(weeks=3))  # both due and past their grace, unanswered
    from bot.schedule.plan import plan

    plan(core.engine, core.settings, clock.now())  # the tick rescores the stored portfolio for time alone
    assert "orphaned" in run(core, "status support-drafts")
    from bot.gaps import GapState

    def portfolio_owner_state() -> GapState:
        reply = core.router.handle("status", EVE)
        assert reply.portfolio is not None
        return reply.portfolio.rows[0].states[1]

    assert portfolio_owner_state() is GapState.open  # the portfolio agrees
    run(core, "owner support-drafts @carol", BOB)
    text = run(core, "status support-drafts")
    assert "Owner: closed — owner set; no check-in due yet" in text
    assert portfolio_owner_state() is GapState.closed


def test_a_console_admin_edits_a_slack_pilot_on_slack(core: Core) -> None:
    """The console cannot deliver: mentions an admin types there belong to the pilot's platform."""
    slack_ana = Actor("slack", "UANA", "ana")
    assert core.router.handle("new support-drafts Drafts", slack_ana).ok
    assert core.router.handle("owner support-drafts <@U2|bob>", slack_ana).ok
    run(core, "escalate support-drafts <#C9|ops>", ROOT)
    run(core, "owner support-drafts <@U3|carol>", ROOT)
    with session_scope(core.engine) as s:
        pilot = repo.pilot_by_slug(s, "support-drafts")
        assert pilot is not None
        assert (pilot.escalation_platform, pilot.escalation_channel_id) == ("slack", "C9")
        assert (pilot.owner_platform, pilot.owner_id) == ("slack", "U3")


def test_owner_gap_with_a_grace_longer_than_a_week(core: Core, clock: FixedClock) -> None:
    """With a 400 h grace the two newest check-ins are still undecided; the two before decide."""
    from storage.models import CheckIn

    core.services.settings = core.settings.model_copy(update={"pilotbot_checkin_grace_hours": 400})
    setup_pilot(core)
    clock.advance(timedelta(days=1))
    with session_scope(core.engine) as s:
        pilot = repo.pilot_by_slug(s, "support-drafts")
        assert pilot is not None and pilot.id is not None
        for week in range(1, 5):
            s.add(CheckIn(pilot_id=pilot.id, period=f"2026-W{48 + week}", due_at=clock.now() + timedelta(weeks=week)))
        s.commit()
    clock.advance(timedelta(weeks=5))
    assert "orphaned: the last two check-ins were missed" in run(core, "status support-drafts")


# ---- the unit of work itself (bot/services/unit.py), as a new use case would use it ----


def test_a_change_writes_its_before_and_after_audit_event(core: Core, clock: FixedClock) -> None:
    setup_pilot(core)
    run(core, "golive support-drafts 2026-10-01", BOB)
    clock.advance(timedelta(hours=1))
    run(core, "golive support-drafts 2026-10-02", BOB)
    with session_scope(core.engine) as s:
        pilot = repo.pilot_by_slug(s, "support-drafts")
        assert pilot is not None and pilot.id is not None
        event = repo.audit_events(s, pilot.id, 1)[0]
        assert (event.action, event.before, event.after) == (
            "golive",
            {"go_live": "2026-10-01"},
            {"go_live": "2026-10-02"},
        )
        assert pilot.updated_at == clock.now()


def test_a_user_error_inside_the_unit_writes_nothing(core: Core) -> None:
    setup_pilot(core)
    before = row_counts(core.engine)
    with pytest.raises(UserError, match="changed my mind"):
        with core.services.change(BOB, "support-drafts", "golive", "go_live") as uow:
            uow.pilot.go_live = date(2026, 10, 1)
            uow.audit(None, {"note": "half done"})
            raise UserError("I changed my mind.")
    assert row_counts(core.engine) == before
    assert core.services.pilot_report("support-drafts").pilot.go_live is None


def test_the_unit_refuses_on_entry_and_says_who_may(core: Core) -> None:
    setup_pilot(core)
    with pytest.raises(UserError, match=r"Only the owner of `support-drafts` \(@bob\)"):
        with core.services.change(EVE, "support-drafts", "golive"):
            raise AssertionError("the block must not run for someone who may not change the pilot")
    with pytest.raises(NotFound, match="did you mean `support-drafts`"):
        with core.services.change(BOB, "suport-drafts", "golive"):
            raise AssertionError("no pilot, no block")


def test_a_deferred_permission_check_must_run_before_commit(core: Core) -> None:
    setup_pilot(core)
    before = row_counts(core.engine)
    with pytest.raises(RuntimeError, match="without checking who may change"):
        with core.services.change(EVE, "support-drafts", "golive", "go_live", authorize_now=False) as uow:
            uow.pilot.go_live = date(2026, 10, 1)
    assert row_counts(core.engine) == before
    with pytest.raises(UserError, match="Only the owner"):
        with core.services.change(EVE, "support-drafts", "golive", authorize_now=False) as uow:
            uow.authorize()
