"""Query helpers. They add and flush, never commit: services own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from storage.models import (
    AuditEvent,
    CheckIn,
    EvalPolicy,
    EvalRun,
    Measurement,
    Metric,
    PathItem,
    Pilot,
)


def pilot_by_slug(session: Session, slug: str) -> Pilot | None:
    return session.exec(select(Pilot).where(Pilot.slug == slug)).first()


def all_slugs(session: Session) -> list[str]:
    return list(session.exec(select(Pilot.slug)).all())


def close_slugs(session: Session, slug: str, limit: int = 3) -> list[str]:
    """Candidates for "did you mean": prefix matches first, then a bounded fuzzy pool."""
    import difflib

    pool = all_slugs(session)
    return difflib.get_close_matches(slug, pool, n=limit, cutoff=0.6)


def metrics_with_latest(session: Session, pilot_id: int) -> list[tuple[Metric, Measurement | None]]:
    """Every metric of a pilot with its newest measurement, in two statements."""
    metrics = list(session.exec(select(Metric).where(Metric.pilot_id == pilot_id).order_by(Metric.key)))
    if not metrics:
        return []
    ids = [m.id for m in metrics]
    newest = (
        select(Measurement.metric_id, sa.func.max(Measurement.measured_at).label("at"))
        .where(Measurement.metric_id.in_(ids))  # type: ignore[union-attr]
        .group_by(Measurement.metric_id)
        .subquery()
    )
    rows = session.exec(
        select(Measurement)
        .join(newest, sa.and_(Measurement.metric_id == newest.c.metric_id, Measurement.measured_at == newest.c.at))
        .order_by(Measurement.id)  # type: ignore[arg-type]
    ).all()
    latest = {m.metric_id: m for m in rows}
    return [(m, latest.get(m.id)) for m in metrics]  # type: ignore[arg-type]


def metric(session: Session, pilot_id: int, key: str) -> Metric | None:
    return session.exec(select(Metric).where(Metric.pilot_id == pilot_id, Metric.key == key)).first()


def policy(session: Session, pilot_id: int) -> EvalPolicy | None:
    return session.get(EvalPolicy, pilot_id)


def latest_evals(session: Session, pilot_id: int, n: int = 2) -> list[EvalRun]:
    return list(
        session.exec(
            select(EvalRun)
            .where(EvalRun.pilot_id == pilot_id)
            .order_by(EvalRun.run_at.desc(), EvalRun.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(n)
        )
    )


def path_items(session: Session, pilot_id: int) -> list[PathItem]:
    return list(session.exec(select(PathItem).where(PathItem.pilot_id == pilot_id)))


def path_item(session: Session, pilot_id: int, item: str) -> PathItem | None:
    return session.exec(select(PathItem).where(PathItem.pilot_id == pilot_id, PathItem.item == item)).first()


def recent_due_checkins(session: Session, pilot_id: int, now: datetime, n: int = 3) -> list[CheckIn]:
    return list(
        session.exec(
            select(CheckIn)
            .where(CheckIn.pilot_id == pilot_id, CheckIn.due_at <= now)
            .order_by(CheckIn.due_at.desc())  # type: ignore[attr-defined]
            .limit(n)
        )
    )


def audit_events(session: Session, pilot_id: int, n: int = 20) -> list[AuditEvent]:
    return list(
        session.exec(
            select(AuditEvent)
            .where(AuditEvent.pilot_id == pilot_id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(n)
        )
    )


def eval_history(session: Session, pilot_id: int, n: int = 52) -> list[EvalRun]:
    rows = list(
        session.exec(
            select(EvalRun)
            .where(EvalRun.pilot_id == pilot_id)
            .order_by(EvalRun.run_at.desc(), EvalRun.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(n)
        )
    )
    return rows[::-1]


def measurement_history(session: Session, metric_ids: Sequence[int], n: int = 52) -> dict[int, list[Measurement]]:
    """The newest n measurements of each metric, oldest first, in one statement."""
    if not metric_ids:
        return {}
    ranked = (
        select(
            Measurement.id,
            sa.func.row_number()
            .over(partition_by=Measurement.metric_id, order_by=Measurement.measured_at.desc())  # type: ignore[attr-defined]
            .label("rn"),
        )
        .where(Measurement.metric_id.in_(metric_ids))  # type: ignore[union-attr]
        .subquery()
    )
    rows = session.exec(
        select(Measurement)
        .join(ranked, Measurement.id == ranked.c.id)
        .where(ranked.c.rn <= n)
        .order_by(Measurement.measured_at)  # type: ignore[arg-type]
    ).all()
    out: dict[int, list[Measurement]] = {i: [] for i in metric_ids}
    for row in rows:
        out[row.metric_id].append(row)
    return out


# ---- portfolio: a constant number of set-based statements for any number of pilots ----


def portfolio_rows(session: Session) -> list[Pilot]:
    return list(session.exec(select(Pilot).order_by(Pilot.slug)))


def baseline_dates_by_pilot(session: Session) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for pilot_id, at in session.exec(select(Metric.pilot_id, Metric.baseline_at)):
        out.setdefault(pilot_id, []).append(at)
    return out


def policies_by_pilot(session: Session) -> dict[int, EvalPolicy]:
    return {p.pilot_id: p for p in session.exec(select(EvalPolicy))}


def latest_eval_by_pilot(session: Session) -> dict[int, EvalRun]:
    newest = (
        select(EvalRun.pilot_id, sa.func.max(EvalRun.run_at).label("at"))
        .group_by(EvalRun.pilot_id)
        .subquery()
    )
    rows = session.exec(
        select(EvalRun)
        .join(newest, sa.and_(EvalRun.pilot_id == newest.c.pilot_id, EvalRun.run_at == newest.c.at))
        .order_by(EvalRun.id)  # type: ignore[arg-type]
    ).all()
    return {r.pilot_id: r for r in rows}


def path_states_by_pilot(session: Session) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for pilot_id, item, state in session.exec(select(PathItem.pilot_id, PathItem.item, PathItem.state)):
        out.setdefault(pilot_id, {})[item] = state
    return out


def recent_due_checkins_by_pilot(session: Session, now: datetime, n: int = 3) -> dict[int, list[CheckIn]]:
    """The newest n due check-ins of every pilot, in one statement."""
    ranked = (
        select(
            CheckIn.id,
            sa.func.row_number()
            .over(partition_by=CheckIn.pilot_id, order_by=CheckIn.due_at.desc())  # type: ignore[attr-defined]
            .label("rn"),
        )
        .where(CheckIn.due_at <= now)
        .subquery()
    )
    rows = session.exec(select(CheckIn).join(ranked, CheckIn.id == ranked.c.id).where(ranked.c.rn <= n)).all()
    out: dict[int, list[CheckIn]] = {}
    for row in rows:
        out.setdefault(row.pilot_id, []).append(row)
    return out
