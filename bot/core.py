"""The platform-neutral core assembled once per process: engine, services, router."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.router import Router
from bot.services import Services
from storage.db import ensure_schema, make_engine


@dataclass
class Core:
    settings: Settings
    engine: Engine
    services: Services
    router: Router
    clock: Clock


def build_core(
    settings: Settings, clock: Clock | None = None, engine: Engine | None = None, migrate: bool = True
) -> Core:
    engine = engine or make_engine(settings.database_url)
    if migrate:
        ensure_schema(engine)
    clock = clock or SystemClock()
    services = Services(engine, settings, clock)
    if migrate:
        services.scorecard_backfill()  # pilots without a stored scorecard yet (a database from before 0013)
    return Core(settings, engine, services, Router(services), clock)
