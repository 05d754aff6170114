"""Issue 12 at the REST boundary: Allow on 405, capped error bodies, dropped connections, query
tokens kept out of the access log, read-only and pilot-scoped tokens."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from aiohttp import ClientSession, web

from adapters.api.accesslog import RedactingAccessLogger
from adapters.server import build_web_app
from storage.models import EvalRun, Measurement
from tests.api.conftest import Api
from tests.api.test_routes import LEGAL, SUPPORT, call, rows


async def test_405_carries_allow(api: Api) -> None:
    r = await api.client.delete(LEGAL, headers=api.auth(api.admin))
    assert r.status == 405 and r.headers["Allow"] == "GET, HEAD"
    assert "use GET, HEAD" in (await r.json())["error"]
    r = await api.client.get(LEGAL + "/evals", headers=api.auth(api.admin))
    assert r.status == 405 and r.headers["Allow"] == "POST"


async def test_a_refused_case_file_answers_the_first_50_errors_and_a_count(api: Api) -> None:
    bad = "".join(f'{{"id": "c{i}", "actual": {{"a": 1}}, "w": "no expected"}}\n' for i in range(12_000))
    assert 500_000 < len(bad) < 1024 * 1024
    r = await api.client.post(
        LEGAL + "/evals/cases", data=bad, headers={**api.auth(api.admin), "Content-Type": "application/x-ndjson"}
    )
    raw = await r.read()
    assert r.status == 422 and len(raw) < 20_000, len(raw)
    doc = json.loads(raw)
    assert len(doc["errors"]) == 50 and doc["more_errors"] == 12_000 - 50
    assert doc["errors"][0]["line"] == 1 and "12000 malformed rows" in doc["error"]
    assert rows(api, EvalRun) == []


async def test_a_client_dropping_the_connection_mid_body_is_one_info_line(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # A runner as `serve` makes it (TestServer cancels handlers on disconnect; run_app does not).
    runner = web.AppRunner(build_web_app(api.core))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST {LEGAL}/evals/cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api.admin}\r\n"
        "Content-Type: application/x-ndjson\r\nContent-Length: 500000\r\n\r\n"
    )
    writer.write(head.encode() + b'{"id": "c1", "expected": {"a": 1}, "actual"')
    await writer.drain()
    await asyncio.sleep(0.2)  # the handler is reading the body now
    try:
        early = await asyncio.wait_for(reader.read(2000), 0.3)
    except TimeoutError:
        early = b""
    assert early == b"", early  # no answer yet: the server waits for the rest of the body
    writer.close()
    for _ in range(100):
        if any("closed the connection mid-body" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    await runner.cleanup()
    gone = [r for r in caplog.records if "closed the connection mid-body" in r.getMessage()]
    assert len(gone) == 1 and gone[0].levelname == "INFO"
    assert not [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info]
    assert rows(api, EvalRun) == []


async def test_a_token_in_the_query_string_stays_out_of_the_access_log(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    runner = web.AppRunner(build_web_app(api.core), access_log_class=RedactingAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with ClientSession() as http:
            url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/pilots?token={api.admin}&page=2&api_key=k-123"
            async with http.get(url) as r:
                assert r.status == 401
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 1 and "/api/v1/pilots?token=REDACTED&page=2&api_key=REDACTED" in lines[0], lines
    assert api.admin not in caplog.text and "k-123" not in caplog.text


def test_serve_says_where_it_listens_what_is_mounted_and_which_database(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from adapters import server

    caplog.set_level(logging.INFO)
    seen: dict[str, object] = {}
    monkeypatch.setattr(web, "run_app", lambda app, **kw: seen.update(kw))
    server.run(api.core)
    assert seen["access_log_class"] is RedactingAccessLogger  # query tokens stay out of the log
    said = caplog.text
    assert "pilotbot listening on http://0.0.0.0:3000" in said
    assert "mounted: REST API (/api/v1), OFREP flags (/ofrep/v1), metrics (GET /metrics), health (GET /healthz)" in said
    db_file = api.core.settings.database_url.removeprefix("sqlite:///")
    assert f"database: SQLite file {db_file}" in said


def test_the_database_url_is_shown_without_its_password() -> None:
    from adapters.serve_log import database_label

    label = database_label("postgresql+psycopg://pilot:s3cr3t@db.internal:5432/pilotbot")
    assert label == "postgresql+psycopg://pilot:***@db.internal:5432/pilotbot" and "s3cr3t" not in label


async def test_a_one_pilot_token_lists_that_pilot_without_building_the_portfolio(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def whole_portfolio() -> None:
        raise AssertionError("a one-pilot token built the whole portfolio")

    monkeypatch.setattr(api.core.services, "portfolio", whole_portfolio)
    status, doc = await call(api, "GET", "/api/v1/pilots", api.legal)
    assert status == 200 and [p["slug"] for p in doc["pilots"]] == ["legal-intake"] and doc["total"] == 1


async def test_a_read_only_token_reads_and_every_write_is_403(api: Api) -> None:
    ro, info = api.tokens.create("dashboard", read_only=True)
    assert info.read_only
    assert (await call(api, "GET", "/api/v1/pilots", ro))[0] == 200
    assert (await call(api, "GET", LEGAL, ro))[0] == 200
    writes = [
        (LEGAL + "/evals", {"json": {"score": 96, "cases": 150}}),
        (SUPPORT + "/measurements", {"json": {"metric": "handle_time", "value": 9}}),
        (LEGAL + "/evals/cases", {"data": '{"id": "c1", "expected": {}, "actual": {}}\n'}),
    ]
    for path, kw in writes:
        status, doc = await call(api, "POST", path, ro, **kw)
        assert status == 403 and "read-only" in doc["error"], (path, doc)
    assert rows(api, EvalRun) == [] and rows(api, Measurement) == []
