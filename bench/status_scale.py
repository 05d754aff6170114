"""`status <slug>` and the portfolio `status` on 10,000 pilots with a year of history each.

Prints median and p95 latency and the number of SQL statements per command, for a pilot with a
full 52-week history against the same command on a pilot with one week (the no-N+1 check).

    .venv/bin/python bench/status_scale.py [--pilots 10000] [--db /tmp/pilotbot-bench.db]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.portfolio_data import NOW, build  # noqa: E402
from bot.clock import FixedClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.core import build_core  # noqa: E402
from bot.ports import Actor  # noqa: E402


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(round(0.95 * len(xs))) - 1)]


def count_statements(engine: sa.Engine, fn) -> int:  # type: ignore[no-untyped-def]
    n = 0

    def on(*_: object) -> None:
        nonlocal n
        n += 1

    sa.event.listen(engine, "before_cursor_execute", on)
    try:
        fn()
    finally:
        sa.event.remove(engine, "before_cursor_execute", on)
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pilots", type=int, default=10_000)
    ap.add_argument("--db", default="/tmp/pilotbot-bench-status.db")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    url = f"sqlite:///{args.db}"
    if args.rebuild or not os.path.exists(args.db):
        for suffix in ("", "-wal", "-shm"):
            Path(args.db + suffix).unlink(missing_ok=True)
        t0 = time.perf_counter()
        build(url, args.pilots)
        took = time.perf_counter() - t0
        print(f"built {args.pilots} pilots x (3x52 measurements, 52 evals, 52 check-ins) in {took:.0f} s")
    core = build_core(Settings(_env_file=None, database_url=url), FixedClock(NOW))  # type: ignore[call-arg]
    actor = Actor("console", "reader")
    if not core.router.handle("status short-history", actor).ok:
        # A short-history pilot beside the long ones, for the constant-statements comparison.
        for text in (
            "new short-history Short",
            "baseline short-history m0 10 min",
            "measure short-history m0 9",
            "threshold short-history 90",
            "eval short-history 95 cases 150",
        ):
            assert core.router.handle(text, Actor("console", "bench")).ok, text
    slugs = [f"pilot-{i:05d}" for i in range(1, args.pilots + 1, max(1, args.pilots // args.runs))]
    import sqlite3

    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}")

    def one(slug: str) -> None:
        r = core.router.handle(f"status {slug}", actor)
        assert r.ok and r.card is not None, r.text

    one(slugs[0])  # warm up
    single = []
    for s in slugs:
        single.extend(timed(lambda s=s: one(s), 1))
    long_stmts = count_statements(core.engine, lambda: one(slugs[0]))
    short_stmts = count_statements(core.engine, lambda: one("short-history"))
    print(
        f"status <slug>: median {statistics.median(single):.2f} ms, p95 {p95(single):.2f} ms "
        f"over {len(single)} pilots; SQL statements {long_stmts} (52-week history) vs {short_stmts} (1 week)"
    )

    def portfolio() -> None:
        r = core.router.handle("status", actor)
        assert r.ok and r.portfolio is not None and r.portfolio.total >= args.pilots

    portfolio()
    port = timed(portfolio, 7)
    port_stmts = count_statements(core.engine, portfolio)
    r = core.router.handle("status", actor)
    assert r.portfolio is not None
    print(
        f"status (portfolio of {r.portfolio.total}): median {statistics.median(port):.0f} ms, p95 {p95(port):.0f} ms, "
        f"SQL statements {port_stmts}; shows {len(r.portfolio.rows)} rows + 'and {r.portfolio.more} more'; "
        f"{r.portfolio.summary}"
    )


def stored_reads(core, actor, pilots: int, runs: int) -> dict[str, tuple[float, float, int]]:  # type: ignore[no-untyped-def]
    """The five portfolio reads of issue 14, served from the stored scorecard: (median, p95, statements)."""
    from adapters.api.payloads import portfolio_page_doc
    from adapters.metrics import Metrics
    from bot.home import home_from_pages

    metrics = Metrics(core)

    def status() -> None:
        r = core.router.handle("status", actor)
        assert r.ok and r.portfolio is not None and r.portfolio.total >= min(pilots, 1), r.text

    def at_risk_3() -> None:
        r = core.router.handle("status at-risk page 3", actor)
        assert r.ok and r.portfolio is not None, r.text

    def home() -> None:
        mine, everyone, shipped = core.services.home_pages("slack:U000001")
        assert home_from_pages(mine, everyone, shipped)

    def scrape() -> None:
        assert b"pilotbot_pilots_ready" in metrics.exposition()

    def api_page() -> None:
        assert portfolio_page_doc(core.services.portfolio_page(None, 1, None))["pilots"]

    out = {}
    for name, fn in (
        ("status", status),
        ("status at-risk page 3", at_risk_3),
        ("App Home build", home),
        ("/metrics render", scrape),
        ("GET /api/v1/pilots?page=1 (payload)", api_page),
    ):
        fn()
        xs = timed(fn, runs)
        out[name] = (statistics.median(xs), p95(xs), count_statements(core.engine, fn))
    return out


def scale_main() -> None:
    """`--stored`: the stored-scorecard reads at 100 and at N pilots, beside today's full recompute."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--stored", action="store_true")
    ap.add_argument("--pilots", type=int, default=10_000)
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument(
        "--url",
        help="a database URL with {n} for the portfolio size, e.g. postgresql+psycopg://u@host/bench_{n} "
        "(each database is built when it has no pilots yet)",
    )
    ap.add_argument("--pg", action="store_true", help="on a throw-away PostgreSQL server (tests/pg.py)")
    ap.add_argument("--no-today", action="store_true", help="skip the old full recompute (minutes on PostgreSQL)")
    args = ap.parse_args()
    import sqlite3

    from bot.views import portfolio_reply

    cluster = None
    if args.pg:
        from tests import pg

        cluster = pg.start_cluster()
        admin = sa.create_engine(cluster.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for n in (args.small, args.pilots):
                conn.exec_driver_sql(f"CREATE DATABASE bench_{n}")
        admin.dispose()
        args.url = cluster.url_for("bench_{n}")
    try:
        _scale(args, portfolio_reply, sqlite3.sqlite_version)
    finally:
        if cluster is not None:
            cluster.stop()


def _scale(args: argparse.Namespace, portfolio_reply, sqlite_version: str) -> None:  # type: ignore[no-untyped-def]
    backend = "sqlite " + sqlite_version
    if args.url:
        e = sa.create_engine(args.url.format(n=args.small))
        with e.connect() as conn:
            pg_version = conn.exec_driver_sql("SHOW server_version").scalar() if e.dialect.name == "postgresql" else ""
            backend = f"{e.dialect.name} {pg_version}"
        e.dispose()
    print(f"machine: {os.cpu_count()} cores (shared), python {sys.version.split()[0]}, {backend}")
    results = {}
    for n in (args.small, args.pilots):
        if args.url:
            url = args.url.format(n=n)
            exists = _has_pilots(url)
        else:
            db = Path(args.dir) / f"pilotbot-bench-scorecard-{n}.db"
            url, exists = f"sqlite:///{db}", db.exists()
        if not exists:
            t0 = time.perf_counter()
            build(url, n)
            print(f"built {n} pilots (a year of history each) in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        core = build_core(Settings(_env_file=None, database_url=url), FixedClock(NOW))  # type: ignore[call-arg]
        print(f"{n} pilots: scorecard backfill/check-at-start {time.perf_counter() - t0:.1f} s")
        actor = Actor("console", "reader")
        results[n] = stored_reads(core, actor, n, args.runs)
        for name, (med, p, stmts) in results[n].items():
            print(f"  {n} pilots: {name}: median {med:.2f} ms, p95 {p:.2f} ms, {stmts} statements", flush=True)
        if args.no_today:
            core.engine.dispose()
            continue

        def today(core=core) -> None:  # type: ignore[no-untyped-def]
            assert portfolio_reply(core.services.portfolio()).portfolio is not None

        today()
        xs = timed(today, 5 if n > 1000 else args.runs)
        results[n]["today: full recompute (old status)"] = (
            statistics.median(xs),
            p95(xs),
            count_statements(core.engine, today),
        )
        core.engine.dispose()
    _print_table(args, results)


def _has_pilots(url: str) -> bool:
    e = sa.create_engine(url)
    try:
        with e.connect() as conn:
            if not sa.inspect(conn).has_table("pilot"):
                return False
            return bool(conn.exec_driver_sql("SELECT count(*) FROM pilot").scalar())
    finally:
        e.dispose()


def _print_table(args: argparse.Namespace, results: dict[int, dict[str, tuple[float, float, int]]]) -> None:
    small, big = results[args.small], results[args.pilots]
    print(
        f"{'read':40} {'median/p95 ms @' + str(args.small):>22} {'median/p95 ms @' + str(args.pilots):>22}  statements"
    )
    for name in big:
        if name not in small:
            continue
        a, b = small[name], big[name]
        print(f"{name:40} {a[0]:9.2f} / {a[1]:8.2f}   {b[0]:9.2f} / {b[1]:8.2f}   {a[2]} -> {b[2]}")


if __name__ == "__main__":
    if "--stored" in sys.argv:
        scale_main()
    else:
        main()
