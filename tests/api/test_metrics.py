from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.metrics import get_metrics, is_loopback, metrics_allowed
from bot.clock import FixedClock
from bot.schedule.deliver import Delivery
from tests.api.conftest import ANA, Api
from tests.schedule.recording import RecordingNotifier

LEGAL = "/api/v1/pilots/legal-intake"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_expose_counters_after_traffic(api_any_db: Api, clock: FixedClock) -> None:
    api = api_any_db
    h = api.auth(api.admin)
    assert (await api.client.get(LEGAL, headers=h)).status == 200
    assert (await api.client.post(LEGAL + "/evals", headers=h, json={"score": 90, "cases": 150})).status == 201
    assert (await api.client.get(LEGAL)).status == 401
    # A chat command goes through the metered router that /metrics installed.
    assert api.core.router.handle("status", ANA).ok
    assert not api.core.router.handle("frobnicate", ANA).ok
    # The scheduler's real events: both of Ana's check-ins go out (one after a failed send), she
    # answers one in time, the other passes its grace unanswered (missed, and its review is sent).
    console = RecordingNotifier("console", clock)
    delivery = Delivery(api.core.engine, api.core.settings, clock, {"console": console})  # type: ignore[dict-item]
    clock.set(datetime(2026, 12, 7, 9, 30, tzinfo=UTC))  # Monday after the owners were set: due
    console.fail_next = 1
    await delivery.tick()
    first = await scrape(api)
    assert first[("pilotbot_checkins_total", (("event", "sent"),))] == 1
    assert first[("pilotbot_deliveries_pending_retry", ())] == 1
    clock.advance(timedelta(minutes=5))
    await delivery.tick()
    form = api.core.services.checkin_form("legal-intake")
    api.core.services.answer_checkin(ANA, "legal-intake", {f.key: "1" for f in form.fields if not f.optional})
    clock.advance(api.core.services.grace + timedelta(hours=1))
    await delivery.tick()
    metrics = get_metrics(api.client.app)
    assert metrics is not None
    metrics.delivery_failed("slack")

    got = await scrape(api)
    assert got[("pilotbot_commands_total", (("outcome", "ok"), ("surface", "api")))] == 2
    assert got[("pilotbot_commands_total", (("outcome", "refused"), ("surface", "api")))] == 1
    assert got[("pilotbot_commands_total", (("outcome", "ok"), ("surface", "console")))] == 1
    assert got[("pilotbot_commands_total", (("outcome", "refused"), ("surface", "console")))] == 1
    assert got[("pilotbot_command_seconds_count", (("surface", "api"),))] == 3
    assert got[("pilotbot_checkins_total", (("event", "sent"),))] == 2
    assert got[("pilotbot_checkins_total", (("event", "answered"),))] == 1
    assert got[("pilotbot_checkins_total", (("event", "on_time"),))] == 1
    assert got[("pilotbot_checkins_total", (("event", "missed"),))] == 1
    assert got[("pilotbot_escalations_sent_total", (("kind", "eval_below_bar"),))] == 1
    assert got[("pilotbot_escalations_sent_total", (("kind", "checkin_missed"),))] == 1
    assert got[("pilotbot_deliveries_pending_retry", ())] == 0
    assert got[("pilotbot_delivery_failures_total", (("platform", "slack"),))] == 1
    assert got[("pilotbot_pilots", (("gap", "quality"), ("state", "open")))] == 2
    assert got[("pilotbot_pilots_ready", ())] == 0
    # Counters never go down: the same scrape later, with nothing new, says the same.
    clock.advance(timedelta(days=1))
    await delivery.tick()
    later = await scrape(api)
    assert {k: v for k, v in later.items() if k[0] == "pilotbot_checkins_total"} == {
        k: v for k, v in got.items() if k[0] == "pilotbot_checkins_total"
    }


async def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await api.client.get("/metrics")  # the test client connects from loopback
    assert r.status == 200 and r.content_type == "text/plain"
    return samples(await r.text())


def test_metrics_access_rule(api: Api) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.8.9.10")
    assert not is_loopback("10.0.0.5") and not is_loopback(None) and not is_loopback("garbage")
    assert metrics_allowed("127.0.0.1", None, api.tokens)
    assert not metrics_allowed("203.0.113.9", None, api.tokens)
    assert not metrics_allowed("203.0.113.9", "Bearer wrong", api.tokens)
    assert metrics_allowed("203.0.113.9", f"Bearer {api.admin}", api.tokens)
    assert not metrics_allowed("203.0.113.9", f"Bearer {api.legal}", api.tokens)  # pilot-scoped: 403
    api.tokens.revoke("ci-all")
    assert not metrics_allowed("203.0.113.9", f"Bearer {api.admin}", api.tokens)


async def test_remote_client_without_token_is_refused(api: Api) -> None:
    from aiohttp.test_utils import make_mocked_request

    from adapters.metrics import metrics_handler

    req = make_mocked_request("GET", "/metrics", app=api.client.app)
    # make_mocked_request has no peer: request.remote is None, i.e. not loopback.
    assert req.remote is None
    resp = await metrics_handler(req)
    assert resp.status == 401
    req = make_mocked_request("GET", "/metrics", app=api.client.app, headers=api.auth(api.admin))
    assert (await metrics_handler(req)).status == 200
    req = make_mocked_request("GET", "/metrics", app=api.client.app, headers=api.auth(api.legal))
    resp = await metrics_handler(req)
    assert resp.status == 403 and b"without --pilot" in resp.body  # type: ignore[operator]


def test_each_app_has_its_own_registry(api: Api) -> None:
    from adapters.server import build_web_app

    other = build_web_app(api.core)
    a, b = get_metrics(api.client.app), get_metrics(other)
    assert a is not None and b is not None and a.registry is not b.registry


async def test_concurrent_scrapes_share_a_render_and_none_misses_an_earlier_write(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight scrapes arriving while a render is in progress share the next one, and each of them
    sees the failure counted before it was sent; the scrape whose render was in progress does not."""
    import adapters.metrics as metrics_module

    metrics = get_metrics(api.client.app)
    assert metrics is not None
    real_render, renders = metrics.exposition, []
    held, started = threading.Event(), threading.Event()

    def render() -> bytes:  # the first render has read everything, then is slow to finish
        renders.append(1)
        body = real_render()
        started.set()
        if len(renders) == 1:
            held.wait(10)
        return body

    real_access, checked = metrics_module.metrics_access, []

    def access(*args: Any) -> int:
        checked.append(1)
        return real_access(*args)

    monkeypatch.setattr(metrics, "exposition", render)
    monkeypatch.setattr(metrics_module, "metrics_access", access)
    failures = ("pilotbot_delivery_failures_total", (("platform", "slack"),))
    first = asyncio.ensure_future(scrape(api))
    assert await asyncio.to_thread(started.wait, 10)
    metrics.delivery_failed("slack")  # counted after the first render began, before the others are sent
    late = [asyncio.ensure_future(scrape(api)) for _ in range(8)]
    for _ in range(500):  # until every late scrape has passed its access check and waits for a render
        if len(checked) == 9:
            break
        await asyncio.sleep(0.01)
    for _ in range(20):
        await asyncio.sleep(0)
    held.set()
    assert (await first).get(failures, 0) == 0
    assert [s[failures] for s in await asyncio.gather(*late)] == [1] * 8
    assert len(renders) <= 3  # nine scrapes: the one in progress, then (nearly) all sharing the next
