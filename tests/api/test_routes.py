"""Every /api/v1 route through the real aiohttp app: auth, scopes, errors, and the services behind."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import select

from adapters.api.openapi import openapi_document
from storage.db import session_scope
from storage.models import AuditEvent, Escalation, EvalRun, Measurement
from tests.api.conftest import Api

LEGAL = "/api/v1/pilots/legal-intake"
SUPPORT = "/api/v1/pilots/support-drafts"
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/pilots", None),
    ("GET", LEGAL, None),
    ("POST", LEGAL + "/evals", {"score": 96, "cases": 150}),
    ("POST", LEGAL + "/evals/cases", None),
    ("POST", SUPPORT + "/measurements", {"metric": "handle_time", "value": 9}),
    ("GET", "/api/v1/openapi.json", None),
    ("POST", SUPPORT + "/ship", None),
    ("POST", LEGAL + "/evals/latest/void", {"reason": "typo"}),
    ("POST", SUPPORT + "/metrics/handle_time/measurements/latest/void", None),
    ("POST", SUPPORT + "/metrics/handle_time/void", {"reason": "wrong metric"}),
]


async def call(api: Api, method: str, path: str, token: str | None = None, **kw: Any) -> tuple[int, Any]:
    headers = dict(kw.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    r = await api.client.request(method, path, headers=headers, **kw)
    assert r.content_type == "application/json", (r.status, await r.text())
    return r.status, await r.json()


def rows(api: Api, model: Any) -> list[Any]:
    with session_scope(api.core.engine) as s:
        return list(s.exec(select(model)).all())


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic Y2k6Y2k=", "Bearer "])
async def test_every_route_needs_a_valid_token(
    api: Api, method: str, path: str, body: dict[str, Any] | None, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    status, doc = await call(api, method, path, headers=headers, json=body)
    assert status == 401 and "token" in doc["error"]
    assert rows(api, EvalRun) == [] and rows(api, Measurement) == []


async def test_revocation_is_effective_at_once_for_reads_and_writes(api_any_db: Api) -> None:
    api = api_any_db
    assert (await call(api, "GET", LEGAL, api.admin))[0] == 200
    assert (await call(api, "POST", LEGAL + "/evals", api.admin, json={"score": 96, "cases": 150}))[0] == 201
    api.tokens.revoke("ci-all")
    assert (await call(api, "GET", LEGAL, api.admin))[0] == 401
    assert (await call(api, "POST", LEGAL + "/evals", api.admin, json={"score": 97, "cases": 150}))[0] == 401
    assert [r.score for r in rows(api, EvalRun)] == [96]


async def test_scoped_token_reads_and_writes_only_its_pilot(api_any_db: Api) -> None:
    api = api_any_db
    status, doc = await call(api, "GET", "/api/v1/pilots", api.legal)
    assert status == 200 and [p["slug"] for p in doc["pilots"]] == ["legal-intake"] and doc["total"] == 1
    assert (await call(api, "GET", LEGAL, api.legal))[0] == 200
    assert (await call(api, "GET", "/api/v1/pilots/LEGAL-INTAKE", api.legal))[0] == 200
    status, doc = await call(api, "GET", SUPPORT, api.legal)
    assert status == 403 and "scoped to `legal-intake`" in doc["error"]
    body = {"metric": "handle_time", "value": 9}
    assert (await call(api, "POST", SUPPORT + "/measurements", api.legal, json=body))[0] == 403
    assert (await call(api, "POST", SUPPORT + "/evals", api.legal, json={"score": 96, "cases": 150}))[0] == 403
    assert (await call(api, "GET", "/api/v1/pilots/no-such", api.legal))[0] == 403
    assert rows(api, Measurement) == [] and rows(api, EvalRun) == []
    status, doc = await call(api, "GET", "/api/v1/pilots", api.admin)
    assert [p["slug"] for p in doc["pilots"]] == ["legal-intake", "support-drafts"]


async def test_gap_report_document(api: Api) -> None:
    await call(api, "POST", SUPPORT + "/measurements", api.admin, json={"metric": "handle_time", "value": 9})
    status, doc = await call(api, "GET", SUPPORT, api.admin)
    assert status == 200
    assert [g["gap"] for g in doc["gaps"]] == ["baseline", "owner", "quality", "path"]
    assert all(g["state"] in ("closed", "at_risk", "open") and g["reason"] for g in doc["gaps"])
    assert doc["ready"] is False
    (m,) = doc["metrics"]
    assert (m["baseline"], m["latest"], m["verdict"]) == (14, 9, "better")
    assert m["improvement"] == "handle_time 14 → 9 min (−36%, better)"
    assert doc["latest_eval"] is None and doc["next_steps"]
    status, doc = await call(api, "GET", "/api/v1/pilots", api.admin)
    assert doc["summary"] == "0 of 2 pilots ready to ship (0%)"


async def test_eval_write_goes_through_services_with_audit_and_escalation(api: Api) -> None:
    body = {"score": 91.5, "cases": 150, "version": "prompt-v7"}
    status, doc = await call(api, "POST", LEGAL + "/evals", api.admin, json=body)
    assert status == 201 and doc["score"] == 91.5 and doc["alerts"], doc
    assert "fell below the bar" in doc["alerts"][0]
    (run,) = rows(api, EvalRun)
    assert (run.score, run.cases, run.version, run.source, run.recorded_by) == (
        91.5,
        150,
        "prompt-v7",
        "api",
        "api:ci-all",
    )
    (esc,) = rows(api, Escalation)
    assert esc.kind == "eval_below_bar" and esc.sent_at is None
    audit = [a for a in rows(api, AuditEvent) if a.action == "eval"]
    assert [a.actor for a in audit] == ["api:ci-all"]
    status, doc = await call(api, "GET", LEGAL, api.legal)
    assert doc["latest_eval"]["score"] == 91.5 and doc["latest_eval"]["clears_bar"] is False
    quality = next(g for g in doc["gaps"] if g["gap"] == "quality")
    assert quality["reason"] == "latest eval 91.5% < 95% bar"


async def test_fraction_is_read_as_in_chat(api: Api) -> None:
    status, doc = await call(api, "POST", LEGAL + "/evals", api.legal, json={"score": 0.962, "cases": 150})
    assert status == 201 and doc["read_as_fraction"] is True and doc["score"] == 96.2


async def test_measurement_write(api: Api) -> None:
    status, doc = await call(
        api, "POST", SUPPORT + "/measurements", api.admin, json={"metric": "Handle_Time", "value": 9}
    )
    assert status == 201 and doc["message"] == "Recorded handle_time 14 → 9 min (−36%, better)."
    (m,) = rows(api, Measurement)
    assert (m.value, m.source, m.recorded_by) == (9, "api", "api:ci-all")


BAD_EVALS: list[tuple[Any, int, str]] = [
    ({"cases": 150}, 422, "`score` is missing"),
    ({"score": 96}, 422, "`cases` is missing"),
    ({"score": "abc", "cases": 150}, 422, "not a number"),
    ({"score": 120, "cases": 150}, 422, "between 0 and 100%"),
    ({"score": -1, "cases": 150}, 422, "between 0 and 100%"),
    ({"score": True, "cases": 150}, 422, "must be a number"),
    ({"score": 96, "cases": 0}, 422, "between 1 and"),
    ({"score": 96, "cases": 1.5}, 422, "whole number"),
    ({"score": 96, "cases": "150"}, 422, "whole number"),
    ({"score": 96, "cases": 150, "version": 7}, 422, "`version` must be a string"),
    ({"score": 96, "cases": 150, "version": "v" * 201}, 422, "too long"),
    ({"score": 96, "cases": 150, "extra": 1}, 422, "Unexpected field `extra`"),
    ({"score": 1e400, "cases": 150}, 400, "not valid JSON"),  # json.dumps writes Infinity: not JSON
    ([1, 2], 400, "must be a JSON object"),
    ("nope", 400, "must be a JSON object"),
]


@pytest.mark.parametrize(("body", "status", "fragment"), BAD_EVALS)
async def test_eval_errors(api: Api, body: Any, status: int, fragment: str) -> None:
    got, doc = await call(api, "POST", LEGAL + "/evals", api.admin, data=json.dumps(body))
    assert (got, fragment in doc["error"]) == (status, True), doc
    assert "write `" not in doc["error"]  # no chat usage line in API errors
    assert rows(api, EvalRun) == []


BAD_MEASUREMENTS: list[tuple[Any, int, str]] = [
    ({"value": 9}, 422, "`metric` is missing"),
    ({"metric": "handle_time"}, 422, "`value` is missing"),
    ({"metric": "Bad Key!", "value": 9}, 422, "not a valid metric key"),
    ({"metric": "unknown", "value": 9}, 422, "record its baseline first"),
    ({"metric": "handle_time", "value": "9,5"}, 422, "decimal point"),
    ({"metric": "handle_time", "value": 9, "unit": "%"}, 422, "measured in min"),
    ({"metric": "handle_time", "value": None}, 422, "must be a number"),
]


@pytest.mark.parametrize(("body", "status", "fragment"), BAD_MEASUREMENTS)
async def test_measurement_errors(api: Api, body: Any, status: int, fragment: str) -> None:
    got, doc = await call(api, "POST", SUPPORT + "/measurements", api.admin, json=body)
    assert (got, fragment in doc["error"]) == (status, True), doc
    assert rows(api, Measurement) == []


@pytest.mark.parametrize("path", [LEGAL + "/evals", SUPPORT + "/measurements", LEGAL + "/evals/cases"])
async def test_body_errors_on_every_write(api: Api, path: str) -> None:
    ct = {"Content-Type": "application/x-ndjson"} if path.endswith("cases") else {}
    status, doc = await call(api, "POST", path, api.admin, data=b"x" * (1024 * 1024 + 1), headers=ct)
    assert status == 413 and doc["error"] == "The body is larger than 1 MiB."
    if not path.endswith("cases"):
        assert (await call(api, "POST", path, api.admin, data=b"{not json"))[0] == 400
        assert (await call(api, "POST", path, api.admin, data=b""))[0] == 400
        assert (await call(api, "POST", path, api.admin, data=b"\xff\xfe"))[0] == 400
    unknown = path.replace("legal-intake", "legal-intak").replace("support-drafts", "support-draft")
    status, doc = await call(api, "POST", unknown, api.admin, json={}, headers=ct)
    assert status == 404 and "did you mean" in doc["error"]
    bad_slug = path.replace("legal-intake", "Not_A_Slug!").replace("support-drafts", "Not_A_Slug!")
    status, doc = await call(api, "POST", bad_slug, api.admin, json={}, headers=ct)
    assert status == 404
    assert rows(api, EvalRun) == [] and rows(api, Measurement) == []


async def test_read_errors(api: Api) -> None:
    status, doc = await call(api, "GET", "/api/v1/pilots/legal-intak", api.admin)
    assert status == 404 and doc["error"] == "No pilot `legal-intak`; did you mean `legal-intake`?"
    assert (await call(api, "GET", "/api/v1/nowhere", api.admin))[0] == 404
    status, doc = await call(api, "DELETE", LEGAL, api.admin)
    assert status == 405 and "DELETE" in doc["error"]
    assert (await call(api, "GET", LEGAL + "/evals", api.admin))[0] == 405


async def test_cases_errors(api: Api) -> None:
    path = LEGAL + "/evals/cases"
    status, doc = await call(api, "POST", path, api.admin, data="x", headers={"Content-Type": "text/plain"})
    assert status == 415 and "JSONL" in doc["error"]
    bad = '{"id": "c1", "expected": {"a": 1}, "actual": {"a": 1}}\n{"id": "c2"}\nnot json\n'
    status, doc = await call(api, "POST", path, api.admin, data=bad, headers={"Content-Type": "application/x-ndjson"})
    assert status == 422 and [e["line"] for e in doc["errors"]] == [2, 3], doc
    assert "line 2:" in doc["error"] and "nothing was recorded" in doc["error"]
    status, doc = await call(
        api, "POST", path, api.admin, data="id,field\n", headers={"Content-Type": "text/csv; charset=utf-8"}
    )
    assert status == 422 and "header lacks expected, actual" in doc["error"]
    assert rows(api, EvalRun) == []


async def test_cases_scores_and_records(api: Api) -> None:
    lines = [
        json.dumps(
            {"id": f"c{i}", "expected": {"party": "Acme", "n": 3}, "actual": {"party": "acme", "n": 3 + (i < 12)}}
        )
        for i in range(100)
    ]
    status, doc = await call(
        api,
        "POST",
        LEGAL + "/evals/cases?version=v9",
        api.legal,
        data="\n".join(lines),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert status == 201, doc
    assert (doc["score"], doc["cases"], doc["passed"], doc["failing_total"]) == (88, 100, 88, 12)
    assert doc["field_accuracy"] == {"party": 100, "n": 88}
    assert [f["id"] for f in doc["failing"]] == [f"c{i}" for i in range(10)]
    assert doc["failing"][0]["misses"] == [{"field": "n", "expected": 3, "actual": 4}]
    (run,) = rows(api, EvalRun)
    assert (run.score, run.cases, run.version, run.field_scores) == (88, 100, "v9", {"party": 100, "n": 88})
    assert doc["alerts"] and "fell below the bar" in doc["alerts"][0]


async def test_openapi_describes_every_route(api: Api) -> None:
    status, doc = await call(api, "GET", "/api/v1/openapi.json", api.legal)
    assert status == 200 and doc == openapi_document() and doc["openapi"].startswith("3.")
    api_app = next(r for r in api.client.app.router.resources() if r.canonical == "/api/v1")
    served = set()
    for route in api_app._app.router.routes():  # type: ignore[attr-defined]
        if route.method != "HEAD":
            served.add((route.resource.canonical.removeprefix("/api/v1"), route.method.lower()))
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    for ops in doc["paths"].values():
        for op in ops.values():
            assert "401" in op["responses"]
