"""Query helpers. They add and flush, never commit: services own the transaction.

Void records (SPEC §8): every query that feeds a judgement (latest values, latest evals, the
portfolio, the scheduled fan-out) leaves them out; `eval_history`/`measurement_history` return
them too (with `voided_at` set) so `history` can show what was withdrawn, and charts skip them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from storage.models import (
    AuditEvent,
    CheckIn,
    ConversationRef,
    EvalPolicy,
    EvalRun,
    Measurement,
    Metric,
    PathItem,
    Pilot,
)


def pilot_by_slug(session: Session, slug: str) -> Pilot | None:
    return session.exec(select(Pilot).where(col(Pilot.slug) == slug)).first()


def all_slugs(session: Session) -> list[str]:
    return list(session.exec(select(col(Pilot.slug))).all())


def close_slugs(session: Session, slug: str, limit: int = 3) -> list[str]:
    """Candidates for "did you mean": prefix matches first, then a bounded fuzzy pool."""
    import difflib

    pool = all_slugs(session)
    return difflib.get_close_matches(slug, pool, n=limit, cutoff=0.6)


def metrics_with_latest(session: Session, pilot_id: int) -> list[tuple[Metric, Measurement | None]]:
    """Every metric of a pilot with its newest measurement, in two statements."""
    return metrics_with_latest_for(session, [pilot_id])[pilot_id]


def metrics_with_void(session: Session, pilot_id: int) -> list[Metric]:
    """Every metric of a pilot, void ones too (`history` shows what was withdrawn)."""
    return list(session.exec(select(Metric).where(col(Metric.pilot_id) == pilot_id).order_by(col(Metric.key))))


def metric(session: Session, pilot_id: int, key: str, *, with_void: bool = False) -> Metric | None:
    """The pilot's metric `key`; a void one only `with_void` (a new baseline revives it)."""
    query = select(Metric).where(col(Metric.pilot_id) == pilot_id, col(Metric.key) == key)
    if not with_void:
        query = query.where(col(Metric.voided_at).is_(None))
    return session.exec(query).first()


def latest_measurement(session: Session, metric_id: int) -> Measurement | None:
    """The metric's newest non-void measurement (what `void … measure` withdraws)."""
    return session.exec(
        select(Measurement)
        .where(col(Measurement.metric_id) == metric_id, col(Measurement.voided_at).is_(None))
        .order_by(col(Measurement.measured_at).desc(), col(Measurement.id).desc())
        .limit(1)
    ).first()


def live_measurements(session: Session, metric_ids: Sequence[int]) -> list[Measurement]:
    """Every non-void measurement of the metrics (the ship gate's "measured after go-live")."""
    if not metric_ids:
        return []
    return list(
        session.exec(
            select(Measurement).where(col(Measurement.metric_id).in_(metric_ids), col(Measurement.voided_at).is_(None))
        )
    )


def policy(session: Session, pilot_id: int) -> EvalPolicy | None:
    return session.get(EvalPolicy, pilot_id)


def latest_evals(session: Session, pilot_id: int, n: int = 2) -> list[EvalRun]:
    return list(
        session.exec(
            select(EvalRun)
            .where(col(EvalRun.pilot_id) == pilot_id, col(EvalRun.voided_at).is_(None))
            .order_by(col(EvalRun.run_at).desc(), col(EvalRun.id).desc())
            .limit(n)
        )
    )


def path_item(session: Session, pilot_id: int, item: str) -> PathItem | None:
    return session.exec(select(PathItem).where(col(PathItem.pilot_id) == pilot_id, col(PathItem.item) == item)).first()


def audit_events(session: Session, pilot_id: int, n: int = 20) -> list[AuditEvent]:
    return list(
        session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.pilot_id) == pilot_id)
            .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
            .limit(n)
        )
    )


def eval_history(session: Session, pilot_id: int, n: int = 52) -> list[EvalRun]:
    rows = list(
        session.exec(
            select(EvalRun)
            .where(col(EvalRun.pilot_id) == pilot_id)
            .order_by(col(EvalRun.run_at).desc(), col(EvalRun.id).desc())
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
            col(Measurement.id),
            sa.func.row_number()
            .over(partition_by=col(Measurement.metric_id), order_by=col(Measurement.measured_at).desc())
            .label("rn"),
        )
        .where(col(Measurement.metric_id).in_(metric_ids))
        .subquery()
    )
    rows = session.exec(
        select(Measurement)
        .join(ranked, col(Measurement.id) == ranked.c.id)
        .where(ranked.c.rn <= n)
        .order_by(col(Measurement.measured_at))
    ).all()
    out: dict[int, list[Measurement]] = {i: [] for i in metric_ids}
    for row in rows:
        out[row.metric_id].append(row)
    return out


