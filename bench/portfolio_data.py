"""Builds a large portfolio straight into a database with bulk inserts (shared by benches)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import storage.models  # noqa: F401
from bot.config import Settings
from bot.schedule.plan import grace_of
from bot.schedule.verdicts import count_written
from storage import counters
from storage.db import make_engine, upgrade

WEEKS = 52
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def build(url: str, pilots: int = 10_000, weeks: int = WEEKS, metrics: int = 3, seed: int = 7) -> Engine:
    """Each pilot: `metrics` metrics x `weeks` measurements, `weeks` eval runs and `weeks` check-ins."""
    rnd = random.Random(seed)
    engine = make_engine(url)
    upgrade(engine)
    t = SQLModel.metadata.tables
    start = NOW - timedelta(weeks=weeks)
    batch = 200
    sent = 0
    answers: list[tuple[datetime, datetime]] = []
    with engine.begin() as conn:
        for lo in range(0, pilots, batch):
            ids = range(lo + 1, min(lo + batch, pilots) + 1)
            conn.execute(
                sa.insert(t["pilot"]),
                [
                    dict(
                        id=i,
                        slug=f"pilot-{i:05d}",
                        name=f"Pilot {i}",
                        stage="pilot",
                        go_live=(start + timedelta(weeks=2)).date(),
                        owner_platform="slack",
                        owner_id=f"U{i:06d}",
                        owner_name=f"owner{i}",
                        checkin_weekday=0,
                        checkin_time="09:00",
                        checkin_tz="UTC",
                        created_by="bench",
                        created_at=start,
                        updated_at=start,
                        owner_since=start,
                    )
                    for i in ids
                ],
            )
            conn.execute(
                sa.insert(t["eval_policy"]),
                [dict(pilot_id=i, threshold=90.0, min_cases=100, drop_alert=2.0) for i in ids],
            )
            conn.execute(
                sa.insert(t["path_item"]),
                [
                    dict(pilot_id=i, item=item, state="done" if rnd.random() < 0.7 else "todo", updated_at=start)
                    for i in ids
                    for item in ("integration", "monitoring", "rollback")
                ],
            )
            metric_rows = []
            for i in ids:
                for k in range(metrics):
                    metric_rows.append(
                        dict(
                            id=(i - 1) * metrics + k + 1,
                            pilot_id=i,
                            key=f"m{k}",
                            unit="min",
                            direction="lower",
                            baseline=10.0 + k,
                            baseline_at=start.date(),
                            created_at=start,
                        )
                    )
            conn.execute(sa.insert(t["metric"]), metric_rows)
            conn.execute(
                sa.insert(t["measurement"]),
                [
                    dict(
                        metric_id=m["id"],
                        value=m["baseline"] - w * 0.05,
                        measured_at=start + timedelta(weeks=w),
                        source="command",
                        recorded_by="bench",
                    )
                    for m in metric_rows
                    for w in range(weeks)
                ],
            )
            conn.execute(
                sa.insert(t["eval_run"]),
                [
                    dict(
                        pilot_id=i,
                        score=85 + rnd.random() * 15,
                        cases=150,
                        run_at=start + timedelta(weeks=w),
                        source="command",
                        recorded_by="bench",
                    )
                    for i in ids
                    for w in range(weeks)
                ],
            )
            checkins = []
            for i in ids:
                for w in range(weeks):
                    due = start + timedelta(weeks=w)
                    iso = due.isocalendar()
                    answered = None if rnd.random() < 0.1 else due + timedelta(hours=2)
                    checkins.append(
                        dict(
                            pilot_id=i,
                            period=f"{iso.year}-W{iso.week:02d}",
                            due_at=due,
                            sent_at=due,
                            answered_at=answered,
                            attempts=1,
                        )
                    )
            conn.execute(sa.insert(t["check_in"]), checkins)
            sent += len(checkins)
            answers += [(c["due_at"], c["answered_at"]) for c in checkins if c["answered_at"] is not None]
    with Session(engine) as s:
        # Rows written directly: counted as the delivery and the answers would (the unanswered ones'
        # verdicts: the tick's step, which `build_core` runs at start).
        counters.bump(s, {counters.CHECKINS_SENT: sent, counters.CHECKINS_ANSWERED: len(answers)})
        count_written(s, answers, NOW, grace_of(Settings(_env_file=None, database_url=url)))  # type: ignore[call-arg]
        s.commit()
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")
        conn.commit()
    return engine
