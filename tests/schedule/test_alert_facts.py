"""Alerts store facts, not sentences: a new eval alert's row holds scores, bar and version; an alert
stored before `0003_alert_facts` (with its frozen headline) is migrated and still worded the same."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import select

from bot.clock import FixedClock
from bot.commands import ChannelRef, UserRef
from bot.config import Settings
from bot.core import Core, build_core
from bot.ports import Actor
from bot.replies import Reply, render_text
from bot.schedule.deliver import Delivery
from storage.db import downgrade, make_engine, session_scope, upgrade
from storage.models import Escalation
from tests.schedule.recording import RecordingNotifier

UB = Actor("slack", "UB", "Berta")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OLD_HEADLINE = "`p1` eval dropped 3 pts: 96% → 93% (version v7), bar 90%."
OLD_PAYLOAD = {
    "headline": OLD_HEADLINE,
    "todo": "Look at the failing cases of this run, fix, and re-run: `eval p1 <pct> cases <n>`.",
    "old": 96.0,
    "new": 93.0,
    "bar": 90.0,
    "version": "v7",
    "targets_text": "Pinging @Berta.",
    "delivered": {"slack:user:UB": {"channel": "DUB", "ts": "1.0"}},
}


def test_a_new_alert_stores_facts_and_no_sentence(core: Core) -> None:
    core.services.new_pilot(UB, "p1", None)
    core.services.set_owner(UB, "p1", UserRef("UB", "Berta"))
    core.services.set_escalation(UB, "p1", ChannelRef("CE", "esc"))
    core.services.set_threshold(UB, "p1", 95, 100, None)
    core.services.record_eval(UB, "p1", 96.0, 150, None)
    out = core.services.record_eval(UB, "p1", 91.3, 150, "prompt-v7")
    assert out.lines[-1] == (
        "⚠️ Page: `p1` eval fell below the bar: 96% → 91.3% (version prompt-v7), bar 95%. Pinging @Berta and #esc."
    )
    with session_scope(core.engine) as s:
        row = s.exec(select(Escalation)).one()
    assert row.facts == {
        "old": 96.0,
        "new": 91.3,
        "bar": 95.0,
        "version": "prompt-v7",
        "severity": "page",
        "run_id": out.run_id,  # type: ignore[attr-defined]
    }
    assert row.payload == {} and row.targets == ["slack:user:UB", "slack:channel:CE"]


def _old_database(path: Path) -> sa.Engine:
    """A database at 0002 holding one pilot and one eval alert as the code before 0003 wrote it."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine, "0002_outbox_backoff")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO pilot (id, slug, name, stage, owner_platform, owner_id, owner_name, "
                "escalation_platform, escalation_channel_id, checkin_weekday, checkin_time, checkin_tz, "
                "created_by, created_at, updated_at) VALUES (1, 'p1', 'P1', 'pilot', 'slack', 'UB', 'Berta', "
                "'slack', 'CE', 0, '09:00', 'UTC', 'slack:UB', :at, :at)"
            ),
            {"at": NOW - timedelta(days=30)},
        )
        escalation = sa.table(
            "escalation", *(sa.column(c) for c in ("id", "pilot_id", "kind", "dedupe_key", "created_at", "attempts")),
            sa.column("targets", sa.JSON()), sa.column("payload", sa.JSON()),
        )  # fmt: skip
        conn.execute(
            escalation.insert().values(
                id=1,
                pilot_id=1,
                kind="eval_drop",
                dedupe_key="eval:1",
                targets=["slack:user:UB", "slack:channel:CE"],
                payload=OLD_PAYLOAD,
                created_at=NOW - timedelta(minutes=5),
                attempts=1,
            )
        )
    return engine


def test_an_alert_stored_before_0003_is_migrated_and_worded_the_same(tmp_path: Path, settings: Settings) -> None:
    engine = _old_database(tmp_path / "old.db")
    upgrade(engine)
    with session_scope(engine) as s:
        row = s.exec(select(Escalation)).one()
    assert row.facts == {"old": 96.0, "new": 93.0, "bar": 90.0, "version": "v7"}
    assert row.payload == {"delivered": OLD_PAYLOAD["delivered"]}  # the DM went out before: kept

    clock = FixedClock(NOW)
    core = build_core(settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'old.db'}"}), clock, engine)
    slack = RecordingNotifier("slack", clock)
    asyncio.run(Delivery(core.engine, core.settings, clock, {"slack": slack}).tick())
    [alert] = [m for m in slack.sent if m.dest == "CE"]
    assert alert.reply.text == OLD_HEADLINE  # worded from the facts at send time, as it was frozen
    assert alert.reply.lines[-1:] == (OLD_PAYLOAD["todo"],)
    assert render_text(Reply(text="", lines=alert.reply.lines[:1])) == "Pinging @Berta."  # the channel pings the owner
    assert not [m for m in slack.sent if m.dest == "UB" and "eval" in m.reply.text]  # not repeated to the owner

    downgrade(engine, "0002_outbox_backoff")
    with engine.connect() as conn:
        payload = conn.execute(sa.text("SELECT payload FROM escalation")).scalar()
    assert '"new": 93.0' in payload and '"delivered"' in payload  # the facts are back where 0002 reads them
