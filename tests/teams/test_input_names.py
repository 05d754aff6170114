"""Display names from Teams mention entities over the column's length, or holding a NUL, are
trimmed, not refused: the user's command still runs (issue 12)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from bot.core import Core
from tests.teams import payloads as p
from tests.teams.fake_connector import FakeConnector
from tests.teams.test_teams_e2e import pilot, post


async def test_an_over_long_mention_name_is_trimmed(
    client: TestClient, connector: FakeConnector, teams_core: Core
) -> None:
    url = connector.url
    long_name = "Sam " + "L" * 300 + "\x00"
    sam = {"id": "29:1sam", "name": long_name}
    assert await post(client, p.channel(url, "<at>pilotbot</at> new legal-intake", [p.BOT])) in (200, 201)
    connector.calls.clear()
    act = p.channel(url, f"<at>pilotbot</at> owner legal-intake <at>{long_name}</at>", [p.BOT, sam])
    assert await post(client, act) in (200, 201)
    assert any("now owns" in c.card_text for c in connector.sent()), [c.card_text for c in connector.sent()]
    row = pilot(teams_core, "legal-intake")
    assert row.owner_id == "aad-sam"
    assert row.owner_name is not None and len(row.owner_name) == 200 and "\x00" not in row.owner_name
