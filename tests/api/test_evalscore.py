"""Scoring labelled eval sets: pure tests, plus the CLI import recording (or not) a run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.core import Core
from bot.evalscore import EvalFileError, format_of, matches, parse_csv, score_text
from storage.db import session_scope
from storage.models import EvalRun
from tests.api.conftest import seed


def generated_cases(n: int = 2000) -> list[dict[str, Any]]:
    """Case i: `party` misses when i % 7 == 0, `amount` misses when i % 11 == 0 (both must-not-miss),
    `note` (not must-not-miss) misses when i % 3 == 0. Everything else differs only in case, spaces
    and number formatting, which normalisation must forgive."""
    rows = []
    for i in range(n):
        party = f"Party {i % 50}"
        amount = 1000 + i
        rows.append(
            {
                "id": f"case-{i}",
                "expected": {"party": party, "amount": amount, "note": "ok"},
                "actual": {
                    "party": f"  {party.upper()} " if i % 7 else "Someone Else",
                    "amount": (f"{amount}.0" if i % 2 else amount) if i % 11 else amount + 1,
                    "note": "OK" if i % 3 else "different",
                },
                "must_not_miss": ["party", "amount"],
            }
        )
    return rows


def as_jsonl(rows: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def as_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "field", "expected", "actual", "must_not_miss"])
    for r in rows:
        for f, e in r["expected"].items():
            w.writerow([r["id"], f, e, r["actual"].get(f, ""), "true" if f in r["must_not_miss"] else "false"])
    return buf.getvalue()


# Hand-computed for i in 0..1999: multiples of 7: 286, of 11: 182, of 77: 26 -> 286 + 182 - 26 = 442 fail.
# note misses on multiples of 3: 667 -> note accuracy (2000 - 667) / 2000 = 66.65%.
EXPECTED_PASSED = 2000 - 442
EXPECTED_SCORE = 77.9
EXPECTED_FIELDS = {"party": 85.7, "amount": 90.9, "note": 66.65}


def test_2000_case_jsonl_matches_hand_computed_expectation() -> None:
    s = score_text(as_jsonl(generated_cases()), "jsonl")
    assert (s.cases, s.passed, s.score, s.failing_total) == (2000, EXPECTED_PASSED, EXPECTED_SCORE, 442)
    assert s.field_accuracy == EXPECTED_FIELDS
    assert [f.id for f in s.failing] == [f"case-{i}" for i in (0, 7, 11, 14, 21, 22, 28, 33, 35, 42)]
    assert [m.field for m in s.failing[0].misses] == ["party", "amount"]
    assert s.failing[0].line == 1 and s.failing[1].line == 8


def test_csv_and_jsonl_of_the_same_data_give_the_same_score() -> None:
    rows = generated_cases()
    j, c = score_text(as_jsonl(rows), "jsonl"), score_text(as_csv(rows), "csv")
    assert (j.score, j.cases, j.passed, j.field_accuracy, j.failing_total) == (
        c.score,
        c.cases,
        c.passed,
        c.field_accuracy,
        c.failing_total,
    )
    assert [f.id for f in j.failing] == [f.id for f in c.failing]


@pytest.mark.parametrize(
    ("expected", "actual", "same"),
    [
        ("Acme", " acme ", True),
        ("Straße", "STRASSE", True),
        (1200, "1200.0", True),
        ("1,200", "1200", False),
        (0.1 + 0.2, "0.3", True),
        (1200, 1201, False),
        (None, "", True),
        (None, "x", False),
        (True, "TRUE", True),
        (["a", "B"], ["A", "b "], True),
        ("nan", "NaN", True),
    ],
)
def test_normalisation(expected: Any, actual: Any, same: bool) -> None:
    assert matches(expected, actual) is same


def test_must_not_miss_defaults_to_every_expected_field_and_empty_list_always_passes() -> None:
    text = as_jsonl(
        [
            {"id": "a", "expected": {"x": 1, "y": 2}, "actual": {"x": 1, "y": 3}},
            {"id": "b", "expected": {"x": 1}, "actual": {"x": 2}, "must_not_miss": []},
        ]
    )
    s = score_text(text, "jsonl")
    assert (s.passed, [f.id for f in s.failing]) == (1, ["a"])


@pytest.mark.parametrize(
    ("text", "lines", "fragment"),
    [
        ('{"id": "a", "expected": {"x": 1}}\n{"id": "a", "expected": {"x": 1}}\n', [2], "duplicate id `a`"),
        ('{"id": "a"}\n', [1], "`expected` must be a non-empty object"),
        ('{"id": "a", "expected": {"x": 1}, "must_not_miss": ["y"]}\n', [1], "names y, not in `expected`"),
        ('{"id": "a", "expected": {"x": 1}, "must_not_miss": "x"}\n', [1], "must be a list"),
        ('{"expected": {"x": 1}}\n', [1], "`id` is missing"),
        ('[1]\n\n{"id": 1, "expected": {"x": 1}, "actual": 5}\n', [1, 3], "a row must be a JSON object"),
        ("\n\n", [1], "no cases found"),
    ],
)
def test_malformed_jsonl_is_reported_by_line(text: str, lines: list[int], fragment: str) -> None:
    with pytest.raises(EvalFileError) as e:
        score_text(text, "jsonl")
    assert [n for n, _ in e.value.errors] == lines
    assert fragment in e.value.sentence and "nothing was recorded" in e.value.sentence


def test_malformed_csv_is_reported_by_line() -> None:
    text = "id,field,expected,actual,must_not_miss\na,x,1,1,true\na,x,1,1,true\nb,,1,1,true\nc,x,1,1,maybe\nd,x,1\n"
    with pytest.raises(EvalFileError) as e:
        parse_csv(text)
    assert [n for n, _ in e.value.errors] == [3, 4, 5, 6]
    assert "duplicate field `x` for id `a` (first on line 2)" in e.value.sentence
    assert "(and" not in e.value.sentence


def test_csv_without_must_not_miss_column_means_every_field() -> None:
    s = score_text("id,field,expected,actual\na,x,1,1\na,y,2,3\nb,x,1,1\n", "csv")
    assert (s.cases, s.passed, s.field_accuracy) == (2, 1, {"x": 100, "y": 0})


def test_format_of() -> None:
    assert format_of(content_type="text/csv; charset=utf-8") == "csv"
    assert format_of(content_type="application/x-ndjson") == "jsonl"
    assert format_of(content_type="application/json") is None
    assert format_of(filename="set.JSONL") == "jsonl" and format_of(filename="a.txt") is None


def runs(core: Core) -> list[EvalRun]:
    with session_scope(core.engine) as s:
        return list(s.exec(select(EvalRun)).all())


def test_cli_eval_import(core: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters import cli

    seed(core)
    monkeypatch.setattr(cli, "_core", lambda: core)
    good = tmp_path / "set.csv"
    good.write_text(as_csv(generated_cases(150)))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(as_jsonl(generated_cases(3)) + "{broken\n")
    runner = CliRunner()
    r = runner.invoke(cli.app, ["eval", "import", "legal-intake", str(bad), "--as", "ana"])
    assert r.exit_code == 1 and "line 4: not valid JSON" in r.output and runs(core) == []
    r = runner.invoke(cli.app, ["eval", "import", "legal-intake", str(good), "--as", "mallory"])
    assert r.exit_code == 1 and "Only the owner of `legal-intake`" in r.output and runs(core) == []
    r = runner.invoke(cli.app, ["eval", "import", "legal-intake", str(good), "--as", "ana", "--version", "v2"])
    assert r.exit_code == 0, r.output
    (run,) = runs(core)
    # 150 cases: multiples of 7 (22) or 11 (14), both (2) -> 34 fail, 116 pass.
    assert (run.cases, run.score, run.version, run.recorded_by) == (150, 77.33, "v2", "console:ana")
    assert run.field_scores is not None and set(run.field_scores) == {"party", "amount", "note"}
    assert "116 of 150 cases pass" in r.output and "✗ case-0 (line 2)" in r.output


async def test_2000_cases_through_the_api_in_both_formats(api: Any) -> None:
    rows = generated_cases()
    path = "/api/v1/pilots/legal-intake/evals/cases"
    for body, ct in ((as_jsonl(rows), "application/x-ndjson"), (as_csv(rows), "text/csv")):
        r = await api.client.post(path, data=body, headers={**api.auth(api.legal), "Content-Type": ct})
        doc = await r.json()
        assert r.status == 201, doc
        assert (doc["score"], doc["passed"], doc["field_accuracy"]) == (
            EXPECTED_SCORE,
            EXPECTED_PASSED,
            EXPECTED_FIELDS,
        )
        assert len(doc["failing"]) == 10 and doc["failing_total"] == 442
    with session_scope(api.core.engine) as s:
        assert [r.score for r in s.exec(select(EvalRun)).all()] == [EXPECTED_SCORE, EXPECTED_SCORE]


# ---- issue 12: hostile labelled bodies at the REST route answer one clear 422, never a 500 ----

HOSTILE_ROWS = {
    "nested 600 deep": '{"id": "a", "expected": {"x": ' + "[" * 600 + "1" + "]" * 600 + "}}",
    "keys equal after case-folding": '{"id": "a", "expected": {"x": {"Party": 1, "party": "one"}}, "actual": {"x": 1}}',
    "lone surrogate in the id": '{"id": "a\\ud800", "expected": {"x": 1}, "actual": {"x": 1}}',
    "lone surrogate in a value": '{"id": "a", "expected": {"x": "\\udc00"}, "actual": {"x": 1}}',
    "an integer of 5000 digits": '{"id": "a", "expected": {"x": ' + "9" * 5000 + "}}",
}


@pytest.mark.parametrize("name", list(HOSTILE_ROWS))
async def test_hostile_jsonl_bodies_are_one_refusal(api: Any, name: str) -> None:
    body = as_jsonl(generated_cases(3)) + HOSTILE_ROWS[name] + "\n"
    r = await api.client.post(
        "/api/v1/pilots/legal-intake/evals/cases",
        data=body.encode("utf-8"),
        headers={**api.auth(api.legal), "Content-Type": "application/x-ndjson"},
    )
    doc = await r.json()
    assert r.status == 422, doc
    assert doc["error"].startswith("The eval file has 1 malformed row, nothing was recorded — line 4: ")
    assert [e["line"] for e in doc["errors"]] == [4]
    assert runs(api.core) == []


async def test_a_refused_body_lists_at_most_50_errors(api: Any) -> None:
    body = "".join(f'{{"id": "c{i}"}}\n' for i in range(20_000))  # ~350 KB of rows without `expected`
    r = await api.client.post(
        "/api/v1/pilots/legal-intake/evals/cases",
        data=body,
        headers={**api.auth(api.legal), "Content-Type": "application/x-ndjson"},
    )
    doc = await r.json()
    assert r.status == 422
    assert len(doc["errors"]) == 50 and "20000 malformed rows" in doc["error"] and "(and 19995 more)" in doc["error"]
    assert len(await r.read()) < 10_000
    assert runs(api.core) == []


async def test_junit_xml_through_the_api(api: Any) -> None:
    cases = "".join(
        f'<testcase classname="legal" name="c{i}">'
        + ("<failure message='party'/>" if i % 10 == 0 else "")
        + "</testcase>"
        for i in range(150)
    )
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>'
    )
    r = await api.client.post(
        "/api/v1/pilots/legal-intake/evals/cases",
        data=body,
        headers={**api.auth(api.legal), "Content-Type": "application/xml"},
    )
    doc = await r.json()
    assert r.status == 201, doc
    assert (doc["score"], doc["cases"], doc["passed"], doc["failing_total"]) == (90.0, 150, 135, 15)
    assert doc["failing"][0]["id"] == "legal::c0"
    r = await api.client.post(
        "/api/v1/pilots/legal-intake/evals/cases",
        data='<!DOCTYPE x [<!ENTITY a "b">]><testsuites/>',
        headers={**api.auth(api.legal), "Content-Type": "application/xml"},
    )
    assert r.status == 422 and "DOCTYPE" in (await r.json())["error"]
    assert [run.score for run in runs(api.core)] == [90.0]