# ---- portfolio: a constant number of set-based statements for any number of pilots ----
# Plain rows (not ORM objects): the portfolio reads 10,000s of pilots and identity-mapping them
# costs more than the queries.


def portfolio_rows(session: Session) -> list[Any]:
    return list(
        session.execute(
            sa.select(
                col(Pilot.id),
                col(Pilot.slug),
                col(Pilot.name),
                col(Pilot.stage),
                col(Pilot.go_live),
                col(Pilot.owner_platform),
                col(Pilot.owner_id),
                col(Pilot.owner_name),
                col(Pilot.owner_since),
            ).order_by(col(Pilot.slug))
        ).all()
    )


def baseline_dates_by_pilot(session: Session) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    live = col(Metric.voided_at).is_(None)
    for pilot_id, at in session.exec(select(col(Metric.pilot_id), col(Metric.baseline_at)).where(live)):
        out.setdefault(pilot_id, []).append(at)
    return out


def policies_by_pilot(session: Session) -> dict[int, Any]:
    """Rows with .threshold and .min_cases, by pilot id."""
    rows = session.execute(sa.select(col(EvalPolicy.pilot_id), col(EvalPolicy.threshold), col(EvalPolicy.min_cases)))
    return {row.pilot_id: row for row in rows}


def latest_eval_by_pilot(session: Session) -> dict[int, Any]:
    """Each pilot's newest run via an index seek per pilot on (pilot_id, run_at)."""
    newest = (
        select(col(EvalRun.id))
        .where(col(EvalRun.pilot_id) == col(Pilot.id), col(EvalRun.voided_at).is_(None))
        .order_by(col(EvalRun.run_at).desc(), col(EvalRun.id).desc())
        .limit(1)
        .correlate(Pilot)
        .scalar_subquery()
    )
    rows = session.execute(
        sa.select(
            col(EvalRun.pilot_id), col(EvalRun.score), col(EvalRun.cases), col(EvalRun.run_at), col(EvalRun.version)
        )
        .select_from(Pilot)
        .join(EvalRun, col(EvalRun.id) == newest)
    ).all()
    return {r[0]: r for r in rows}


def path_states_by_pilot(session: Session) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for pilot_id, item, state in session.exec(select(col(PathItem.pilot_id), col(PathItem.item), col(PathItem.state))):
        out.setdefault(pilot_id, {})[item] = state
    return out


def current_owners_decided_checkins(now: Any, decided_before: Any) -> sa.ColumnElement[bool]:
    """The one definition of the check-ins the owner gap judges: due by `now`, due since the current
    owner took over (`Pilot.owner_since`; earlier ones were not theirs), and decided: answered, or
    unanswered past the grace period (due by `decided_before`, i.e. now - grace). Values or bind
    parameters; the statement relates CheckIn to its Pilot (a join or a correlation)."""
    return sa.and_(
        col(CheckIn.due_at) <= now,
        sa.or_(col(Pilot.owner_since).is_(None), col(CheckIn.due_at) >= col(Pilot.owner_since)),
        sa.or_(col(CheckIn.answered_at).is_not(None), col(CheckIn.due_at) <= decided_before),
    )


def recent_due_checkins_by_pilot(session: Session, now: datetime, grace: timedelta, n: int = 3) -> dict[int, list[Any]]:
    """The newest n check-ins the owner gap judges, of each pilot, by an index seek per pilot on
    (pilot_id, due_at)."""
    newest = (
        select(col(CheckIn.id))
        .where(col(CheckIn.pilot_id) == col(Pilot.id), current_owners_decided_checkins(now, now - grace))
        .order_by(col(CheckIn.due_at).desc())
        .limit(n)
        .correlate(Pilot)
    )
    rows = session.exec(
        select(col(CheckIn.pilot_id), col(CheckIn.due_at), col(CheckIn.answered_at))
        .select_from(Pilot)
        .join(CheckIn, col(CheckIn.id).in_(newest))
    ).all()
    out: dict[int, list[Any]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row)
    return out


def checkin_for_period(session: Session, pilot_id: int, period: str) -> CheckIn | None:
    return session.exec(select(CheckIn).where(col(CheckIn.pilot_id) == pilot_id, col(CheckIn.period) == period)).first()


def latest_unanswered_checkin(session: Session, pilot_id: int, now: datetime) -> CheckIn | None:
    return session.exec(
        select(CheckIn)
        .where(col(CheckIn.pilot_id) == pilot_id, col(CheckIn.due_at) <= now, col(CheckIn.answered_at).is_(None))
        .order_by(col(CheckIn.due_at).desc())
        .limit(1)
    ).first()


