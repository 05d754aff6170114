"""REST bodies under the same text and number rules as the chat grammar (issue 12), on SQLite and
PostgreSQL: one sentence, HTTP 422 (never 500), nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from bot.ports import Actor
from storage.models import EvalRun, Measurement
from tests.api.conftest import Api
from tests.api.test_routes import LEGAL, SUPPORT, call, rows
from tests.helpers import row_counts

ANA = Actor("console", "ana", "Ana")


async def refused(api: Api, path: str, data: bytes | str, **kw: Any) -> str:
    before = row_counts(api.core.engine)
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    status, doc = await call(api, "POST", path, api.admin, data=data, headers=headers, **kw)
    assert status == 422, doc
    assert row_counts(api.core.engine) == before, "a refused request wrote to the database"
    return str(doc["error"])


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"score": 96, "cases": 150, "version": "v\\u00007"}', "The `version` contains a NUL character; remove it."),
        ('{"score": 96, "cases": 150, "version": "v\\ud8007"}', "The `version` contains a broken character"),
        ('{"score": 96, "cases": 150, "version": "' + "v" * 201 + '"}', "(201 characters; 200 at most)."),
    ],
)
async def test_eval_version_text_rule(api_any_db: Api, body: str, says: str) -> None:
    assert says in await refused(api_any_db, LEGAL + "/evals", body)
    assert rows(api_any_db, EvalRun) == []


async def test_cases_version_from_the_query_string(api_any_db: Api) -> None:
    said = await refused(
        api_any_db,
        LEGAL + "/evals/cases?version=v%007",
        '{"id": "1", "expected": {"a": 1}, "actual": {"a": 1}}\n',
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert said == "The `version` contains a NUL character; remove it."


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"metric": "handle_time", "value": 9, "unit": "mi\\u0000n"}', "The `unit` contains a NUL character"),
        ('{"metric": "handle_time", "value": 9, "unit": "' + "u" * 33 + '"}', "(33 characters; 32 at most)."),
        ('{"metric": "' + "k" * 65 + '", "value": 9}', "The `metric` is too long (65 characters; 64 at most)."),
        ('{"metric": "handle_time", "value": 0.2, "unit": "hours"}', "`handle_time` is measured in min, not hours"),
        ('{"metric": "handle_time", "value": "0,5"}', "write `0.5` instead of `0,5`"),
    ],
)
async def test_measurement_text_and_unit_rules(api_any_db: Api, body: str, says: str) -> None:
    assert says in await refused(api_any_db, SUPPORT + "/measurements", body)
    assert rows(api_any_db, Measurement) == []


async def test_thousands_and_percent_fractions_as_in_chat(api_any_db: Api) -> None:
    api = api_any_db
    assert api.core.router.handle("baseline support-drafts revision_rate 38% lower at 2026-01-05", ANA).ok
    status, doc = await call(
        api, "POST", SUPPORT + "/measurements", api.admin, json={"metric": "revision_rate", "value": 0.21}
    )
    assert status == 201 and "(I read 0.21 as 21%, the way `eval` reads a fraction.)" in doc["lines"], doc
    status, doc = await call(
        api, "POST", SUPPORT + "/measurements", api.admin, json={"metric": "revision_rate", "value": 140}
    )
    assert status == 422 and "`revision_rate` is a percentage" in doc["error"]
    status, doc = await call(
        api, "POST", SUPPORT + "/measurements", api.admin, json={"metric": "handle_time", "value": "1,200"}
    )
    assert status == 201, doc
    assert sorted(m.value for m in rows(api, Measurement)) == [21, 1200]
