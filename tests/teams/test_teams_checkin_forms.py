"""The Teams check-in form at the boundary: Activity JSON into /api/messages, cards out through the
fake connector. Long forms are paged within Teams' message limit, every metric can be answered, a
card submitted twice records once, and cards without the form can open it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from adapters.teams.render import TEAMS_MESSAGE_LIMIT, render_card
from bot.core import Core
from bot.ports import Actor
from bot.schedule.messages import reminder_reply
from storage.db import session_scope
from storage.models import EvalRun, Measurement
from tests.teams import payloads as p
from tests.teams.fake_connector import Call, FakeConnector

DANA_ACTOR = Actor("teams", "aad-dana", "Dana Ops")
SCHEMA = json.loads(Path("/work/shared/schemas/adaptive-card.1.5.0.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)


def long_key(i: int) -> str:
    """64 characters, the longest metric key there is."""
    return (f"m{i:02d}_" + "weekly_handle_time_of_the_escalated_support_tickets_in_the_eu_region")[:64]


async def post(client: TestClient, activity: dict[str, Any]) -> None:
    resp = await client.post("/api/messages", json=activity)
    assert resp.status in (200, 201)


def inputs(call: Call) -> list[dict[str, Any]]:
    return [b for b in call.card["body"] if str(b.get("type", "")).startswith("Input.")]


def check_card(call: Call) -> None:
    """What went to Teams: within the limit as serialized, and a valid Adaptive Card 1.5."""
    assert len(json.dumps(call.body).encode()) <= TEAMS_MESSAGE_LIMIT
    plain = {k: v for k, v in call.card.items() if k != "msteams"}  # Teams' host extension, not in the schema
    errors = [f"{list(e.absolute_path)}: {e.message[:300]}" for e in VALIDATOR.iter_errors(plain)]
    assert not errors, errors


def seed(core: Core, keys: list[str]) -> None:
    for text in ("new support-drafts Support drafts", "owner support-drafts <@aad-dana|Dana Ops>"):
        assert core.router.handle(text, DANA_ACTOR).ok, text
    for key in keys:
        assert core.router.handle(f"baseline support-drafts {key} 14 minutes lower", DANA_ACTOR).ok, key
        assert core.router.handle(f"measure support-drafts {key} 12.25", DANA_ACTOR).ok, key  # a "last:" hint


async def test_a_60_metric_checkin_is_paged_within_the_limit_and_every_metric_is_answered(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    keys = [long_key(i) for i in range(58)] + ["eval_score", "triage"]  # names the form's own fields had
    seed(teams_core, keys)
    await post(client, p.card_submit(connector.url, {"action": "checkin_open", "slug": "support-drafts"}))
    pages, answered = 0, set()
    while True:
        call = connector.sent()[-1]
        check_card(call)
        pages += 1
        page_inputs = inputs(call)
        values = {}
        for item in page_inputs:
            key = item["id"].removeprefix("field:")
            if item["type"] == "Input.Number":
                values[item["id"]] = "" if key == "pb.eval_score" else str(10 + len(answered))
                if not key.startswith("pb."):
                    answered.add(key)
            else:
                values[item["id"]] = "quiet week"
        [submit] = [a for a in call.card["actions"] if a["data"].get("action") in ("checkin_next", "checkin_submit")]
        await post(client, p.card_submit(connector.url, {**submit["data"], **values}))
        if submit["data"]["action"] == "checkin_submit":
            break
        assert pages < 20
    assert pages >= 2  # 60 long metrics do not fit one card
    assert answered == set(keys)
    done = connector.sent()[-1]
    assert "recorded 60 metric value(s)" in done.card_text
    report = teams_core.services.pilot_report("support-drafts")
    latest = {m.key: m.latest for m in report.metrics}
    assert all(latest[k] is not None for k in keys)
    assert latest["eval_score"] is not None and latest["triage"] is not None
    with session_scope(teams_core.engine) as s:
        assert s.exec(select(EvalRun)).all() == []  # the eval score field was left empty


async def test_the_same_card_submitted_twice_records_once(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    seed(teams_core, ["handle_time", "revision_rate"])
    value = {
        "action": "checkin_submit",
        "slug": "support-drafts",
        "field:handle_time": "9",
        "field:revision_rate": "21",
        "field:pb.eval_score": "96",
    }
    activity = p.card_submit(connector.url, value)
    await post(client, activity)
    await post(client, {**activity, "id": activity["id"] + "-again"})  # a double click: a second activity
    first, second = connector.sent()[-2:]
    assert "recorded 2 metric value(s)" in first.card_text
    assert "Already recorded" in second.card_text
    with session_scope(teams_core.engine) as s:
        assert len(s.exec(select(Measurement).where(Measurement.source == "checkin")).all()) == 2
        assert len(s.exec(select(EvalRun)).all()) == 1
    changed = p.card_submit(connector.url, {**value, "field:handle_time": "8"})
    await post(client, changed)
    assert "replaces the answer you gave" in connector.sent()[-1].card_text.replace("\\", "")
    with session_scope(teams_core.engine) as s:
        rows = s.exec(select(Measurement).where(Measurement.source == "checkin"))
        live = sorted(m.value for m in rows if m.voided_at is None)
        assert live == [8.0, 21.0]
        voided = s.exec(select(Measurement).where(col(Measurement.voided_at).is_not(None)))
        assert sorted(m.value for m in voided) == [9.0, 21.0]  # the first answer: void, never deleted
        runs = s.exec(select(EvalRun).order_by(col(EvalRun.id))).all()
        assert [r.voided_at is not None for r in runs] == [True, False]  # the first answer's run: void


async def test_reminder_card_can_open_the_form(client: TestClient, connector: FakeConnector, teams_core: Core) -> None:
    from datetime import UTC, datetime

    seed(teams_core, ["handle_time"])
    card = render_card(
        reminder_reply("Dana", "support-drafts", "2026-W48", datetime(2026, 11, 23, 9, tzinfo=UTC), "UTC")
    )
    [action] = [a for a in card["actions"] if a["data"].get("action") == "checkin_open"]
    assert action["title"] == "Report this week's numbers"
    await post(client, p.card_submit(connector.url, action["data"]))
    call = connector.sent()[-1]
    check_card(call)
    assert [i["id"] for i in inputs(call)] == ["field:handle_time", "field:pb.eval_score", "field:pb.triage"]
