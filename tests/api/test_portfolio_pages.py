"""GET /api/v1/pilots pages the stored scorecard riskiest first; /portfolio/trend counts by week."""

from __future__ import annotations

from tests.api.conftest import ANA, Api


async def _get(api: Api, path: str, token: str | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    resp = await api.client.get(path, headers=api.auth(token or api.admin))
    return resp.status, await resp.json()


async def test_pilots_are_paged_riskiest_first_with_filters(api: Api) -> None:
    for i in range(27):
        assert api.core.router.handle(f"new bulk-{i:02d} Bulk {i}", ANA).ok
    status, doc = await _get(api, "/api/v1/pilots?page=1")
    assert status == 200 and doc["page"] == 1 and doc["pages"] == 2 and doc["matching"] == 29
    assert len(doc["pilots"]) == 25 and doc["total"] == 29
    # The ownerless pilots (four gaps open) come before Ana's two (three open).
    assert doc["pilots"][0]["slug"] == "bulk-00"
    status, doc = await _get(api, "/api/v1/pilots?page=2")
    assert [p["slug"] for p in doc["pilots"]] == ["bulk-25", "bulk-26", "legal-intake", "support-drafts"]
    status, doc = await _get(api, "/api/v1/pilots?owner=console:ana&state=at-risk")
    assert status == 200 and [p["slug"] for p in doc["pilots"]] == ["legal-intake", "support-drafts"]
    status, doc = await _get(api, "/api/v1/pilots?state=ready")
    assert doc["pilots"] == [] and doc["matching"] == 0 and doc["total"] == 29


async def test_bad_list_queries_are_one_sentence_400s(api: Api) -> None:
    for query, word in (("state=maybe", "state"), ("page=0", "page"), ("owner=ana", "owner"), ("sort=x", "Unknown")):
        status, doc = await _get(api, f"/api/v1/pilots?{query}")
        assert status == 400 and word in doc["error"], (query, doc)


async def test_trend_counts_closed_gaps_and_ready_per_week(api: Api) -> None:
    r = api.core.router
    for text in ("threshold support-drafts 90 min-cases 10", "eval support-drafts 95 cases 20"):
        assert r.handle(text, ANA).ok
    status, doc = await _get(api, "/api/v1/portfolio/trend?weeks=3")
    assert status == 200 and len(doc["weeks"]) == 3
    last = doc["weeks"][-1]
    assert last["closed"] == {"baseline": 1, "owner": 2, "quality": 1, "path": 0} and last["ready"] == 0
    assert doc["weeks"][0]["closed"]["owner"] == 0  # nothing existed two weeks before the clock
    status, _ = await _get(api, "/api/v1/portfolio/trend", api.legal)
    assert status == 403
