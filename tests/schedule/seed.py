"""Seed N pilots whose weekly check-in is already due (the start-up tick catches them up)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage.models import CheckIn, Pilot


def seed_due_pilots(engine: Engine, n: int, now: datetime | None = None) -> list[str]:
    """Pilots p00000.. owned by slack users U00000.. since 8 days ago, whose weekly check-in fell
    due an hour ago (so it is due now, and no reminder or escalation is due yet)."""
    now = now or datetime.now(UTC)
    due = now - timedelta(hours=1)
    rows = [
        {
            "slug": f"p{i:05d}",
            "name": f"Pilot {i}",
            "stage": "pilot",
            "owner_platform": "slack",
            "owner_id": f"U{i:05d}",
            "owner_name": f"owner{i}",
            "checkin_weekday": due.weekday(),
            "checkin_time": due.strftime("%H:%M"),
            "checkin_tz": "UTC",
            "owner_since": now - timedelta(days=8),
            "created_by": "console:seed",
            "created_at": now - timedelta(days=9),
            "updated_at": now - timedelta(days=9),
        }
        for i in range(n)
    ]
    with Session(engine) as s:
        s.execute(sa.insert(Pilot), rows)
        s.commit()
    return [f"U{i:05d}" for i in range(n)]


def sent_count(engine: Engine) -> tuple[int, int]:
    """(check-ins sent, check-ins total)."""
    with engine.connect() as c:
        sent = c.execute(sa.select(sa.func.count()).select_from(CheckIn).where(CheckIn.sent_at.is_not(None))).scalar()  # type: ignore[union-attr]
        total = c.execute(sa.select(sa.func.count()).select_from(CheckIn)).scalar()
    return int(sent or 0), int(total or 0)
