"""SQL for the kill switch (bot/flags.py): the flag columns of `pilot` and the `flag_read` evidence.

Reads use Core statements on a Connection rather than ORM sessions: an OFREP evaluation is the one
hot path of the server (production polls it), and a one-row SELECT without identity-map work is
several times cheaper. Writes of flag state stay in the ORM session of the use case (bot/flags.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from storage.models import FlagRead, Pilot

_PILOT: sa.Table = Pilot.__table__  # type: ignore[attr-defined]
_READ: sa.Table = FlagRead.__table__  # type: ignore[attr-defined]
_FLAG_COLUMNS = (
    _PILOT.c.id,
    _PILOT.c.slug,
    _PILOT.c.stage,
    _PILOT.c.flag_on,
    _PILOT.c.flag_reason,
    _PILOT.c.flag_changed_by,
    _PILOT.c.flag_changed_at,
)


@dataclass(frozen=True)
class FlagRow:
    id: int
    slug: str
    stage: str
    flag_on: bool
    flag_reason: str | None
    flag_changed_by: str | None
    flag_changed_at: datetime | None


def _row(r: Any) -> FlagRow:
    return FlagRow(r.id, r.slug, r.stage, bool(r.flag_on), r.flag_reason, r.flag_changed_by, r.flag_changed_at)


def flag_row(conn: sa.Connection, slug: str) -> FlagRow | None:
    r = conn.execute(sa.select(*_FLAG_COLUMNS).where(_PILOT.c.slug == slug)).first()
    return _row(r) if r is not None else None


def flag_rows(conn: sa.Connection, slug: str | None = None) -> list[FlagRow]:
    """Every pilot's flag (or the one pilot a scoped token may read), by slug."""
    q = sa.select(*_FLAG_COLUMNS).order_by(_PILOT.c.slug)
    if slug is not None:
        q = q.where(_PILOT.c.slug == slug)
    return [_row(r) for r in conn.execute(q)]


def flag_set_state(conn: sa.Connection, slug: str | None = None) -> tuple[object, ...]:
    """A fingerprint that changes whenever the bulk answer could: one aggregate query, no row reads.

    Flips bump `flag_version` (the sum grows); a new pilot changes the count and the newest id and
    creation time; a deleted one changes the count; a retirement changes the retired count.
    """
    retired = sa.func.sum(sa.case((_PILOT.c.stage == "retired", 1), else_=0))
    q = sa.select(
        sa.func.count(),
        sa.func.max(_PILOT.c.id),
        sa.func.coalesce(sa.func.sum(_PILOT.c.flag_version), 0),
        sa.func.max(_PILOT.c.created_at),
        sa.func.coalesce(retired, 0),
    )
    if slug is not None:
        q = q.where(_PILOT.c.slug == slug)
    row = conn.execute(q).one()
    return tuple(row)


def last_reads(conn: sa.Connection, pilot_id: int, limit: int = 5) -> list[tuple[str, datetime]]:
    """Who read this pilot's flag, newest first: its own reads and unscoped bulk reads (pilot_id NULL)."""
    q = (
        sa.select(_READ.c.token_name, sa.func.max(_READ.c.read_at).label("at"))
        .where(sa.or_(_READ.c.pilot_id == pilot_id, _READ.c.pilot_id.is_(None)))
        .group_by(_READ.c.token_name)
        .order_by(sa.desc("at"))
        .limit(limit)
    )
    # func.max keeps the column's type, so the times come back as aware UTC datetimes on both backends.
    return [(name, at) for name, at in conn.execute(q)]


def record_reads(conn: sa.Connection, reads: Mapping[tuple[str, int | None], datetime]) -> int:
    """Upsert the latest read time per (token, pilot) in one transaction; returns statements run.

    Only ever moves a time forward. Two replicas may both insert the first bulk row of a token (NULL
    is distinct in the unique key): harmless, readers take the newest.
    """
    if not reads:
        return 0
    names = sorted({name for name, _ in reads})
    existing = {
        (n, p)
        for n, p in conn.execute(
            sa.select(_READ.c.token_name, _READ.c.pilot_id).where(col(_READ.c.token_name).in_(names))
        )
    }
    statements = 1
    updates = [{"n": n, "p": p, "t": t} for (n, p), t in reads.items() if (n, p) in existing]
    inserts = [{"token_name": n, "pilot_id": p, "read_at": t} for (n, p), t in reads.items() if (n, p) not in existing]
    scoped = [u for u in updates if u["p"] is not None]
    bulk = [u for u in updates if u["p"] is None]
    if scoped:
        conn.execute(
            _READ.update()
            .where(_READ.c.token_name == sa.bindparam("n"), _READ.c.pilot_id == sa.bindparam("p"))
            .where(_READ.c.read_at < sa.bindparam("t"))
            .values(read_at=sa.bindparam("t")),
            scoped,
        )
        statements += 1
    if bulk:
        conn.execute(
            _READ.update()
            .where(_READ.c.token_name == sa.bindparam("n"), _READ.c.pilot_id.is_(None))
            .where(_READ.c.read_at < sa.bindparam("t"))
            .values(read_at=sa.bindparam("t")),
            bulk,
        )
        statements += 1
    if inserts:
        conn.execute(_READ.insert(), inserts)
        statements += 1
    return statements
