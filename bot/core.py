"""The platform-neutral core assembled once per process: engine, services, router."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.flags import Flags
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
    # The one kill-switch Flags of the process: chat commands and the OFREP routes share its unflushed
    # read evidence, so `kill` right after a production read says so.
    flags: Flags = field(default=None)  # type: ignore[assignment]  # None: the router's

    def __post_init__(self) -> None:
        if self.flags is None:
            self.flags = self.router.flags


def build_core(
    settings: Settings, clock: Clock | None = None, engine: Engine | None = None, migrate: bool = True
) -> Core:
    engine = engine or make_engine(settings.database_url)
    if migrate:
        ensure_schema(engine)
    clock = clock or SystemClock()
    services = Services(engine, settings, clock)
    flags = Flags(services)
    return Core(settings, engine, services, Router(services, flags), clock, flags)
