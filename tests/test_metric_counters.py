"""The /metrics counters (storage/counters.py) equal what the rules recompute from raw rows.

A hypothesis test drives random commands, answers, failing and succeeding sends and clock advances
(each followed by the scheduler's tick) and asserts after every step that each counter equals its
recomputation: check-ins sent and answered counted from the rows, missed and answered on time by
`bot.gaps.is_missed` / `is_decided` over every check-in, escalations sent by kind, and the
pending-retry gauge — on SQLite and PostgreSQL. Then: two threads bumping and judging at once lose
nothing and count nothing twice, and migration 0014_counters plus the verdict backfill fill the
counters of a database that had history before.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.clock import FixedClock
from bot.config import Settings
from bot.core import Core, build_core
from bot.gaps import CheckInFacts, is_decided, is_missed
from bot.ports import Actor
from bot.replies import render_text
from bot.schedule.deliver import Delivery
from bot.schedule.verdicts import judge_due
from storage import counters
from storage.db import make_engine, session_scope, upgrade
from storage.models import CheckIn, Escalation
from tests.schedule.recording import RecordingNotifier

ALICE = Actor("slack", "UA", "alice")
START = datetime(2026, 10, 23, 6, 30, tzinfo=UTC)  # crosses both DST changes of 2026 within a few weeks


def recomputed(engine: Engine, now: datetime, grace: timedelta) -> dict[str, int]:
    """What the counters must say, from the raw rows and the one rule."""
    with Session(engine) as s:
        rows = list(s.exec(select(CheckIn)))
        kinds = s.execute(
            sa.select(col(Escalation.kind), sa.func.count())
            .where(col(Escalation.sent_at).is_not(None))
            .group_by(col(Escalation.kind))
        ).all()
    out: Counter[str] = Counter()
    for c in rows:
        facts = CheckInFacts(c.due_at, c.answered_at)
        out[counters.CHECKINS_SENT] += c.sent_at is not None
        out[counters.CHECKINS_ANSWERED] += c.answered_at is not None
        if c.due_at <= now and is_decided(facts, now, grace):
            out[counters.CHECKINS_MISSED if is_missed(facts, now, grace) else counters.CHECKINS_ON_TIME] += 1
    for kind, n in kinds:
        out[f"{counters.ESCALATIONS_SENT}{kind}"] += n
    return {k: v for k, v in out.items() if v}


def pending_recomputed(engine: Engine) -> int:
    with Session(engine) as s:
        rows = [*s.exec(select(CheckIn)), *s.exec(select(Escalation))]
    return sum(1 for r in rows if r.sent_at is None and r.last_error is not None)


def assert_counters_match(core: Core) -> None:
    with session_scope(core.engine) as s:
        stored = {k: v for k, v in counters.read(s).items() if v}
        pending = counters.pending_retry(s)
    assert stored == recomputed(core.engine, core.clock.now(), core.services.grace)
    assert pending == pending_recomputed(core.engine)


SLUG = "{slug}"
COMMAND = st.one_of(
    st.just(f"owner {SLUG} <@UA|alice>"),
    st.just(f"escalate {SLUG} #ai-pilots"),
    st.sampled_from(["Europe/Berlin", "America/New_York", "UTC"]).map(lambda z: f"checkin {SLUG} monday 02:30 {z}"),
    st.sampled_from([85, 97]).map(lambda v: f"eval {SLUG} {v} cases 20"),
    st.just(f"threshold {SLUG} 90 min-cases 10"),
)
STEP = st.one_of(
    st.tuples(st.just("cmd"), st.integers(0, 10_000), COMMAND),
    st.tuples(st.just("answer"), st.integers(0, 10_000), st.just("")),
    st.tuples(st.just("fail"), st.integers(1, 3), st.just("")),  # the next sends fail (backoff, pending retry)
    st.tuples(st.just("advance"), st.sampled_from([1, 5, 23, 25, 47, 49, 24 * 3, 24 * 7]), st.just("")),
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=4, max_size=16))
def test_counters_equal_the_recomputed_values_after_every_step(core: Core, steps: list[tuple[str, int, str]]) -> None:
    clock = core.clock
    assert isinstance(clock, FixedClock)
    if clock.now() < START:
        clock.set(START)
    slack = RecordingNotifier("slack", clock)
    delivery = Delivery(core.engine, core.settings, clock, {"slack": slack})  # type: ignore[dict-item]
    n = len(core.services.portfolio())
    for i in range(n, n + 2):  # each example adds two pilots owned by alice to the shared database
        core.router.handle(f"new c{i} Pilot {i}", ALICE)
        core.router.handle(f"owner c{i} <@UA|alice>", ALICE)
    n += 2
    assert_counters_match(core)
    for kind, k, text in steps:
        if kind == "cmd":
            core.router.handle(text.format(slug=f"c{k % n}"), ALICE)
        elif kind == "answer":
            slug = f"c{k % n}"
            form = core.services.checkin_form(slug)
            raw = {f.key: "10" for f in form.fields if not f.optional}
            try:
                core.services.answer_checkin(ALICE, slug, raw)
            except Exception:  # a refused answer writes nothing; the invariant still holds
                pass
        elif kind == "fail":
            slack.fail_next = k
        else:
            clock.advance(timedelta(hours=k))
            asyncio.run(delivery.tick())  # plan (with the verdict step), then send what is due
        assert_counters_match(core)


def to_the_deadline(core: Core, clock: FixedClock) -> Delivery:
    """Pilot `alpha`, owned by alice, its Monday 09:00 check-in sent by the tick; the clock left at
    the exact end of its grace period. Returns the scheduler's delivery, for the next ticks."""
    clock.set(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    for text in ("new alpha A", "owner alpha <@UA|alice>", "checkin alpha monday 09:00 UTC"):
        assert core.router.handle(text, ALICE).ok
    slack = RecordingNotifier("slack", clock)
    delivery = Delivery(core.engine, core.settings, clock, {"slack": slack})  # type: ignore[dict-item]
    clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    asyncio.run(delivery.tick())
    clock.advance(core.services.grace)
    return delivery


def test_a_late_answer_after_the_tick_counted_it_missed_stays_missed(core: Core, clock: FixedClock) -> None:
    delivery = to_the_deadline(core, clock)
    asyncio.run(delivery.tick())  # grace over, unanswered: missed, counted once
    asyncio.run(delivery.tick())
    with session_scope(core.engine) as s:
        assert {k: v for k, v in counters.read(s).items() if v} == {
            counters.CHECKINS_SENT: 1,
            counters.CHECKINS_MISSED: 1,
            f"{counters.ESCALATIONS_SENT}checkin_missed": 1,
        }
    clock.advance(timedelta(hours=1))
    form = core.services.checkin_form("alpha")
    core.services.answer_checkin(ALICE, "alpha", {f.key: "1" for f in form.fields if not f.optional})
    with session_scope(core.engine) as s:
        got = counters.read(s)
    assert got[counters.CHECKINS_ANSWERED] == 1 and got[counters.CHECKINS_MISSED] == 1
    assert counters.CHECKINS_ON_TIME not in got
    assert_counters_match(core)


def test_a_tick_and_an_answer_at_the_deadline_instant_agree_on_one_verdict(core: Core, clock: FixedClock) -> None:
    """Found by the property test (seed 178961508457669530063292480848053451088 on PostgreSQL): the
    tick at `due + grace` counted the check-in missed, an answer at that same instant was on time by
    the rule, and /metrics said missed while the owner gap said answered."""
    delivery = to_the_deadline(core, clock)
    asyncio.run(delivery.tick())
    form = core.services.checkin_form("alpha")
    core.services.answer_checkin(ALICE, "alpha", {f.key: "1" for f in form.fields if not f.optional})
    with session_scope(core.engine) as s:
        got = counters.read(s)
    assert got[counters.CHECKINS_MISSED] == 1 and counters.CHECKINS_ON_TIME not in got
    assert_counters_match(core)
    report = render_text(core.router.handle("status alpha", ALICE))
    assert "the last check-in was missed" in report, report  # the owner gap gives the same verdict


def test_concurrent_increments_and_verdicts_lose_nothing_and_count_nothing_twice(core: Core) -> None:
    engine, now = core.engine, core.clock.now()
    core.router.handle("new alpha A", ALICE)
    with session_scope(engine) as s:
        pid = s.execute(sa.text("SELECT id FROM pilot")).scalar()
        s.execute(
            sa.insert(CheckIn),
            [
                {"pilot_id": pid, "period": f"2025-W{w:02d}", "due_at": now - timedelta(weeks=60 - w), "attempts": 0}
                for w in range(1, 51)
            ],
        )
        s.commit()
    per_thread = 200
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def bump_many() -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                with session_scope(engine) as s:
                    counters.bump(s, {counters.CHECKINS_SENT: 1, counters.CHECKINS_ANSWERED: 2})
                    s.commit()
        except BaseException as e:  # noqa: BLE001 — reported by the assert below
            errors.append(e)

    def judge_all() -> None:
        try:
            barrier.wait()
            while True:
                with session_scope(engine) as s:
                    n = judge_due(s, now, core.services.grace, limit=7)
                    s.commit()
                if n == 0:
                    break
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    for work in (bump_many, judge_all):
        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    with session_scope(engine) as s:
        got = counters.read(s)
    assert got[counters.CHECKINS_SENT] == 2 * per_thread
    assert got[counters.CHECKINS_ANSWERED] == 4 * per_thread
    assert got[counters.CHECKINS_MISSED] == 50  # every one unanswered past its grace, counted once


def test_the_migration_and_the_backfill_count_the_history_of_an_existing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade(engine, "0013_scorecard")
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO pilot (id, slug, name, stage, checkin_weekday, checkin_time, checkin_tz, created_by, "
                "created_at, updated_at) VALUES (1, 'p', 'P', 'pilot', 0, '09:00', 'UTC', 'x', :t, :t)"
            ),
            {"t": now - timedelta(weeks=10)},
        )
        rows = []
        for w in range(1, 9):
            due = now - timedelta(weeks=w)
            answered = {1: None, 2: due + timedelta(hours=3), 3: due + timedelta(hours=100), 4: None}.get(
                w % 5, due + timedelta(hours=1)
            )
            rows.append({"w": f"2026-W{w:02d}", "due": due, "sent": due if w != 4 else None, "ans": answered})
        rows.append({"w": "2026-W48", "due": now - timedelta(hours=2), "sent": now, "ans": None})  # inside grace
        conn.execute(
            sa.text(
                "INSERT INTO check_in (pilot_id, period, due_at, sent_at, answered_at, attempts) "
                "VALUES (1, :w, :due, :sent, :ans, 0)"
            ),
            rows,
        )
        conn.execute(
            sa.text(
                "INSERT INTO escalation (pilot_id, kind, dedupe_key, targets, payload, created_at, sent_at, attempts) "
                "VALUES (1, :k, :d, '[]', '{}', :t, :s, 0)"
            ),
            [
                {"k": "checkin_missed", "d": "a", "t": now, "s": now},
                {"k": "checkin_missed", "d": "b", "t": now, "s": now},
                {"k": "digest", "d": "c", "t": now, "s": None},
            ],
        )
    engine.dispose()
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    core = build_core(settings, FixedClock(now))  # migrates to head, then counts the verdicts with the rule
    assert_counters_match(core)
    with session_scope(core.engine) as s:
        got = counters.read(s)
    assert got[counters.CHECKINS_SENT] == 8 and got[counters.CHECKINS_ANSWERED] == 5
    assert got[f"{counters.ESCALATIONS_SENT}checkin_missed"] == 2
    with session_scope(core.engine) as s:  # of the unanswered ones, only the one inside its grace waits
        waiting = select(CheckIn).where(col(CheckIn.judged_at).is_(None), col(CheckIn.answered_at).is_(None))
        assert s.exec(waiting).one().period == "2026-W48"
    assert core.services.counters_backfill() == 0  # done: a second start counts nothing
    core.engine.dispose()


def test_the_scrape_and_the_verdict_step_read_through_indexes(core: Core) -> None:
    """The statements the code runs go through the partial indexes (SQLite's query plan says so)."""
    if core.engine.dialect.name != "sqlite":
        return
    seen: list[tuple[str, object]] = []

    def record(_c: object, _cur: object, statement: str, params: object, _ctx: object, _many: bool) -> None:
        seen.append((statement, params))

    sa.event.listen(core.engine, "before_cursor_execute", record)
    try:
        with session_scope(core.engine) as s:
            counters.pending_retry(s)
            counters.unjudged(s, core.clock.now(), 10)
    finally:
        sa.event.remove(core.engine, "before_cursor_execute", record)
    with core.engine.connect() as c:
        plans = [
            " ".join(str(r[-1]) for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))  # type: ignore[arg-type]
            for sql, params in seen
        ]
    assert len(plans) == 2, plans
    assert "ix_check_in_retry" in plans[0] and "ix_escalation_sent_at (sent_at=?)" in plans[0], plans
    assert "ix_check_in_unjudged_due" in plans[1], plans
