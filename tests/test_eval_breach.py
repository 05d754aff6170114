"""One alert per breach under concurrency, on SQLite and PostgreSQL; the lowered bar is announced
and audited (SPEC §10)."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

from sqlmodel import select

from bot.clock import FixedClock
from bot.commands import ChannelRef, UserRef
from bot.core import Core
from bot.ports import Actor
from bot.replies import render_text
from bot.schedule.deliver import Delivery
from storage.db import session_scope
from storage.models import AuditEvent, Escalation, EvalRun
from tests.schedule.recording import RecordingNotifier

UB = Actor("slack", "UB", "Berta")
CI = Actor("api", "ci", "ci")


def _pilot(core: Core) -> None:
    s = core.services
    s.new_pilot(UB, "legal-intake", None)
    s.set_owner(UB, "legal-intake", UserRef("UB", "Berta"))
    s.set_escalation(UB, "legal-intake", ChannelRef("CE", "esc"))


def _escalations(core: Core) -> list[Escalation]:
    with session_scope(core.engine) as s:
        return list(s.exec(select(Escalation).order_by(Escalation.id)).all())  # type: ignore[arg-type]


def _concurrently(core: Core, scores: list[float]) -> list[BaseException]:
    barrier = threading.Barrier(len(scores))
    errors: list[BaseException] = []

    def one(score: float) -> None:
        barrier.wait()
        try:
            core.services.record_eval(CI, "legal-intake", score, 150, None)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(sc,)) for sc in scores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_ten_runs_below_the_bar_at_the_same_moment_page_once_and_one_recovery(core: Core, clock: FixedClock) -> None:
    _pilot(core)
    core.services.set_threshold(UB, "legal-intake", 90, 100, 2)
    core.services.record_eval(UB, "legal-intake", 93, 150, None)
    clock.advance(timedelta(hours=1))
    assert _concurrently(core, [85.0 + i / 10 for i in range(10)]) == []
    clock.advance(timedelta(hours=1))
    assert _concurrently(core, [95.0 + i / 10 for i in range(10)]) == []
    with session_scope(core.engine) as s:
        assert len(s.exec(select(EvalRun)).all()) == 21  # every run recorded
    assert [e.kind for e in _escalations(core)] == ["eval_below_bar", "eval_recovered"]


def test_lowering_the_bar_is_announced_to_owner_and_channel_and_audited(core: Core, clock: FixedClock) -> None:
    _pilot(core)
    core.services.set_threshold(UB, "legal-intake", 95, 150, None)
    out = core.services.set_threshold(UB, "legal-intake", 97, 150, None)  # raised: nothing to announce
    assert out.alerts == []
    out = core.services.set_threshold(UB, "legal-intake", 90, 100, None)
    assert "Announced to the owner and the escalation channel" in " ".join(out.lines)
    (row,) = _escalations(core)
    assert row.kind == "bar_lowered" and row.targets == ["slack:user:UB", "slack:channel:CE"]
    assert row.facts == {
        "threshold": [97.0, 90.0],
        "min_cases": [150, 100],
        "by": {"platform": "slack", "id": "UB", "name": "Berta"},
    }
    with session_scope(core.engine) as s:
        audit = s.exec(select(AuditEvent).where(AuditEvent.action == "threshold")).all()[-1]
    assert audit.actor == "slack:UB"
    assert (audit.before or {})["threshold"] == 97 and (audit.after or {})["threshold"] == 90
    slack = RecordingNotifier("slack", clock)
    asyncio.run(Delivery(core.engine, core.settings, clock, {"slack": slack}).tick())
    texts = sorted((m.dest, render_text(m.reply).splitlines()[0]) for m in slack.sent)
    said = "bar of legal-intake lowered from 97% to 90% and min-cases of legal-intake lowered from 150 to 100 by @Berta"
    assert texts == [("CE", said), ("UB", said)]
