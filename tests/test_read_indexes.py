"""The portfolio reads of the stored scorecard (storage/scorecard.py): every filter's pages, totals
and header agree with the scorecard rows read into Python, on SQLite and PostgreSQL; on SQLite the
statements are read in index order (no sort, no table scan); fresh and migrated databases have the
same partial indexes (Alembic's comparison does not look at an index's WHERE)."""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from bot.lifecycle import portfolio_line
from bot.reports import portfolio_page
from bot.views import header_line
from storage import outbox
from storage import scorecard as store
from storage.db import make_engine, upgrade
from storage.models import CheckIn, Escalation

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
STAGES = ("pilot", "production", "paused", "retired")
STATES = ("closed", "at_risk", "open")
OWNERS = ("slack:U1", "slack:U2", "teams:U3", None)
CODES = {"closed": "no_baseline", "at_risk": "missed_last", "open": "no_owner"}  # any valid Reason


def _portfolio(n: int, seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        states = [rnd.choice(STATES) for _ in store.GAP_COLUMNS]
        tier = 0 if "open" in states else 1 if "at_risk" in states else 2
        out.append(
            {
                "pilot_id": i,
                "slug": f"p-{rnd.randrange(10**6):06d}-{i}",
                "stage": rnd.choice(STAGES),
                "owner_ref": rnd.choice(OWNERS),
                "states": states,
                "ready": tier == 2,
                "risk": tier * 10 + states.count("closed"),
            }
        )
    return out


def _insert(engine: Engine, rows: list[dict[str, Any]]) -> None:
    t = SQLModel.metadata.tables
    with engine.begin() as conn:
        conn.execute(
            sa.insert(t["pilot"]),
            [
                dict(
                    id=r["pilot_id"],
                    slug=r["slug"],
                    name=f"Pilot {r['pilot_id']}",
                    stage=r["stage"],
                    go_live=date(2026, 3, 1),
                    owner_platform=r["owner_ref"].split(":")[0] if r["owner_ref"] else None,
                    owner_id=r["owner_ref"].split(":")[1] if r["owner_ref"] else None,
                    checkin_weekday=0,
                    checkin_time="09:00",
                    checkin_tz="UTC",
                    created_by="test",
                    created_at=T0,
                    updated_at=T0,
                )
                for r in rows
            ],
        )
        conn.execute(
            sa.insert(t["pilot_scorecard"]),
            [
                {
                    "pilot_id": r["pilot_id"],
                    "slug": r["slug"],
                    "stage": r["stage"],
                    "owner_ref": r["owner_ref"],
                    **{f"{g}_state": s for g, s in zip(store.GAP_COLUMNS, r["states"], strict=True)},
                    **{f"{g}_code": CODES[s] for g, s in zip(store.GAP_COLUMNS, r["states"], strict=True)},
                    "reasons": [f"{g} is {s}" for g, s in zip(store.GAP_COLUMNS, r["states"], strict=True)],
                    "ready": r["ready"],
                    "gate_met": False,
                    "gate_unmet": [],
                    "risk": r["risk"],
                    "computed_at": T0,
                    "updated_at": T0,
                }
                for r in rows
            ],
        )


def _selected(rows: list[dict[str, Any]], filter_: str | None, owner: str | None) -> list[str]:
    """SPEC §8's filters over the rows in Python, riskiest first then by slug."""
    keep = {
        None: lambda r: r["stage"] != "retired",
        "mine": lambda r: r["stage"] != "retired",
        "at-risk": lambda r: r["stage"] != "retired" and not r["ready"],
        "ready": lambda r: r["stage"] != "retired" and r["ready"],
        "production": lambda r: r["stage"] == "production",
        "retired": lambda r: r["stage"] == "retired",
    }[filter_]
    narrowed = filter_ == "mine" or owner is not None
    hits = [r for r in rows if keep(r) and (not narrowed or r["owner_ref"] == owner)]
    return [r["slug"] for r in sorted(hits, key=lambda r: (r["risk"], r["slug"]))]


FILTERS = [None, *store.FILTERS]


def test_every_filter_pages_counts_and_header_agree_with_the_rows(engine: Engine) -> None:
    rows = _portfolio(90, seed=14)
    _insert(engine, rows)
    with Session(engine) as s:
        counts = store.counts(s)
        for filter_ in FILTERS:
            for owner in (None, *OWNERS[:3]):
                if filter_ == "mine" and owner is None:
                    continue
                want = _selected(rows, filter_, owner)
                got: list[str] = []
                for offset in range(0, len(want) + 7, 7):
                    got += [r.slug for r in store.page(s, filter_, owner, 7, offset)]
                assert got == want, (filter_, owner)
                assert store.count(s, filter_, owner) == len(want), (filter_, owner)
                if owner is None:
                    assert counts.matching[filter_ or ""] == len(want), filter_
                # The page the commands and REST read: its total and first rows.
                first = portfolio_page(s, filter_, owner, 1, 25, counts)
                assert first.matching == len(want)
                assert [e.pilot.slug for e in first.entries] == want[:25]
    active = [r for r in rows if r["stage"] in ("pilot", "production")]
    assert counts.active == len(active)
    assert counts.ready == sum(1 for r in active if r["ready"])
    assert counts.production == sum(1 for r in active if r["stage"] == "production")
    for i, g in enumerate(store.GAP_COLUMNS):
        assert counts.gaps[g] == {st: sum(1 for r in active if r["states"][i] == st) for st in STATES}
    # The header from the aggregate is the pure rule's line over every pilot.
    assert header_line(counts) == portfolio_line((r["stage"], r["ready"]) for r in rows)


def test_undeliverable_count_is_the_rows_given_up_on(engine: Engine) -> None:
    rows = _portfolio(3, seed=1)
    _insert(engine, rows)
    t = SQLModel.metadata.tables
    with engine.begin() as conn:
        given_up, retried = outbox.MAX_ATTEMPTS, outbox.MAX_ATTEMPTS - 1
        for period, attempts in (("2026-W01", given_up), ("2026-W02", retried)):
            conn.execute(sa.insert(t["check_in"]).values(pilot_id=1, period=period, due_at=T0, attempts=attempts))
        # Sent after many failures: no longer undeliverable.
        conn.execute(sa.insert(t["check_in"]).values(pilot_id=2, period="2026-W01", due_at=T0, attempts=9, sent_at=T0))
        for key, attempts, sent in (("k0", given_up + 1, None), ("k1", given_up, T0), ("k2", 0, None)):
            conn.execute(
                sa.insert(t["escalation"]).values(
                    pilot_id=1,
                    kind="missed",
                    dedupe_key=key,
                    targets=[],
                    payload={},
                    created_at=T0,
                    attempts=attempts,
                    sent_at=sent,
                )
            )
    with Session(engine) as s:
        bad_c, bad_e = outbox.undeliverable(s)
        assert (len(bad_c), len(bad_e)) == (1, 1)
        assert outbox.undeliverable_count(s) == 2
        assert {type(x) for x in (*bad_c, *bad_e)} == {CheckIn, Escalation}


def _plan(conn: sa.Connection, stmt: sa.Select[Any], params: dict[str, Any]) -> list[tuple[int, int, str]]:
    compiled = stmt.compile(conn, compile_kwargs={})
    sql = str(compiled)
    values = {**compiled.params, **params}
    args = tuple(values[k] for k in compiled.positiontup or ())
    return [(r[0], r[1], r[3]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, args).all()]


def _subtree(plan: list[tuple[int, int, str]], root: int) -> list[str]:
    out, parents = [], {root}
    for node, parent, detail in plan:
        if parent in parents:
            parents.add(node)
            out.append(detail)
    return out


@pytest.mark.parametrize("filter_,owner", [(f, None) for f in FILTERS if f != "mine"] + [("mine", "slack:U1")])
def test_sqlite_reads_each_page_in_index_order(sqlite_url: str, filter_: str | None, owner: str | None) -> None:
    # Without ANALYZE statistics, as a real database usually is: the plan must not rely on them.
    engine = make_engine(sqlite_url)
    _insert(engine, _portfolio(300, seed=3))
    with engine.connect() as conn:
        stmt = store._page_statement(filter_, store._by_owner(filter_, owner))
        plan = _plan(conn, stmt, {"owner_ref": owner, "limit": 25, "offset": 50})
        ids = next(node for node, _, detail in plan if detail.startswith("MATERIALIZE page_ids"))
        inner = _subtree(plan, ids)
        assert len(inner) == 1 and "TEMP B-TREE" not in inner[0], inner
        expected = {
            None: "COVERING INDEX ix_scorecard_listed_risk",
            "at-risk": "COVERING INDEX ix_scorecard_listed_ready_risk",
            "ready": "COVERING INDEX ix_scorecard_listed_ready_risk",
            "production": "COVERING INDEX ix_scorecard_stage_risk",
            "retired": "COVERING INDEX ix_scorecard_stage_risk",
            "mine": "INDEX ix_scorecard_owner_risk",
        }[filter_]
        assert expected in inner[0], inner
        counts = [d for _, _, d in _plan(conn, store._COUNTS, {})]
        assert counts == ["SCAN pilot_scorecard USING COVERING INDEX ix_scorecard_counts"]
        unsent = " ".join(d for _, _, d in _plan(conn, outbox._UNDELIVERABLE, {}))
        assert "check_in USING INDEX ix_check_in_unsent_attempts" in unsent
    engine.dispose()


def test_an_owner_narrowed_at_risk_page_reads_the_owner_index(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    _insert(engine, _portfolio(300, seed=4))
    with engine.connect() as conn:
        plan = _plan(conn, store._page_statement("at-risk", True), {"owner_ref": "slack:U1", "limit": 25, "offset": 0})
        assert any("INDEX ix_scorecard_owner_risk (owner_ref=?)" in d for _, _, d in plan), plan
    engine.dispose()


_READ_INDEXES = (
    "ix_scorecard_listed_risk",
    "ix_scorecard_listed_ready_risk",
    "ix_scorecard_counts",
    "ix_check_in_unsent_attempts",
    "ix_escalation_unsent_attempts",
)


def _sqlite_index_sql(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        return {name: re.sub(r'["\s]+', " ", sql).strip() for name, sql in rows if name in _READ_INDEXES}


def test_fresh_and_migrated_sqlite_have_the_same_read_indexes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    migrated = make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    upgrade(migrated)
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    SQLModel.metadata.create_all(fresh)
    got, want = _sqlite_index_sql(migrated), _sqlite_index_sql(fresh)
    assert set(got) == set(_READ_INDEXES)
    assert got == want
    assert "WHERE stage <> 'retired'" in got["ix_scorecard_listed_risk"]
    assert "WHERE sent_at IS NULL" in got["ix_check_in_unsent_attempts"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite: compared with a fresh database above
def test_migrated_postgresql_indexes_are_partial(engine: Engine) -> None:
    assert engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        defs = dict(conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes").all())
    assert "WHERE ((stage)::text <> 'retired'::text)" in defs["ix_scorecard_listed_risk"]
    assert "WHERE ((stage)::text <> 'retired'::text)" in defs["ix_scorecard_listed_ready_risk"]
    assert "WHERE (sent_at IS NULL)" in defs["ix_check_in_unsent_attempts"]
    assert "WHERE (sent_at IS NULL)" in defs["ix_escalation_unsent_attempts"]
    assert "ix_scorecard_risk" not in defs and "ix_scorecard_ready_risk" not in defs


def test_0014_downgrades_and_upgrades_again(sqlite_url: str) -> None:
    from storage.db import downgrade

    engine = make_engine(sqlite_url)
    downgrade(engine, "0013_scorecard")
    with engine.connect() as conn:
        names = {n for (n,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "ix_scorecard_risk" in names and "ix_scorecard_counts" not in names
    upgrade(engine)
    assert set(_sqlite_index_sql(engine)) == set(_READ_INDEXES)
    engine.dispose()
