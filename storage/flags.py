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

from storage.models import ApiToken, FlagGeneration, FlagRead, Pilot

_PILOT: sa.Table = Pilot.__table__  # type: ignore[attr-defined]
_READ: sa.Table = FlagRead.__table__  # type: ignore[attr-defined]
_GEN: sa.Table = FlagGeneration.__table__  # type: ignore[attr-defined]
_TOKEN: sa.Table = ApiToken.__table__  # type: ignore[attr-defined]
_FLAG_COLUMNS = (
    _PILOT.c.id,
    _PILOT.c.slug,
    _PILOT.c.stage,
    _PILOT.c.flag_on,
    _PILOT.c.flag_reason,
    _PILOT.c.flag_changed_by,
    _PILOT.c.flag_changed_at,
    _PILOT.c.flag_version,
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
    flag_version: int = 0


def _row(r: Any) -> FlagRow:
    return FlagRow(
        r.id, r.slug, r.stage, bool(r.flag_on), r.flag_reason, r.flag_changed_by, r.flag_changed_at, r.flag_version
    )


# Built once: constructing a statement costs more than running this one-row SELECT on SQLite.
_FLAG_BY_SLUG = sa.select(*_FLAG_COLUMNS).where(_PILOT.c.slug == sa.bindparam("slug"))


def flag_row(conn: sa.Connection, slug: str) -> FlagRow | None:
    r = conn.execute(_FLAG_BY_SLUG, {"slug": slug}).first()
    return _row(r) if r is not None else None


def flag_rows(conn: sa.Connection, slug: str | None = None) -> list[FlagRow]:
    """Every pilot's flag (or the one pilot a scoped token may read), by slug."""
    q = sa.select(*_FLAG_COLUMNS).order_by(_PILOT.c.slug)
    if slug is not None:
        q = q.where(_PILOT.c.slug == slug)
    return [_row(r) for r in conn.execute(q)]


_BULK_STATE = sa.select(
    sa.select(_GEN.c.generation).where(_GEN.c.id == 1).scalar_subquery(),
    sa.select(sa.func.max(_PILOT.c.id)).scalar_subquery(),
)


def bulk_state(conn: sa.Connection) -> tuple[int, int | None]:
    """(flip generation, newest pilot id): what the unscoped bulk ETag is made of, two index lookups.

    Every flip bumps the generation (`bump_generation`, retirement included: it turns the flag off
    through bot.flags.turn_off); a new pilot raises the newest id; pilots are never deleted.
    """
    row = conn.execute(_BULK_STATE).one()
    return int(row[0] or 0), row[1]


def bump_generation(conn: sa.Connection) -> int:
    """The next flip generation, inside the caller's transaction (row-locked: concurrent flips on two
    replicas get distinct numbers)."""
    new = conn.execute(
        _GEN.update().where(_GEN.c.id == 1).values(generation=_GEN.c.generation + 1).returning(_GEN.c.generation)
    ).scalar()
    if new is None:  # a database made without the migration's seed row
        conn.execute(_GEN.insert().values(id=1, generation=1))
        return 1
    return int(new)


@dataclass(frozen=True)
class TokenRow:
    name: str
    pilot_id: int | None
    pilot_slug: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


_TOKEN_BY_HASH = (
    sa.select(
        _TOKEN.c.name,
        _TOKEN.c.pilot_id,
        _PILOT.c.slug,
        _TOKEN.c.created_at,
        _TOKEN.c.revoked_at,
        _TOKEN.c.last_used_at,
    )
    .select_from(_TOKEN.outerjoin(_PILOT, _PILOT.c.id == _TOKEN.c.pilot_id))
    .where(_TOKEN.c.token_hash == sa.bindparam("hash"))
)


def token_row(conn: sa.Connection, token_hash: str) -> TokenRow | None:
    """The API token with this hash and its pilot's slug, one statement (the OFREP hot path)."""
    r = conn.execute(_TOKEN_BY_HASH, {"hash": token_hash}).first()
    return TokenRow(*r) if r is not None else None


# Built once (`status <slug>` reads it on every call): bound parameters, no per-call construction.
_last_reads_q = (
    sa.select(_READ.c.token_name, sa.func.max(_READ.c.read_at).label("at"))
    .where(sa.or_(_READ.c.pilot_id == sa.bindparam("pid"), _READ.c.pilot_id.is_(None)))
    .group_by(_READ.c.token_name)
    .order_by(sa.desc("at"))
    .limit(sa.bindparam("n"))
)


def last_reads(conn: sa.Connection, pilot_id: int, limit: int = 5) -> list[tuple[str, datetime]]:
    """Who read this pilot's flag, newest first: its own reads and unscoped bulk reads (pilot_id NULL)."""
    # func.max keeps the column's type, so the times come back as aware UTC datetimes on both backends.
    return [(name, at) for name, at in conn.execute(_last_reads_q, {"pid": pilot_id, "n": limit})]


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


@dataclass(frozen=True)
class ChangeMarks:
    """What moves when an answer of the OFREP routes may change (bot/flag_cache.py)."""

    flags: tuple[int, int | None]  # (flip generation, newest pilot id): the unscoped bulk ETag's state
    tokens: tuple[int, int, int | None]  # (tokens, revoked tokens, newest token id)


_MARKS = sa.select(
    sa.select(_GEN.c.generation).where(_GEN.c.id == 1).scalar_subquery(),
    sa.select(sa.func.max(_PILOT.c.id)).scalar_subquery(),
    sa.select(sa.func.count()).select_from(_TOKEN).scalar_subquery(),
    sa.select(sa.func.count(_TOKEN.c.revoked_at)).scalar_subquery(),
    sa.select(sa.func.max(_TOKEN.c.id)).scalar_subquery(),
)


def change_marks(conn: sa.Connection) -> ChangeMarks:
    """One statement: the flip generation, the newest pilot and the tokens' count and revocations."""
    r = conn.execute(_MARKS).one()
    return ChangeMarks((int(r[0] or 0), r[1]), (int(r[2] or 0), int(r[3] or 0), r[4]))
