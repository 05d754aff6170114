"""The platform-neutral core assembled once per process: engine, services, router."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.flags import Flags
from bot.router import Router
from bot.services import Services
from bot.services.unit import DeliverNow
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

    def deliver_now(self, hook: DeliverNow) -> Callable[[], None]:
        """Registers the process's "deliver now" hook: after every change that created outbox rows
        (an eval alert, ...), it gets their ids right after the commit (SPEC §5 "at once").
        Returns the call that unregisters it (a server shutting down)."""
        self.services.deliver_now.append(hook)

        def unregister() -> None:
            if hook in self.services.deliver_now:
                self.services.deliver_now.remove(hook)

        return unregister


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
        services.counters_backfill()  # check-in verdicts not counted yet (a database from before 0014)
    flags = Flags(services)
    return Core(settings, engine, services, Router(services, flags), clock, flags)
