from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.server import build_web_app
from bot.config import Settings
from bot.core import Core, build_core
from tests.teams.fake_connector import FakeConnector


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
