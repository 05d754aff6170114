"""Importing a 20,000-case labelled run with per-case storage and the flip comparison, against
scoring alone, in the same process with alternating rounds; and database growth per run.

Each round, in alternating order:
  score    `score_text` of a 20,000-case JSONL file (parse + score; what issue 7 measured)
  import   what `pilotbot eval import` did before per-case results: score + record the run
  cases    score + record the run WITH its per-case results in the run's own transaction
           (`record_eval(..., results=...)`: the packed row, the previous labelled run read, the
           flips against it, the alert decision, the gate) — what `pilotbot eval import` and the REST
           route do now. The two alternating files differ in about 5,200 cases: every compare lists
           flips, a worse case than a real regression
  (attach  the per-case part alone: `cases` minus `import`, median of the per-round differences)
Prints median and spread (min-max, interquartile range) of wall time and of process CPU time
(the machine may be shared: CPU time is the steadier figure), the ratios of the medians, and the
database growth per labelled run (packed row bytes, and the SQLite file after a WAL checkpoint).
Targets (issue 16): `cases` under 2x `score`; under 1 MB of growth per run.

    .venv/bin/python bench/evalscore.py [--cases 20000] [--rounds 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import FixedClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.core import Core, build_core  # noqa: E402
from bot.evalscore import score_text  # noqa: E402
from bot.ports import Actor  # noqa: E402

ANA = Actor("console", "ana", "Ana")
SLUG = "legal-intake"


def case_file(n: int, shift: int) -> str:
    """n cases; `party` misses when (i + shift) % 7 == 0 and `amount` when i % 11 == 0."""
    rows = []
    for i in range(n):
        party, amount = f"Party {i % 50}", 1000 + i
        rows.append(
            {
                "id": f"case-{i:05d}",
                "expected": {"party": party, "amount": amount, "note": "ok"},
                "actual": {
                    "party": f"  {party.upper()} " if (i + shift) % 7 else "Someone Else",
                    "amount": amount if i % 11 else amount + 1,
                    "note": "OK" if i % 3 else "different",
                },
                "must_not_miss": ["party", "amount"],
            }
        )
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def db_bytes(core: Core) -> int:
    with core.engine.connect() as c:
        c.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        pages = c.execute(sa.text("PRAGMA page_count")).scalar_one()
        size = c.execute(sa.text("PRAGMA page_size")).scalar_one()
        free = c.execute(sa.text("PRAGMA freelist_count")).scalar_one()
    return int((pages - free) * size)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="pilotbot-bench-evals-"))
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp / 'bench.db'}")  # type: ignore[call-arg]
    clock = FixedClock()
    core = build_core(settings, clock)
    for cmd in (f"new {SLUG} Legal intake", f"owner {SLUG} @ana", f"threshold {SLUG} 95 min-cases 100"):
        assert core.router.handle(cmd, ANA).ok, cmd
    files = [case_file(args.cases, 0), case_file(args.cases, 3)]

    def score(text: str) -> None:
        score_text(text, "jsonl")

    def plain_import(text: str) -> None:
        scored = score_text(text, "jsonl")
        clock.advance(timedelta(minutes=1))
        core.services.record_eval(ANA, SLUG, scored.score, scored.cases, None)

    flips_seen: list[int] = []

    def cases_import(text: str) -> None:
        scored = score_text(text, "jsonl")
        clock.advance(timedelta(minutes=1))
        out = core.services.record_eval(
            ANA, SLUG, scored.score, scored.cases, None, field_scores=scored.field_accuracy, results=scored.results
        )
        assert out.flips is not None
        flips_seen.append(out.flips.regressed_total + out.flips.fixed_total)

    steps: dict[str, Callable[[str], None]] = {"score": score, "import": plain_import, "cases": cases_import}
    wall: dict[str, list[float]] = {k: [] for k in [*steps, "attach"]}
    cpu: dict[str, list[float]] = {k: [] for k in [*steps, "attach"]}
    growth: list[int] = []
    cases_import(files[1])  # the first labelled run: every measured `cases` round has one to compare with
    plain_growth: list[int] = []
    for rnd in range(args.rounds):
        order = list(steps) if rnd % 2 == 0 else list(reversed(steps))
        text = files[rnd % 2]
        for name in order:
            before = db_bytes(core) if name != "score" else 0
            t0, c0 = time.perf_counter(), time.process_time()
            steps[name](text)
            wall[name].append((time.perf_counter() - t0) * 1000)
            cpu[name].append((time.process_time() - c0) * 1000)
            if name == "cases":
                growth.append(db_bytes(core) - before)
            elif name == "import":
                plain_growth.append(db_bytes(core) - before)
        for times in (wall, cpu):
            times["attach"].append(times["cases"][-1] - times["import"][-1])

    with core.engine.connect() as c:
        packed = c.execute(sa.text("SELECT avg(length(packed)), count(*) FROM eval_case_result")).one()

    def stats(xs: list[float]) -> str:
        q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
        return f"median {statistics.median(xs):7.1f} ms  (min {min(xs):.1f}, max {max(xs):.1f}, IQR {q[2] - q[0]:.1f})"

    print(f"{args.cases} cases, {args.rounds} alternating rounds, SQLite at {tmp}")
    for label, times in (("wall", wall), ("cpu", cpu)):
        for name in times:
            print(f"  {label:4s} {name:7s} {stats(times[name])}")
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"  {label:4s} cases / score  = {med['cases'] / med['score']:.2f}x   (target < 2x)")
        print(f"  {label:4s} cases / import = {med['cases'] / med['import']:.2f}x")
        print(f"  {label:4s} attach / score = {med['attach'] / med['score']:.2f}x   (the per-case part alone)")
    print(f"  flips found per compared run: {sorted(set(flips_seen[1:]))}")
    print(
        f"  growth per bare-score run (run + audit rows): median {statistics.median(plain_growth) / 1024:.1f} KiB; "
        "scoring alone writes nothing"
    )
    print(
        f"  growth per labelled run: packed row {packed[0] / 1024:.1f} KiB avg over {packed[1]} runs; "
        f"SQLite file (run + audit + case row) median {statistics.median(growth) / 1024:.1f} KiB, "
        f"max {max(growth) / 1024:.1f} KiB   (target < 1024 KiB)"
    )
    core.engine.dispose()


if __name__ == "__main__":
    main()
