"""`GET /metrics` (prometheus-client), with its own CollectorRegistry per web app.

In-process counters: commands handled by surface and outcome, command latency, delivery failures.
Read from the database at scrape time (true across restarts and replicas), each a few indexed rows:
check-ins sent, answered, missed and answered on time and escalations sent by kind (counters moved
with their events, storage/counters.py), deliveries waiting for a retry (partial indexes), pilots by
gap state (the stored scorecard).

Served only to loopback clients, or to anyone presenting a valid API bearer token.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from adapters import lanes
from adapters.coalesce import Coalesced
from bot.core import Core
from bot.gaps import Gap, GapState
from bot.tokens import TokenService, bearer
from storage import counters
from storage.db import session_scope

log = logging.getLogger(__name__)

# `pilotbot_checkins_total{event}`: missed and on_time are each check-in's verdict (bot.gaps.is_missed),
# counted once when it is answered or its grace period ends unanswered.
CHECKIN_EVENTS = (
    ("sent", counters.CHECKINS_SENT),
    ("answered", counters.CHECKINS_ANSWERED),
    ("missed", counters.CHECKINS_MISSED),
    ("on_time", counters.CHECKINS_ON_TIME),
)


class Metrics:
    """The process's counters; one per web app so tests (and two apps in one process) never share."""

    def __init__(self, core: Core) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.commands = Counter(
            "pilotbot_commands",
            "Commands handled, by surface and outcome (ok, refused, error).",
            ["surface", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pilotbot_command_seconds",
            "Time to handle one command, by surface.",
            ["surface"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.delivery_failures = Counter(
            "pilotbot_delivery_failures",
            "Outbound messages that failed to deliver (each failed attempt), by platform.",
            ["platform"],
            registry=self.registry,
        )
        self.registry.register(DatabaseCollector(core))

    def observe_command(self, surface: str, command: str, outcome: str, seconds: float) -> None:
        """A `bot.router.Observer`: told of every command any surface handles."""
        self.commands.labels(surface, outcome).inc()
        self.latency.labels(surface).observe(max(0.0, seconds))

    def delivery_failed(self, platform: str) -> None:
        """Hook for notifiers: call once per failed send attempt."""
        self.delivery_failures.labels(platform).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class DatabaseCollector(Collector):
    """Counts that live in the database, computed at scrape time."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def describe(self) -> list[Any]:
        return []  # families are produced at scrape time only (no DB work on registration)

    def collect(self) -> Iterator[Any]:
        try:
            yield from self._collect()
        except Exception:
            log.exception("metrics: database scrape failed")

    def _collect(self) -> Iterator[Any]:
        services = self.core.services
        # Maintained counters (storage/counters.py): a few rows, whatever the history's length.
        with session_scope(self.core.engine) as s:
            totals = counters.read(s)
            waiting = counters.pending_retry(s)
        checkins = CounterMetricFamily("pilotbot_checkins", "Weekly check-ins by event.", labels=["event"])
        for event, name in CHECKIN_EVENTS:
            checkins.add_metric([event], totals.get(name, 0))
        yield checkins
        esc = CounterMetricFamily("pilotbot_escalations_sent", "Escalations sent, by kind.", labels=["kind"])
        for name, n in sorted(totals.items()):
            if name.startswith(counters.ESCALATIONS_SENT):
                esc.add_metric([name[len(counters.ESCALATIONS_SENT) :]], n)
        yield esc
        pending = GaugeMetricFamily(
            "pilotbot_deliveries_pending_retry", "Check-ins and escalations whose last send failed and wait for retry."
        )
        pending.add_metric([], waiting)
        yield pending
        # From the stored scorecard (bot/scorecard.py): one aggregate, no rule runs per pilot.
        counts = services.portfolio_counts()
        gauge = GaugeMetricFamily("pilotbot_pilots", "Active pilots by gap and state.", labels=["gap", "state"])
        for g in Gap:
            for st in GapState:
                gauge.add_metric([g.value, st.value], counts.gaps.get(g.value, {}).get(st.value, 0))
        yield gauge
        ready = GaugeMetricFamily("pilotbot_pilots_ready", "Active pilots ready to ship (all four gaps closed).")
        ready.add_metric([], counts.ready)
        yield ready
        production = GaugeMetricFamily("pilotbot_pilots_production", "Pilots in production.")
        production.add_metric([], counts.production)
        yield production


METRICS_KEY: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
TOKENS_KEY: web.AppKey[TokenService] = web.AppKey("metrics_tokens", TokenService)
RENDER_KEY: web.AppKey[Coalesced[bytes]] = web.AppKey("metrics_render", Coalesced)


def is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def metrics_access(remote: str | None, authorization: str | None, tokens: TokenService) -> int:
    """200 for loopback clients or an UNSCOPED valid token; 403 for a pilot-scoped token (the
    metrics cover every pilot); 401 otherwise."""
    if is_loopback(remote):
        return 200
    info = tokens.verify(bearer(authorization))
    if info is None:
        return 401
    return 200 if info.pilot_slug is None else 403


def metrics_allowed(remote: str | None, authorization: str | None, tokens: TokenService) -> bool:
    return metrics_access(remote, authorization, tokens) == 200


async def metrics_handler(request: web.Request) -> web.Response:
    tokens = request.app[TOKENS_KEY]
    access = await asyncio.to_thread(metrics_access, request.remote, request.headers.get("Authorization"), tokens)
    if access == 403:
        return web.json_response(
            {"error": "/metrics covers every pilot: it needs a token made without --pilot."}, status=403
        )
    if access != 200:
        return web.json_response(
            {"error": "/metrics is served on loopback or with an API token (Authorization: Bearer <token>)."},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    body = await request.app[RENDER_KEY]()  # concurrent scrapes share a render (adapters/coalesce.py)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def get_metrics(app: web.Application) -> Metrics | None:
    return app.get(METRICS_KEY)


def mount(app: web.Application, core: Core) -> Metrics:
    """Adds /metrics and observes `core.router`, so every surface's commands are counted."""
    metrics = Metrics(core)
    app[METRICS_KEY] = metrics
    app[TOKENS_KEY] = TokenService(core.engine, core.clock)
    # Rendered on its own lane, never the acks'; scrapes arriving together share one render.
    app[RENDER_KEY] = Coalesced(lambda: lanes.portfolio(metrics.exposition))
    core.router.observers.append(metrics.observe_command)
    app.router.add_get("/metrics", metrics_handler)
    return metrics
