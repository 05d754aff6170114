from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import storage.models  # noqa: F401

# The scheduler's own bookkeeping (how far it rescored for time alone): a server's start-up tick
# may create it while a test's request runs, so it says nothing about what a request wrote.
SCHEDULER_BOOKKEEPING = frozenset({"scorecard_mark"})


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, table in SQLModel.metadata.tables.items()
            if name not in SCHEDULER_BOOKKEEPING
        }
