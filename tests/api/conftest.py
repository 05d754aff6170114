from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.server import build_web_app
from bot.clock import FixedClock
from bot.config import Settings
from bot.core import Core, build_core
from bot.ports import Actor
from bot.tokens import TokenService
from storage.db import make_engine

ANA = Actor("console", "ana", "Ana")


def seed(core: Core) -> None:
    """Two pilots owned by Ana: `legal-intake` (bar 95% on 100 cases) and `support-drafts` (a metric)."""
    r = core.router
    for cmd in (
        "new legal-intake Legal intake extraction",
        "owner legal-intake @ana",
        "threshold legal-intake 95 min-cases 100",
        "escalate legal-intake #ai-pilots",
        "new support-drafts Support reply drafts",
        "owner support-drafts @ana",
        "baseline support-drafts handle_time 14 min lower at 2026-01-05",
    ):
        reply = r.handle(cmd, ANA)
        assert reply.ok, (cmd, reply.text)


@dataclass
class Api:
    core: Core
    client: TestClient  # type: ignore[type-arg]
    tokens: TokenService
    admin: str  # an unscoped token
    legal: str  # a token scoped to legal-intake

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


async def make_api(settings: Settings, clock: FixedClock) -> AsyncIterator[Api]:
    engine = make_engine(settings.database_url)
    core = build_core(settings, clock, engine, migrate=False)
    seed(core)
    tokens = TokenService(engine, clock)
    admin, _ = tokens.create("ci-all")
    legal, _ = tokens.create("ci-legal", "legal-intake")
    client = TestClient(TestServer(build_web_app(core)))
    await client.start_server()
    try:
        yield Api(core, client, tokens, admin, legal)
    finally:
        await client.close()
        engine.dispose()


@pytest.fixture
def sqlite_settings(sqlite_url: str) -> Settings:
    return Settings(_env_file=None, database_url=sqlite_url, pilotbot_admins="console:root")  # type: ignore[call-arg]


@pytest.fixture
async def api(sqlite_settings: Settings, clock: FixedClock) -> AsyncIterator[Api]:
    """The whole web app on SQLite (most tests)."""
    async for a in make_api(sqlite_settings, clock):
        yield a


@pytest.fixture
async def api_any_db(settings: Settings, clock: FixedClock) -> AsyncIterator[Api]:
    """The whole web app on SQLite and on PostgreSQL."""
    async for a in make_api(settings, clock):
        yield a
