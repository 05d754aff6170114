from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.server import build_web_app
from adapters.teams.app import TEAMS_NOTIFIER
from adapters.teams.pacing import TeamsPacer
from bot.clock import FixedClock
from bot.config import Settings
from bot.core import Core, build_core
from tests.teams.fake_connector import FakeConnector
from tests.teams.virtual_time import VirtualTime


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = FakeConnector(
        members={
            "29:1sam": {"id": "29:1sam", "name": "Sam Lee", "aadObjectId": "aad-sam", "userPrincipalName": "sam@x"}
        }
    )
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def teams_core(core: Core) -> Core:
    settings: Settings = core.settings.model_copy(update={"teams_allow_anonymous": True})
    return build_core(settings, core.clock, core.engine, migrate=False)


@pytest.fixture
async def client(teams_core: Core) -> AsyncIterator[TestClient]:
    app = build_web_app(teams_core)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as c:
        yield c


@pytest.fixture
def quiet_core(core: Core) -> Core:
    """Teams (anonymous) with no interval tick: the test runs each tick itself with the fixed clock."""
    settings = core.settings.model_copy(update={"teams_allow_anonymous": True, "pilotbot_scheduler": False})
    return build_core(settings, core.clock, core.engine, migrate=False)


@pytest.fixture
async def server(quiet_core: Core) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_web_app(quiet_core), host="127.0.0.1", port=0)) as c:
        yield c


@pytest.fixture
def vt(server: TestClient, quiet_core: Core, connector: FakeConnector) -> VirtualTime:
    """The Teams pacer, and the connector's clock, on virtual time that follows the outbox's
    FixedClock (a Retry-After has passed once the test moved the clock past it)."""
    clock = quiet_core.clock
    assert isinstance(clock, FixedClock) and server.app is not None
    vt = VirtualTime(lambda: clock.now().timestamp())
    notifier = server.app[TEAMS_NOTIFIER]
    notifier.pacer = TeamsPacer(clock=vt.clock, sleep=vt.sleep)
    notifier.send = vt.track(notifier.send)  # type: ignore[method-assign]
    connector.clock = vt.clock
    return vt
