"""Per-case results of labelled eval runs: one packed row a run, and the reads the comparisons need.

Why packed: a 20,000-case run stored as 20,000 rows (id, pass, fields) costs megabytes and
thousands of inserts per import; the comparisons (bot/evals/) always read whole runs anyway.
So `eval_case_result` holds one row per labelled run: `run_id` (the `eval_run` it belongs to),
`n` (its number of cases) and `packed`, zlib-compressed JSON (format version 1):

    {"v": 1, "ids": ["c1", "c2", ...],          case ids in file order
     "fields": ["party", "amount", ...],         every failing field name, once
     "fail": [[1, 0], [7, 0, 1], [9], ...]}      failing cases: [case index, field indices...]

A case passes unless its index is in "fail"; a failed case may name no field (a JUnit failure).
A run without a row here was not labelled (a bare score from `eval`, a check-in or the REST JSON).

Repositories add and flush; the caller's unit of work commits (STYLE.md habit 7).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session, col, select

from storage.models import EvalCaseResult, EvalRun

FORMAT_VERSION = 1
RECENT_RUNS = 10


class CaseResult(NamedTuple):
    """One case of one run. A NamedTuple: a run has up to tens of thousands of them."""

    id: str
    passed: bool
    failing: tuple[str, ...] = ()  # the must-not-miss fields that missed, in file order


@dataclass(frozen=True)
class RunCases:
    run_id: int
    run_at: datetime
    results: list[CaseResult]


class PackError(ValueError):
    """A stored row this code cannot read (a newer format version, or damage)."""


def pack(results: Sequence[CaseResult]) -> bytes:
    field_index: dict[str, int] = {}
    fail: list[list[int]] = []
    for i, r in enumerate(results):
        if not r.passed:
            fail.append([i, *(field_index.setdefault(f, len(field_index)) for f in r.failing)])
    doc = {"v": FORMAT_VERSION, "ids": [r.id for r in results], "fields": list(field_index), "fail": fail}
    # ensure_ascii: any string survives the round trip, whatever it holds.
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode("ascii"), 6)


def unpack(blob: bytes) -> list[CaseResult]:
    try:
        doc: dict[str, Any] = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError) as e:
        raise PackError(f"unreadable per-case results ({e})") from None
    if doc.get("v") != FORMAT_VERSION:
        raise PackError(f"per-case results in format {doc.get('v')!r}; this version reads {FORMAT_VERSION}")
    try:
        fields: list[str] = doc["fields"]
        failed = {entry[0]: tuple(fields[j] for j in entry[1:]) for entry in doc["fail"]}
        ids: list[str] = doc["ids"]
    except (KeyError, IndexError, TypeError) as e:
        raise PackError(f"damaged per-case results ({type(e).__name__})") from None
    return [CaseResult(cid, False, failed[i]) if i in failed else CaseResult(cid, True) for i, cid in enumerate(ids)]


def save(session: Session, run_id: int, results: Sequence[CaseResult]) -> EvalCaseResult:
    """Attach `results` to the eval run `run_id` (in the caller's transaction)."""
    row = EvalCaseResult(run_id=run_id, n=len(results), packed=pack(results))
    session.add(row)
    session.flush()
    return row


def _labelled(pilot_id: int) -> Any:
    """The pilot's labelled runs, newest first: the one query every read here builds on.

    Void runs are left out here, so previous/recent/comparisons skip them everywhere.
    """
    return (
        select(col(EvalRun.id), col(EvalRun.run_at), col(EvalCaseResult.packed))
        .join(EvalCaseResult, col(EvalCaseResult.run_id) == col(EvalRun.id))
        .where(col(EvalRun.pilot_id) == pilot_id, col(EvalRun.voided_at).is_(None))
        .order_by(col(EvalRun.run_at).desc(), col(EvalRun.id).desc())
    )


def _before(query: Any, session: Session, run_id: int | None) -> Any:
    """Only runs recorded before `run_id` (same order as `repo.latest_evals`: run_at, then id)."""
    if run_id is None:
        return query
    run = session.get(EvalRun, run_id)
    if run is None:
        return query.where(sa.false())
    at = col(EvalRun.run_at)
    return query.where(sa.or_(at < run.run_at, sa.and_(at == run.run_at, col(EvalRun.id) < run_id)))


def _runs(rows: Any) -> list[RunCases]:
    return [RunCases(rid, at, unpack(packed)) for rid, at, packed in rows]


def previous(session: Session, pilot_id: int, before_run_id: int | None = None) -> RunCases | None:
    """The latest labelled run of the pilot; with `before_run_id`, the latest one before that run."""
    rows = session.exec(_before(_labelled(pilot_id), session, before_run_id).limit(1)).all()
    return next(iter(_runs(rows)), None)


def recent(session: Session, pilot_id: int, n: int = RECENT_RUNS, up_to_run_id: int | None = None) -> list[RunCases]:
    """The last `n` labelled runs of the pilot, oldest first; with `up_to_run_id`, ending at that run."""
    query = _labelled(pilot_id)
    if up_to_run_id is not None:
        run = session.get(EvalRun, up_to_run_id)
        if run is None:
            return []
        at = col(EvalRun.run_at)
        query = query.where(sa.or_(at < run.run_at, sa.and_(at == run.run_at, col(EvalRun.id) <= up_to_run_id)))
    return list(reversed(_runs(session.exec(query.limit(n)).all())))


def for_run(session: Session, run_id: int) -> list[CaseResult] | None:
    """The results stored with one run; None when it was not labelled."""
    row = session.get(EvalCaseResult, run_id)
    return unpack(row.packed) if row is not None else None