# ---- conversation references (proactive messages; the serialised platform dict, no SDK types) ----


def conversation_ref(session: Session, platform: str, key: str) -> ConversationRef | None:
    return session.exec(
        select(ConversationRef).where(col(ConversationRef.platform) == platform, col(ConversationRef.key) == key)
    ).first()


def save_conversation_ref(
    session: Session, platform: str, key: str, reference: dict[str, Any], now: datetime
) -> ConversationRef:
    row = conversation_ref(session, platform, key)
    if row is None:
        row = ConversationRef(platform=platform, key=key, reference=reference, updated_at=now)
    else:
        row.reference = dict(reference)  # a new object: JSON columns do not track in-place changes
        row.updated_at = now
    session.add(row)
    session.flush()
    return row


# ---- batch reads for the scheduled fan-out: one statement per kind for a set of pilots ----


def metrics_with_latest_for(
    session: Session, pilot_ids: Sequence[int]
) -> dict[int, list[tuple[Metric, Measurement | None]]]:
    out: dict[int, list[tuple[Metric, Measurement | None]]] = {i: [] for i in pilot_ids}
    if not pilot_ids:
        return out
    metrics = list(
        session.exec(
            select(Metric)
            .where(col(Metric.pilot_id).in_(pilot_ids), col(Metric.voided_at).is_(None))
            .order_by(col(Metric.key))
        )
    )
    if not metrics:
        return out
    newest = (
        select(col(Measurement.metric_id), sa.func.max(col(Measurement.measured_at)).label("at"))
        .where(col(Measurement.metric_id).in_([m.id for m in metrics]), col(Measurement.voided_at).is_(None))
        .group_by(col(Measurement.metric_id))
        .subquery()
    )
    rows = session.exec(
        select(Measurement)
        .join(
            newest,
            sa.and_(col(Measurement.metric_id) == newest.c.metric_id, col(Measurement.measured_at) == newest.c.at),
        )
        .where(col(Measurement.voided_at).is_(None))
        .order_by(col(Measurement.id))
    ).all()
    latest = {m.metric_id: m for m in rows}
    for m in metrics:
        out[m.pilot_id].append((m, latest.get(m.id or 0)))
    return out


def policies_for(session: Session, pilot_ids: Sequence[int]) -> dict[int, EvalPolicy]:
    return {p.pilot_id: p for p in session.exec(select(EvalPolicy).where(col(EvalPolicy.pilot_id).in_(pilot_ids)))}


def latest_evals_for(session: Session, pilot_ids: Sequence[int], n: int = 2) -> dict[int, list[EvalRun]]:
    ranked = (
        select(
            col(EvalRun.id),
            sa.func.row_number()
            .over(partition_by=col(EvalRun.pilot_id), order_by=(col(EvalRun.run_at).desc(), col(EvalRun.id).desc()))
            .label("rn"),
        )
        .where(col(EvalRun.pilot_id).in_(pilot_ids), col(EvalRun.voided_at).is_(None))
        .subquery()
    )
    rows = session.exec(
        select(EvalRun).join(ranked, col(EvalRun.id) == ranked.c.id).where(ranked.c.rn <= n).order_by(ranked.c.rn)
    ).all()
    out: dict[int, list[EvalRun]] = {i: [] for i in pilot_ids}
    for r in rows:
        out[r.pilot_id].append(r)
    return out


def path_items_for(session: Session, pilot_ids: Sequence[int]) -> dict[int, list[PathItem]]:
    out: dict[int, list[PathItem]] = {i: [] for i in pilot_ids}
    for r in session.exec(select(PathItem).where(col(PathItem.pilot_id).in_(pilot_ids))):
        out[r.pilot_id].append(r)
    return out


def recent_due_checkins_for(
    session: Session, pilot_ids: Sequence[int], now: datetime, grace: timedelta, n: int = 3
) -> dict[int, list[CheckIn]]:
    """The batch form of recent_due_checkins_by_pilot, for the scheduled fan-out."""
    ranked = (
        select(
            col(CheckIn.id),
            sa.func.row_number()
            .over(partition_by=col(CheckIn.pilot_id), order_by=col(CheckIn.due_at).desc())
            .label("rn"),
        )
        .join(Pilot, col(Pilot.id) == col(CheckIn.pilot_id))
        .where(col(CheckIn.pilot_id).in_(pilot_ids), current_owners_decided_checkins(now, now - grace))
        .subquery()
    )
    rows = session.exec(select(CheckIn).join(ranked, col(CheckIn.id) == ranked.c.id).where(ranked.c.rn <= n)).all()
    out: dict[int, list[CheckIn]] = {i: [] for i in pilot_ids}
    for row in rows:
        out[row.pilot_id].append(row)
    return out
