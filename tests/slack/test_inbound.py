"""users.info lookups for bare mentions: a name when Slack answers, the id when it cannot."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError, SlackRequestError

from adapters.slack.inbound import NameCache, unescape


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


@pytest.mark.parametrize(
    ("sent", "meant"),
    [
        ("new rnd R&amp;D &lt;beta&gt;", "new rnd R&D <beta>"),
        ("&amp;lt; stays &amp;copy;", "&lt; stays &copy;"),  # decoded once, only Slack's three entities
        ("see <https://x.example/a?b=1&amp;c=2|the runbook>", "see the runbook (https://x.example/a?b=1&c=2)"),
        ("<https://x.example/a>", "https://x.example/a"),
        ("<http://example.com|example.com>", "http://example.com"),  # auto-linked as typed
        ("<mailto:ops@x.example|ops@x.example>", "ops@x.example"),
        ("owner p <@U024BE7LH|bob> <@U9>", "owner p <@U024BE7LH|bob> <@U9>"),  # the grammar resolves them
        ("escalate p <#C01|ops>", "escalate p <#C01|ops>"),
        ("<!here> and <!subteam^S1|@oncall>", "@here and @oncall"),
    ],
)
def test_unescape(sent: str, meant: str) -> None:
    assert unescape(sent) == meant
