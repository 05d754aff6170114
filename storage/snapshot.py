"""One pilot's records for its gap report, read with prebuilt Core statements.

`status <slug>` is the hottest path of every surface. The ORM spends most of a call building
queries and identity-mapping objects; these statements are built once at import, return plain
rows (attribute access by column name, like the models), and are nine whatever the history length.
Void records (SPEC §8 corrections) are left out of every statement: a report reads as if they had
never been made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables)
from storage.models import EscalationKind
from storage.outbox import MAX_ATTEMPTS
from storage.repo import current_owners_decided_checkins

_t = SQLModel.metadata.tables
pilot_t, metric_t, measurement_t = _t["pilot"], _t["metric"], _t["measurement"]
policy_t, eval_t, path_t, checkin_t = _t["eval_policy"], _t["eval_run"], _t["path_item"], _t["check_in"]
escalation_t = _t["escalation"]

_pilot_q = (
    sa.select(pilot_t, policy_t.c.threshold, policy_t.c.min_cases, policy_t.c.drop_alert)
    .select_from(pilot_t.outerjoin(policy_t, policy_t.c.pilot_id == pilot_t.c.id))
    .where(pilot_t.c.slug == sa.bindparam("slug"))
)

_m = measurement_t.alias("m")
_latest_measurement = (
    sa.select(_m.c.id)
    .where(_m.c.metric_id == metric_t.c.id, _m.c.voided_at.is_(None))
    .order_by(_m.c.measured_at.desc(), _m.c.id.desc())
    .limit(1)
    .correlate(metric_t)
    .scalar_subquery()
)
_metrics_q = (
    sa.select(
        metric_t.c.id,
        metric_t.c.key,
        metric_t.c.unit,
        metric_t.c.direction,
        metric_t.c.baseline,
        metric_t.c.baseline_at,
        measurement_t.c.value.label("latest"),
        measurement_t.c.measured_at.label("latest_at"),
    )
    .select_from(metric_t.outerjoin(measurement_t, measurement_t.c.id == _latest_measurement))
    .where(metric_t.c.pilot_id == sa.bindparam("pid"), metric_t.c.voided_at.is_(None))
    .order_by(metric_t.c.key)
)
_evals_q = (
    sa.select(eval_t)
    .where(eval_t.c.pilot_id == sa.bindparam("pid"), eval_t.c.voided_at.is_(None))
    .order_by(eval_t.c.run_at.desc(), eval_t.c.id.desc())
    .limit(2)
)
_path_q = sa.select(path_t).where(path_t.c.pilot_id == sa.bindparam("pid"))
# The owner gap looks at the newest *decided* check-ins of the current ownership; filtering here
# keeps three rows enough whatever the grace period.
_checkins_q = (
    sa.select(checkin_t.c.due_at, checkin_t.c.answered_at)
    .select_from(checkin_t.join(pilot_t, pilot_t.c.id == checkin_t.c.pilot_id))
    .where(
        checkin_t.c.pilot_id == sa.bindparam("pid"),
        current_owners_decided_checkins(sa.bindparam("now"), sa.bindparam("decided_before")),
    )
    .order_by(checkin_t.c.due_at.desc())
    .limit(3)
)

# The ship gate (SPEC §8): each live metric's newest live measurement time (one after go-live is
# what the gate asks, and the newest decides it), and the check-ins the current owner answered.
_measured_q = (
    sa.select(measurement_t.c.metric_id, sa.func.max(measurement_t.c.measured_at).label("at"))
    .select_from(measurement_t.join(metric_t, metric_t.c.id == measurement_t.c.metric_id))
    .where(
        metric_t.c.pilot_id == sa.bindparam("pid"),
        metric_t.c.voided_at.is_(None),
        measurement_t.c.voided_at.is_(None),
    )
    .group_by(measurement_t.c.metric_id)
)
_answered_q = (
    sa.select(sa.func.count())
    .select_from(checkin_t.join(pilot_t, pilot_t.c.id == checkin_t.c.pilot_id))
    .where(
        checkin_t.c.pilot_id == sa.bindparam("pid"),
        checkin_t.c.answered_at.is_not(None),
        checkin_t.c.owner_ref == pilot_t.c.owner_platform + ":" + pilot_t.c.owner_id,
        sa.or_(pilot_t.c.owner_since.is_(None), checkin_t.c.due_at >= pilot_t.c.owner_since),
    )
)

# Scheduled messages that failed for good (SPEC §5: visible in `status`); normally none.
_undeliverable_q = sa.union_all(
    *(
        sa.select(t.c.last_error).where(
            t.c.pilot_id == sa.bindparam("pid"), t.c.sent_at.is_(None), t.c.attempts >= MAX_ATTEMPTS
        )
        for t in (checkin_t, escalation_t)
    )
)

# The pilot's latest escalation-channel episode (bot/schedule/channels.py decides whether it is open).
_channel_episode_q = (
    sa.select(escalation_t.c.facts)
    .where(
        escalation_t.c.pilot_id == sa.bindparam("pid"),
        escalation_t.c.kind == EscalationKind.channel_unreachable.value,
    )
    .order_by(escalation_t.c.id.desc())
    .limit(1)
)


@dataclass(frozen=True)
class Snapshot:
    pilot: Row[Any]  # every pilot column, plus threshold/min_cases/drop_alert (None without a policy)
    metrics: list[Row[Any]]
    evals: list[Row[Any]]  # newest first, at most two
    path: list[Row[Any]]
    checkins: list[Row[Any]]  # due at or before now, newest first, at most three
    undeliverable: list[str | None]  # last errors of messages given up on
    measured: dict[int, datetime] = field(default_factory=dict)  # metric id -> newest live measurement
    owner_answered: int = 0  # check-ins the current owner answered
    channel_episode: dict[str, Any] | None = None  # facts of the latest channel-unreachable episode


def load(conn: Connection, slug: str, now: datetime, grace: timedelta) -> Snapshot | None:
    pilot = conn.execute(_pilot_q, {"slug": slug}).first()
    if pilot is None:
        return None
    pid = {"pid": pilot.id}
    return Snapshot(
        pilot=pilot,
        metrics=list(conn.execute(_metrics_q, pid)),
        evals=list(conn.execute(_evals_q, pid)),
        path=list(conn.execute(_path_q, pid)),
        checkins=list(conn.execute(_checkins_q, {**pid, "now": now, "decided_before": now - grace})),
        undeliverable=list(conn.execute(_undeliverable_q, pid).scalars()),
        measured={r.metric_id: r.at for r in conn.execute(_measured_q, pid)},
        owner_answered=int(conn.execute(_answered_q, pid).scalar_one()),
        channel_episode=conn.execute(_channel_episode_q, pid).scalar(),
    )
