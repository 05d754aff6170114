"""The demo portfolio of SPEC §7, loaded through the real services with a moving clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from bot.clock import Clock, FixedClock, SystemClock
from bot.commands import ChannelRef, UserRef
from bot.config import Settings
from bot.ports import Actor
from bot.schedule.verdicts import backfill as judge_all
from bot.schedule.verdicts import count_written
from bot.scorecard import rescore_slugs
from bot.services import Services
from storage import counters, repo
from storage.db import session_scope
from storage.models import CheckIn

DEMO_SLUGS = ("support-drafts", "legal-intake", "doc-summaries")
CREATOR = Actor("console", "pilotbot-demo", "pilotbot demo")


def _monday_9(t: datetime) -> datetime:
    start = (t - timedelta(days=t.weekday())).replace(hour=9, minute=0, second=0, microsecond=0)
    return start


def load_demo(engine: Engine, settings: Settings, clock: Clock | None = None) -> list[str]:
    """Creates whichever demo pilots are missing; returns their slugs. Running it twice changes nothing."""
    now = (clock or SystemClock()).now()
    with session_scope(engine) as s:
        missing = [slug for slug in DEMO_SLUGS if repo.pilot_by_slug(s, slug) is None]
    week = timedelta(weeks=1)
    t = FixedClock(now - 12 * week)
    svc = Services(engine, settings, t)
    builders = {"support-drafts": _support, "legal-intake": _legal, "doc-summaries": _docs}
    for slug in missing:
        t.set(now - 12 * week)
        builders[slug](svc, t, now)
    rescore_slugs(engine, missing, now, svc.grace)  # the demo writes check-in history directly
    judge_all(engine, now, svc.grace)
    return missing


def _at(clock: FixedClock, when: datetime) -> None:
    clock.set(when)


def _checkins(svc: Services, slug: str, now: datetime, weeks: int, missed: set[int]) -> None:
    """Weekly check-in history: `missed` holds the weeks-ago numbers that went unanswered."""
    this_monday = _monday_9(now)
    answers: list[tuple[datetime, datetime]] = []
    with session_scope(svc.engine) as s:
        pilot = repo.pilot_by_slug(s, slug)
        assert pilot is not None and pilot.id is not None
        hh, mm = (int(x) for x in pilot.checkin_time.split(":"))
        first = this_monday.replace(hour=hh, minute=mm) + timedelta(days=pilot.checkin_weekday)
        for ago in range(weeks, 0, -1):
            due = first - timedelta(weeks=ago)
            iso = due.isocalendar()
            answered = None if ago in missed else due + timedelta(hours=3)
            if answered is not None:
                answers.append((due, answered))
            s.add(
                CheckIn(
                    pilot_id=pilot.id,
                    period=f"{iso.year}-W{iso.week:02d}",
                    owner_ref=f"{pilot.owner_platform}:{pilot.owner_id}",
                    due_at=due,
                    claimed_at=due,
                    sent_at=due,
                    reminded_at=due + timedelta(hours=24) if answered is None else None,
                    answered_at=answered,
                    escalated_at=due + timedelta(hours=48) if answered is None else None,
                    report={"source": "demo"} if answered else None,
                )
            )
        # Written directly, so counted here as the delivery and the answers would; the unanswered
        # ones' verdicts are the tick's (`judge_all` in `load_demo`).
        counters.bump(s, {counters.CHECKINS_SENT: weeks, counters.CHECKINS_ANSWERED: len(answers)})
        count_written(s, answers, now, svc.grace)
        s.commit()


def _register(svc: Services, slug: str, name: str, owner_id: str, owner_name: str) -> Actor:
    """Registers the pilot as the demo's creator and hands it to its owner, who acts from then on."""
    svc.new_pilot(CREATOR, slug, name)
    svc.set_owner(CREATOR, slug, UserRef(owner_id, owner_name))
    return Actor("console", owner_id, owner_name)


def _baselines_then_golive(
    svc: Services,
    t: FixedClock,
    who: Actor,
    slug: str,
    golive: datetime,
    before: timedelta,
    baselines: list[tuple[str, float, str]],
) -> datetime:
    """Lower-is-better baselines measured `before` go-live, then the go-live itself."""
    _at(t, golive - before)
    for key, value, unit in baselines:
        svc.set_baseline(who, slug, key, value, unit, "lower", (golive - before).date())
    _at(t, golive)
    svc.set_go_live(who, slug, golive.date())
    return golive


