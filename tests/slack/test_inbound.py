"""users.info lookups for bare mentions: a name when Slack answers, the id when it cannot."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError, SlackRequestError

from adapters.slack.inbound import NameCache


class StubClient:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.calls = 0

    async def users_info(self, user: str) -> dict[str, Any]:
        self.calls += 1
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return dict(self.outcome)


async def test_names_are_cached() -> None:
    client = StubClient({"ok": True, "user": {"id": "U1", "profile": {"display_name": "Bob"}}})
    cache = NameCache(client)  # type: ignore[arg-type]
    assert cache.needs_lookup("owner p <@U1>")
    assert await cache.resolve_mentions("owner p <@U1>") == {"U1": "Bob"}
    assert not cache.needs_lookup("owner p <@U1>")
    assert await cache.resolve_mentions("owner q <@U1>") == {"U1": "Bob"}
    assert client.calls == 1


@pytest.mark.parametrize(
    "failure",
    [
        aiohttp.ClientConnectionError("connection reset"),
        TimeoutError(),
        SlackRequestError("bad response"),
        SlackApiError("user_not_found", {"ok": False, "error": "user_not_found"}),
    ],
)
async def test_a_failed_lookup_leaves_the_id(failure: BaseException) -> None:
    """The command still runs (and answers) with the id when Slack cannot name the user."""
    cache = NameCache(StubClient(failure))  # type: ignore[arg-type]
    assert await cache.resolve_mentions("owner p <@U9>") == {}
    assert cache.needs_lookup("owner p <@U9>")  # nothing cached: the next command asks again
