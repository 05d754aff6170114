"""SPEC §8 over REST: ship through the gate (refusal lists every condition), the void routes, the
stage in `GET /api/v1/pilots/{slug}`, read-only tokens refused."""

from __future__ import annotations

from bot.ports import Actor
from tests.api.conftest import ANA, Api
from tests.api.test_routes import SUPPORT, call

ROOT = Actor("console", "root", "Root")


def _chat(api: Api, text: str, actor: Actor = ANA) -> None:
    reply = api.core.router.handle(text, actor)
    assert reply.ok, reply.text


def _ready(api: Api) -> None:
    """support-drafts (seeded with a baseline) with its other gaps closed and the gate met."""
    for cmd in (
        "golive support-drafts 2026-11-01",
        "threshold support-drafts 90 min-cases 100",
        "eval support-drafts 94% cases 120",
        "eval support-drafts 95% cases 150",
        "path support-drafts integration done",
        "path support-drafts monitoring done",
        "path support-drafts rollback done",
    ):
        _chat(api, cmd)


async def test_ship_refused_then_shipped_and_stage_is_production(api: Api) -> None:
    _ready(api)
    status, doc = await call(api, "POST", SUPPORT + "/ship", api.admin)
    assert status == 422
    assert "handle_time has no measurement after go-live 2026-11-01" in doc["error"]
    assert "the current owner has not answered a weekly check-in yet" in doc["error"]
    status, doc = await call(api, "GET", SUPPORT, api.admin)
    assert doc["stage"] == "pilot" and doc["gate"]["met"] is False
    assert [u["code"] for u in doc["gate"]["unmet"]] == ["not_measured", "no_checkin_answered"]

    api.core.services.answer_checkin(ANA, "support-drafts", {"handle_time": "9"})
    status, doc = await call(api, "GET", SUPPORT, api.admin)
    assert doc["gate"] == {"met": True, "unmet": []}

    status, doc = await call(api, "POST", SUPPORT + "/ship", api.admin, json={"override": 5})
    assert status == 422 and "`override` must be a string" in doc["error"]
    status, doc = await call(api, "POST", SUPPORT + "/ship", api.admin)
    assert status == 200 and doc["stage"] == "production"
    assert "ROI: handle_time 14 → 9 min (−36%, better)." in doc["lines"]
    status, doc = await call(api, "GET", SUPPORT, api.admin)
    assert doc["stage"] == "production" and doc["override"] is None
    status, doc = await call(api, "GET", "/api/v1/pilots", api.admin)
    assert doc["summary"] == "1 of 2 pilots ready to ship (50%) · 1 in production"


async def test_ship_override_over_rest_is_kept(api: Api) -> None:
    status, doc = await call(api, "POST", SUPPORT + "/ship", api.admin, json={"override": "exec demo"})
    assert status == 200 and doc["stage"] == "production"
    status, doc = await call(api, "GET", SUPPORT, api.admin)
    assert doc["override"]["reason"] == "exec demo" and doc["override"]["by"] == "api:ci-all"
    assert "go-live is not set" in doc["override"]["unmet"]


async def test_read_only_token_cannot_ship_or_void(api: Api) -> None:
    token, _ = api.tokens.create("dash", read_only=True)
    for path in (SUPPORT + "/ship", SUPPORT + "/metrics/handle_time/void", SUPPORT + "/evals/latest/void"):
        status, doc = await call(api, "POST", path, token)
        assert status == 403 and "read-only" in doc["error"]


async def test_void_routes_change_the_report_as_if_never_made(api: Api) -> None:
    _ready(api)
    status, before = await call(api, "GET", SUPPORT, api.admin)
    assert before["latest_eval"]["score"] == 95
    status, doc = await call(api, "POST", SUPPORT + "/evals/latest/void", api.admin, json={"reason": "wrong set"})
    assert status == 200 and "the latest is now 94% on 120 cases" in doc["message"]
    status, after = await call(api, "GET", SUPPORT, api.admin)
    assert after["latest_eval"]["score"] == 94 and after["latest_eval"]["cases"] == 120

    _chat(api, "measure support-drafts handle_time 250")
    status, doc = await call(api, "GET", SUPPORT, api.admin)
    assert doc["metrics"][0]["latest"] == 250
    status, doc = await call(api, "POST", SUPPORT + "/metrics/handle_time/measurements/latest/void", api.admin)
    assert status == 200 and "no measurement is left" in doc["message"]
    status, doc = await call(api, "GET", SUPPORT, api.admin)
    assert doc["metrics"][0]["latest"] is None
    status, doc = await call(api, "POST", SUPPORT + "/metrics/handle_time/measurements/latest/void", api.admin)
    assert status == 422 and "no measurement to withdraw" in doc["error"]

    status, doc = await call(api, "POST", SUPPORT + "/metrics/handle_time/void", api.admin, json={"why": 1})
    assert status == 422 and "Unexpected field `why`" in doc["error"]
    status, doc = await call(api, "POST", SUPPORT + "/metrics/handle_time/void", api.admin)
    assert status == 200
    status, doc = await call(api, "GET", SUPPORT, api.admin)
    assert doc["metrics"] == [] and doc["gaps"][0]["state"] == "open"
    status, doc = await call(api, "POST", SUPPORT + "/metrics/nope/void", api.admin)
    assert status == 422 and "has no metric `nope`" in doc["error"]