def _support(svc: Services, t: FixedClock, now: datetime) -> None:
    slug, week = "support-drafts", timedelta(weeks=1)
    dana = _register(svc, slug, "Support reply drafts", "dana", "Dana Whitfield")
    baselines = [("handle_time", 14.0, "min"), ("revision_rate", 38.0, "%")]
    golive = _baselines_then_golive(svc, t, dana, slug, now - 8 * week, 2 * week, baselines)
    svc.set_escalation(dana, slug, ChannelRef("support-ai", "support-ai"))
    svc.set_threshold(dana, slug, 90, 100, None)
    handle = [13.1, 12.4, 11.8, 11.0, 10.3, 9.8, 9.4, 9.0]
    revision = [35, 33, 30, 28, 26, 24, 22, 21]
    for i in range(8):
        _at(t, golive + (i + 1) * week - timedelta(days=1))
        svc.record_measurement(dana, slug, "handle_time", handle[i], None)
        svc.record_measurement(dana, slug, "revision_rate", revision[i], None)
        if i in (1, 4, 7):
            svc.record_eval(dana, slug, {1: 88.0, 4: 91.5, 7: 93.4}[i], 120, f"prompt-v{i + 2}")
    for item in ("integration", "monitoring", "rollback"):
        svc.set_path(dana, slug, item, "done", None)
    svc.set_path(dana, slug, "human-review", "done", "agents edit every draft before sending")
    _at(t, now)
    svc.set_cadence(dana, slug, 0, "09:00", None)
    _checkins(svc, slug, now, 8, missed=set())
    # SPEC §8: shipped through the gate (four gaps closed, measured after go-live, reviews answered),
    # so the demo shows a pilot in production with its audit trail and ROI announcement.
    svc.ship(dana, slug)


def _legal(svc: Services, t: FixedClock, now: datetime) -> None:
    slug, week = "legal-intake", timedelta(weeks=1)
    li = _register(svc, slug, "Legal intake extraction", "li", "Li Wei")
    golive = now - 6 * week
    _at(t, golive)
    svc.set_go_live(li, slug, golive.date())
    svc.set_escalation(li, slug, ChannelRef("legal-ops", "legal-ops"))
    svc.set_threshold(li, slug, 95, 150, None)
    svc.set_path(li, slug, "integration", "done", "intake form writes to the matter system")
    svc.set_path(li, slug, "human-review", "done", "low-confidence extractions go to a paralegal")
    # The before-state was reconstructed from old tickets after the AI was already on.
    _at(t, golive + 2 * week)
    svc.set_baseline(li, slug, "intake_minutes", 25, "min", "lower", (golive + 2 * week).date())
    _at(t, golive + 3 * week)
    svc.record_eval(li, slug, 96.0, 150, "extractor-v3")
    svc.record_measurement(li, slug, "intake_minutes", 11, None)
    _at(t, now - timedelta(days=2))
    svc.record_eval(li, slug, 91.3, 150, "extractor-v4")
    svc.record_measurement(li, slug, "intake_minutes", 9, None)
    _at(t, now)
    svc.set_cadence(li, slug, 2, "10:00", None)
    _checkins(svc, slug, now, 6, missed={1})


def _docs(svc: Services, t: FixedClock, now: datetime) -> None:
    slug, week = "doc-summaries", timedelta(weeks=1)
    sam = _register(svc, slug, "Inbound document summaries", "sam", "Sam Okafor")
    golive = _baselines_then_golive(
        svc, t, sam, slug, now - 7 * week, 3 * week, [("summary_minutes", 30.0, "min"), ("human_routing", 100.0, "%")]
    )
    svc.set_threshold(sam, slug, 90, 100, None)
    notes = {
        "data-plumbing": "moved from a notebook into the document queue",
        "integration": "summaries appear on the document in the queue",
        "monitoring": "confidence and latency dashboards",
        "rollback": "feature flag back to manual summaries",
        "human-review": "confidence below 0.8 routes to a human",
        "audit-log": "every summary and its reviewer logged",
        "kill-switch": "one flag stops all AI summaries",
    }
    for item, note in notes.items():
        svc.set_path(sam, slug, item, "done", note)
    _at(t, golive + 3 * week)
    svc.record_measurement(sam, slug, "summary_minutes", 6, None)
    svc.record_measurement(sam, slug, "human_routing", 18, None)
    svc.record_eval(sam, slug, 96.5, 60, "summarizer-v2")
    _at(t, now)
    svc.set_cadence(sam, slug, 0, "09:00", None)
    _checkins(svc, slug, now, 7, missed={1, 2})
