"""Weekly cadence math across DST, and the check-in form and its answer on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import FixedClock
from bot.core import Core
from bot.forms import FormErrors
from bot.ports import Actor
from bot.replies import Intent
from bot.schedule.cadence import latest_due, next_due, period_of
from bot.schedule.messages import checkin_prompt
from storage import repo
from storage.db import session_scope


@pytest.mark.parametrize(
    ("after", "tz", "expected"),
    [
        # Monday 09:00 Berlin is 08:00 UTC in winter, 07:00 UTC in summer.
        (datetime(2026, 11, 25, 12, tzinfo=UTC), "Europe/Berlin", datetime(2026, 11, 30, 8, tzinfo=UTC)),
        (datetime(2026, 7, 1, 12, tzinfo=UTC), "Europe/Berlin", datetime(2026, 7, 6, 7, tzinfo=UTC)),
        # across the autumn change (2026-10-25): the Monday after is on winter time
        (datetime(2026, 10, 20, 0, tzinfo=UTC), "Europe/Berlin", datetime(2026, 10, 26, 8, tzinfo=UTC)),
        (
            datetime(2026, 10, 26, 8, tzinfo=UTC),
            "Europe/Berlin",
            datetime(2026, 11, 2, 8, tzinfo=UTC),
        ),  # strictly after
        (datetime(2026, 11, 25, 12, tzinfo=UTC), "America/New_York", datetime(2026, 11, 30, 14, tzinfo=UTC)),
        (datetime(2026, 11, 25, 12, tzinfo=UTC), "UTC", datetime(2026, 11, 30, 9, tzinfo=UTC)),
    ],
)
def test_next_monday_nine(after: datetime, tz: str, expected: datetime) -> None:
    assert next_due(0, "09:00", tz, after) == expected


def test_spring_forward_gap_moves_past_it() -> None:
    # 02:30 on 2026-03-29 does not exist in Berlin: the check-in lands at 03:30 local (01:30 UTC).
    assert next_due(6, "02:30", "Europe/Berlin", datetime(2026, 3, 25, tzinfo=UTC)) == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )


def test_latest_due_and_period() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert latest_due(0, "09:00", "Europe/Berlin", now) == datetime(2026, 11, 23, 8, tzinfo=UTC)
    assert period_of(datetime(2026, 11, 23, 8, tzinfo=UTC), "Europe/Berlin") == "2026-W48"
    # Sunday 23:30 UTC is already Monday in Tokyo: the local calendar decides the week.
    assert period_of(datetime(2026, 11, 29, 23, 30, tzinfo=UTC), "Asia/Tokyo") == "2026-W49"


BOB = Actor("console", "bob", "Bob")


def _pilot(core: Core) -> None:
    for text in (
        "new support-drafts Support drafts",
        "owner support-drafts @bob",
        "baseline support-drafts handle_time 14 min",
        "baseline support-drafts revision_rate 38%",
        "threshold support-drafts 90",
        "eval support-drafts 92 cases 120",
    ):
        assert core.router.handle(text, BOB).ok


def test_checkin_form_and_prompt(core: Core) -> None:
    _pilot(core)
    form = core.services.checkin_form("support-drafts")
    keys = [f.key for f in form.fields]
    assert keys == ["handle_time", "revision_rate", "pb.eval_score", "pb.triage"]
    reply = checkin_prompt(core.services.pilot_report("support-drafts"), form)
    assert reply.card is not None and reply.form == form
    assert reply.actions[0].intent is Intent.OPEN_CHECKIN and reply.actions[0].slug == "support-drafts"
    assert any("handle_time (min)" in line for line in reply.lines)


def test_invalid_answer_names_every_bad_field_and_writes_nothing(core: Core) -> None:
    from tests.helpers import row_counts

    _pilot(core)
    before = row_counts(core.engine)
    with pytest.raises(FormErrors) as err:
        core.services.answer_checkin(
            BOB, "support-drafts", {"handle_time": "9,5", "revision_rate": "", "pb.eval_score": "120"}
        )
    assert set(err.value.errors) == {"handle_time", "revision_rate", "pb.eval_score"}
    assert "9.5" in err.value.errors["handle_time"]
    assert row_counts(core.engine) == before


def test_answer_records_measurements_and_closes_the_checkin(core: Core, clock: FixedClock) -> None:
    from storage.models import CheckIn

    _pilot(core)
    with session_scope(core.engine) as s:
        pilot = repo.pilot_by_slug(s, "support-drafts")
        assert pilot is not None and pilot.id is not None
        s.add(CheckIn(pilot_id=pilot.id, period="2026-W48", due_at=clock.now() - timedelta(hours=3)))
        s.commit()
    out = core.services.answer_checkin(
        BOB, "support-drafts", {"handle_time": "9", "revision_rate": "21", "pb.eval_score": "95.5", "pb.triage": "none"}
    )
    assert "answered" in out.text
    text = core.router.handle("status support-drafts", BOB)
    assert text.card is not None
    metrics = {m.key: m.text for m in text.card.metrics}
    assert metrics["handle_time"] == "handle_time 14 → 9 min (−36%, better)"
    with session_scope(core.engine) as s:
        row = repo.checkin_for_period(s, pilot.id, "2026-W48")
        assert row is not None and row.answered_at == clock.now()
        assert row.report is not None and row.report["values"] == {"handle_time": 9.0, "revision_rate": 21.0}
        runs = repo.latest_evals(s, pilot.id, 1)
        assert runs[0].score == 95.5 and runs[0].cases == 120 and runs[0].source == "checkin"


def test_only_owner_may_answer(core: Core) -> None:
    from bot.errors import UserError

    _pilot(core)
    with pytest.raises(UserError):
        core.services.answer_checkin(
            Actor("console", "eve"), "support-drafts", {"handle_time": "9", "revision_rate": "21"}
        )


# ---- `answer`: the check-in form as one command (SPEC §8) ------------------------------------


def _counts(core: Core, live: bool = True) -> tuple[int, int]:
    """Measurements and eval runs (`live`: the non-void ones the rules read)."""
    from sqlmodel import col, select

    from storage.models import EvalRun, Measurement

    with session_scope(core.engine) as s:
        m, e = select(Measurement), select(EvalRun)
        if live:
            m, e = m.where(col(Measurement.voided_at).is_(None)), e.where(col(EvalRun.voided_at).is_(None))
        return len(s.exec(m).all()), len(s.exec(e).all())


def test_answer_command_records_the_current_week_in_one_line(core: Core, clock: FixedClock) -> None:
    _pilot(core)
    reply = core.router.handle("answer support-drafts handle_time 9 revision_rate 21% eval 95.5 note all quiet", BOB)
    assert reply.ok, reply.text
    assert reply.text == "Check-in for `support-drafts` answered."
    period = period_of(clock.now(), "UTC")
    assert f"recorded 2 metric value(s) for {period}" in reply.lines[0]
    assert "Triage note saved: all quiet" in reply.lines
    with session_scope(core.engine) as s:
        pilot = repo.pilot_by_slug(s, "support-drafts")
        assert pilot is not None and pilot.id is not None
        row = repo.checkin_for_period(s, pilot.id, period)
        assert row is not None and row.answered_at == clock.now() and row.answer_digest
        assert row.report is not None and row.report["triage"] == "all quiet"
        assert {m.key: (last.value, last.source) for m, last in repo.metrics_with_latest(s, pilot.id) if last} == {
            "handle_time": (9.0, "checkin"),
            "revision_rate": (21.0, "checkin"),
        }
        assert repo.latest_evals(s, pilot.id, 1)[0].source == "checkin"


@pytest.mark.parametrize(
    ("who", "text", "says"),
    [
        (Actor("console", "root", "root"), "answer support-drafts handle_time 9 revision_rate 21", "Only the owner"),
        (BOB, "answer support-drafts handle_time 9", "also needs revision_rate"),
        (BOB, "answer support-drafts handle_time 9 revision_rate 21 cost 3", "`cost` is not a metric"),
        (BOB, "answer support-drafts handle_time 9,5 revision_rate 21", "decimal point"),
        (BOB, "answer support-drafts handle_time 9 revision_rate 21 eval 120", "between 0 and 100"),
        (BOB, "answer support-drafts handle_time 9 handle_time 8", "given twice"),
        (BOB, "answer support-drafts handle_time", "value of handle_time is missing"),
        (BOB, "answer nope-pilot handle_time 9", "No pilot `nope-pilot`"),
    ],
)
def test_answer_command_refusals_are_one_sentence_and_write_nothing(
    core: Core, who: Actor, text: str, says: str
) -> None:
    from tests.helpers import row_counts

    _pilot(core)
    before = row_counts(core.engine)
    reply = core.router.handle(text, who)
    assert not reply.ok and says in reply.text and "\n" not in reply.text
    assert row_counts(core.engine) == before


def test_answer_twice_records_once_and_a_different_answer_replaces(core: Core) -> None:
    _pilot(core)
    base = _counts(core)
    line = "answer support-drafts handle_time 9 revision_rate 21 eval 95"
    assert core.router.handle(line, BOB).ok
    assert _counts(core) == (base[0] + 2, base[1] + 1)
    again = core.router.handle(line.replace("eval 95", "eval 95.0"), BOB)  # the same answer, written differently
    assert again.ok and any("Already recorded" in x for x in again.lines)
    assert _counts(core) == (base[0] + 2, base[1] + 1)
    other = core.router.handle("answer support-drafts handle_time 8 revision_rate 20", BOB)
    assert any("replaces the answer you gave" in x for x in other.lines)
    assert _counts(core) == (base[0] + 2, base[1])  # the first answer's values and eval run withdrawn
    assert _counts(core, live=False) == (base[0] + 4, base[1] + 1)  # ... kept, marked void
    card = core.router.handle("status support-drafts", BOB).card
    assert card is not None
    assert {m.key: m.text for m in card.metrics}["handle_time"] == "handle_time 14 → 8 min (−43%, better)"


def test_answered_with_the_command_before_the_checkin_it_is_not_sent(core: Core, clock: FixedClock) -> None:
    import asyncio

    from bot.schedule.deliver import Delivery
    from tests.schedule.recording import RecordingNotifier

    ub = Actor("slack", "UB", "Berta")
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    clock.set(monday - timedelta(days=3))
    for text in ("new p1 P1", "owner p1 <@UB|Berta>", "baseline p1 handle_time 14 min"):
        assert core.router.handle(text, ub).ok, text
    clock.set(monday - timedelta(hours=2))  # Monday 07:00: this week's check-in (09:00) not sent yet
    assert core.router.handle("answer p1 handle_time 9", ub).ok
    slack = RecordingNotifier("slack", clock)
    delivery = Delivery(core.engine, core.settings, clock, {"slack": slack})  # type: ignore[dict-item]
    for hours in (0, 3, 30, 60):  # the check-in moment, the reminder, the missed-review escalation
        clock.set(monday + timedelta(hours=hours))
        asyncio.run(delivery.tick())
    assert slack.sent == []
    clock.set(monday + timedelta(days=7))  # next week's is asked as usual
    asyncio.run(delivery.tick())
    assert [m.reply.form.period for m in slack.sent if m.reply.form] == ["2026-W49"]
