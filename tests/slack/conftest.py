from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.slack.client import make_slack_client
from bot.config import Settings
from tests.slack.fake_slack import FakeSlack

SIGNING_SECRET = "test-signing-secret"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = await FakeSlack().start()
    yield server
    await server.stop()


def slack_settings(db_url: str, api_url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=db_url,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=api_url,
        pilotbot_admins="slack:UADMIN",
    )


@pytest.fixture
def fake_settings(fake: FakeSlack, sqlite_url: str) -> Settings:
    return slack_settings(sqlite_url, fake.api_url)


@pytest.fixture
def client(fake_settings: Settings):  # type: ignore[no-untyped-def]
    return make_slack_client(fake_settings)
