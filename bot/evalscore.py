"""Score a labelled eval set: JSONL, CSV or JUnit XML -> score, per-field accuracy, failing cases,
and every case's result (id, pass/fail, failing fields) for the per-case history (bot/evals/).

Pure: no I/O, no clock. Any malformed row makes the whole file refused (errors by line number; the
refusal keeps the first MAX_ERRORS_KEPT and counts the rest), so nothing is recorded from a
half-read file.

JSONL, one case a line:
    {"id": "c1", "expected": {"party": "Acme", "amount": 1200},
     "actual": {"party": "acme ", "amount": "1200.0"}, "must_not_miss": ["party", "amount"]}
`must_not_miss` is optional: when absent, every expected field is must-not-miss.

CSV, header `id,field,expected,actual,must_not_miss`, one row per (case, field); must_not_miss is
true/false (also yes/no, 1/0; empty or a missing column means true).

A field matches when expected and actual are equal after normalising: strings trimmed and
case-folded, numbers (also numeric strings) compared as numbers, null and a missing value equal to "".
A case passes when every must-not-miss field matches; the score is the share of passing cases.
Its failing fields are the must-not-miss fields that missed (the reason it failed).

JUnit XML as pytest `--junitxml` writes it: see bot/evals/junit.py (one `testcase` a case, a
`failure`/`error` a failed case, `skipped` left out of the run).

Values are refused, with the line, when they cannot be compared honestly: nested deeper than
MAX_DEPTH levels, object keys that are equal once trimmed and case-folded (normalisation would merge
them), or a lone UTF-16 surrogate (`\\ud800`) in an id, a field name or a value (not text; it
cannot be stored or sent).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from bot.errors import UserError
from storage.cases import CaseResult

MAX_ERRORS_SHOWN = 5  # in the sentence
MAX_ERRORS_KEPT = 50  # in `EvalFileError.errors` (the REST body lists these)
MAX_DEPTH = 32
MAX_ID = 200
MAX_FAILING = 10
TRUE_WORDS = frozenset({"true", "yes", "y", "1", ""})
FALSE_WORDS = frozenset({"false", "no", "n", "0"})
CSV_COLUMNS = ("id", "field", "expected", "actual", "must_not_miss")


@dataclass(frozen=True)
class Verdict:
    """A result decided by the test runner (JUnit): no expected/actual values to compare."""

    outcome: str  # "passed", "failure", "error" or "skipped"
    fields: tuple[str, ...] = ()  # from a `failing_fields` property, when the test recorded one
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass(frozen=True)
class Case:
    id: str
    line: int
    expected: dict[str, Any]
    actual: dict[str, Any]
    must_not_miss: tuple[str, ...]
    verdict: Verdict | None = None  # JUnit cases; None means judged by comparing fields


@dataclass(frozen=True)
class Miss:
    field: str
    expected: Any
    actual: Any


@dataclass(frozen=True)
class FailingCase:
    id: str
    line: int
    misses: tuple[Miss, ...]
    message: str | None = None  # JUnit: the failure's kind and message


@dataclass(frozen=True)
class EvalScore:
    score: float  # percent, 0-100, rounded to 2 decimals
    cases: int
    passed: int
    field_accuracy: dict[str, float]  # field -> percent of cases where it matched
    failing: tuple[FailingCase, ...]  # failing must-not-miss cases, the first MAX_FAILING
    failing_total: int
    skipped: int = 0  # JUnit `skipped` cases, left out of `cases` and the score
    results: tuple[CaseResult, ...] = field(default=(), repr=False)  # every case, in file order

    def summary_lines(self) -> list[str]:
        what = "pass every must-not-miss field" if self.field_accuracy else "pass"  # JUnit cases have no fields
        lines = [f"{self.passed} of {self.cases} cases {what}."]
        if self.skipped:
            lines.append(f"{self.skipped} skipped {'case was' if self.skipped == 1 else 'cases were'} left out.")
        if self.field_accuracy:
            lines.append(
                "Per field: " + ", ".join(f"{k} {_pct(v)}" for k, v in sorted(self.field_accuracy.items())) + "."
            )
        for f in self.failing:
            if f.message is not None:
                lines.append(f"✗ {f.id} (line {f.line}): {f.message}")
                continue
            misses = "; ".join(f"{m.field}: expected {_show(m.expected)}, got {_show(m.actual)}" for m in f.misses)
            lines.append(f"✗ {f.id} (line {f.line}): {misses}")
        if self.failing_total > len(self.failing):
            lines.append(f"… and {self.failing_total - len(self.failing)} more failing cases.")
        return lines


class EvalFileError(UserError):
    """Malformed rows, by line number; nothing was recorded.

    `errors` keeps the first MAX_ERRORS_KEPT (a 600 KB file of bad rows must not answer with
    300,000 of them), `total` counts them all and `more` the ones left out.
    """

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.total = len(errors)
        self.errors = errors[:MAX_ERRORS_KEPT]
        self.more = self.total - len(self.errors)
        shown = "; ".join(f"line {n}: {msg}" for n, msg in errors[:MAX_ERRORS_SHOWN])
        more = f" (and {self.total - MAX_ERRORS_SHOWN} more)" if self.total > MAX_ERRORS_SHOWN else ""
        noun = "row" if self.total == 1 else "rows"
        super().__init__(f"The eval file has {self.total} malformed {noun}, nothing was recorded — {shown}{more}.")


def _pct(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") + "%"


def _show(v: Any) -> str:
    if v is None:
        return "nothing"
    text = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else f'"{v}"'
    return text if len(text) <= 60 else text[:57] + "…"


# ---- normalisation ----


def _as_number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        try:
            n = float(v)
        except OverflowError:  # an int beyond float range: compared by its digits instead
            return None
        return n if math.isfinite(n) else None
    if isinstance(v, str):
        t = v.strip()
        if not t or t.lower() in ("nan", "inf", "-inf", "infinity", "-infinity", "+inf"):
            return None
        try:
            n = float(t)
        except ValueError:
            return None
        return n if math.isfinite(n) else None
    return None


def normalise(v: Any) -> Any:
    """Comparable form: numbers as float, strings trimmed and case-folded, null as ""."""
    if v is None:
        return ""
    n = _as_number(v)
    if n is not None:
        return n
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v.strip().casefold()
    if isinstance(v, list):
        return tuple(normalise(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((str(k).strip().casefold(), normalise(x)) for k, x in v.items()))
    return str(v).strip().casefold()


def matches(expected: Any, actual: Any) -> bool:
    a, b = normalise(expected), normalise(actual)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


# ---- parsing ----


def _check_id(raw: Any, line: int, errors: list[tuple[int, str]]) -> str | None:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        errors.append((line, "`id` is missing or not a string"))
        return None
    text = str(raw).strip()
    if not text or len(text) > MAX_ID:
        errors.append((line, f"`id` must be 1–{MAX_ID} characters"))
        return None
    return text


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # only JSON escapes can make one: the text is UTF-8


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _value_problem(value: Any, surrogates: bool) -> str | None:
    """Why a parsed value cannot be compared honestly, or None. Iterative: depth is what it checks."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()  # the row is depth 0, `expected` 1, a field's value 2
        if depth - 1 > MAX_DEPTH and isinstance(v, list | dict):
            return f"a value is nested deeper than {MAX_DEPTH} levels; flatten it"
        if isinstance(v, str):
            if surrogates and _has_surrogate(v):
                return "a string holds a lone surrogate escape (like `\\ud800`), which is not text; remove it"
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)
        elif isinstance(v, dict):
            folded: dict[str, str] = {}
            for k, x in v.items():
                if surrogates and _has_surrogate(k):
                    return "a key holds a lone surrogate escape (like `\\ud800`), which is not text; remove it"
                fk = k.strip().casefold()
                if depth > 1 and fk in folded:  # depth 0 is the row, 1 expected/actual: field names are exact
                    first, second = folded[fk][:40], k[:40]
                    return f"keys `{first}` and `{second}` are the same once case and spaces are ignored; keep one"
                folded[fk] = k
                stack.append((x, depth + 1))
    return None


def _load_row(raw: str) -> Any:
    """The parsed row, or a refusal sentence (str wrapped in a tuple) for the line."""
    try:
        row = json.loads(raw)
    except RecursionError:
        return (f"a value is nested deeper than {MAX_DEPTH} levels; flatten it",)
    except json.JSONDecodeError:
        return ("not valid JSON",)
    except ValueError:  # Python refuses integers of more than 4300 digits
        return ("a number has too many digits; write it as a string",)
    surrogates = "\\u" in raw and _SURROGATE_ESCAPE.search(raw) is not None
    braces = raw.count("{")
    # The walk costs; a row with no object inside a field value and few brackets cannot fail it.
    if surrogates or braces > 3 or braces + raw.count("[") > MAX_DEPTH:
        problem = _value_problem(row, surrogates)
        if problem:
            return (problem,)
    return row


def parse_jsonl(text: str) -> list[Case]:
    cases: list[Case] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        row = _load_row(raw)
        if isinstance(row, tuple):
            errors.append((n, row[0]))
            continue
        if not isinstance(row, dict):
            errors.append((n, "a row must be a JSON object"))
            continue
        cid = _check_id(row.get("id"), n, errors)
        expected, actual = row.get("expected"), row.get("actual", {})
        if not isinstance(expected, dict) or not expected:
            errors.append((n, "`expected` must be a non-empty object of field -> value"))
            continue
        if not isinstance(actual, dict):
            errors.append((n, "`actual` must be an object of field -> value"))
            continue
        mnm_raw = row.get("must_not_miss", list(expected))
        if not isinstance(mnm_raw, list) or not all(isinstance(f, str) for f in mnm_raw):
            errors.append((n, "`must_not_miss` must be a list of field names"))
            continue
        unknown = [f for f in mnm_raw if f not in expected]
        if unknown:
            errors.append((n, f"`must_not_miss` names {', '.join(unknown[:3])}, not in `expected`"))
            continue
        if cid is None:
            continue
        if cid in seen:
            errors.append((n, f"duplicate id `{cid}` (first on line {seen[cid]})"))
            continue
        seen[cid] = n
        cases.append(Case(cid, n, dict(expected), dict(actual), tuple(dict.fromkeys(mnm_raw))))
    return _finish(cases, errors)


def _flag(raw: str | None) -> bool | None:
    word = (raw or "").strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def parse_csv(text: str) -> list[Case]:
    errors: list[tuple[int, str]] = []
    try:
        reader = csv.reader(io.StringIO(text))
        rows = list(reader)
    except csv.Error as e:
        raise EvalFileError([(0, f"not valid CSV ({e})")]) from None
    if not rows:
        raise EvalFileError([(1, "the file is empty; the header is `" + ",".join(CSV_COLUMNS) + "`")])
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in CSV_COLUMNS[:4] if c not in header]
    if missing:
        raise EvalFileError([(1, f"the header lacks {', '.join(missing)}; it is `{','.join(CSV_COLUMNS)}`")])
    col = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    grouped: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            errors.append((n, f"expected {len(header)} columns, found {len(row)}"))
            continue
        cid = _check_id(row[col["id"]], n, errors)
        fld = row[col["field"]].strip()
        if not fld:
            errors.append((n, "`field` is empty"))
            continue
        flag = _flag(row[col["must_not_miss"]]) if "must_not_miss" in col else True
        if flag is None:
            errors.append((n, f"must_not_miss is `{row[col['must_not_miss']][:20]}`, not true or false"))
            continue
        if cid is None:
            continue
        case = grouped.setdefault(cid, {"line": n, "expected": {}, "actual": {}, "mnm": [], "lines": {}})
        if fld in case["expected"]:
            errors.append((n, f"duplicate field `{fld}` for id `{cid}` (first on line {case['lines'][fld]})"))
            continue
        case["lines"][fld] = n
        case["expected"][fld] = row[col["expected"]]
        case["actual"][fld] = row[col["actual"]]
        if flag:
            case["mnm"].append(fld)
    cases = [Case(cid, c["line"], c["expected"], c["actual"], tuple(c["mnm"])) for cid, c in grouped.items()]
    return _finish(cases, errors)


def _finish(cases: list[Case], errors: list[tuple[int, str]]) -> list[Case]:
    if errors:
        raise EvalFileError(sorted(errors))
    if not cases:
        raise EvalFileError([(1, "no cases found")])
    return cases


FORMATS = ("jsonl", "csv", "junit")


def parse_labelled(text: str, fmt: str) -> list[Case]:
    """fmt is one of FORMATS: `jsonl`, `csv` or `junit` (JUnit XML)."""
    if fmt == "csv":
        return parse_csv(text)
    if fmt == "jsonl":
        return parse_jsonl(text)
    if fmt == "junit":
        from bot.evals.junit import parse_junit  # it builds on this module's Case and EvalFileError

        return parse_junit(text)
    raise ValueError(f"unknown format {fmt!r}")


def format_of(filename: str | None = None, content_type: str | None = None) -> str | None:
    """`jsonl`, `csv` or `junit` from a Content-Type or a file name; None when neither says."""
    if content_type:
        ct = content_type.split(";", 1)[0].strip().lower()
        if ct in ("text/csv", "application/csv"):
            return "csv"
        if ct in ("application/xml", "text/xml", "application/junit+xml"):
            return "junit"
        if ct in ("application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/json-lines"):
            return "jsonl"
        return None
    if filename:
        lower = filename.lower()
        if lower.endswith(".csv"):
            return "csv"
        if lower.endswith((".jsonl", ".ndjson")):
            return "jsonl"
        if lower.endswith(".xml"):
            return "junit"
    return None


# ---- scoring ----


def score_cases(cases: list[Case]) -> EvalScore:
    """Score and per-case results. JUnit `skipped` cases are left out of both (counted in `skipped`)."""
    passed = 0
    hits: dict[str, int] = {}
    seen: dict[str, int] = {}
    failing: list[FailingCase] = []
    failing_total = skipped = 0
    results: list[CaseResult] = []
    for case in cases:
        if case.verdict is not None:
            if case.verdict.outcome == "skipped":
                skipped += 1
                continue
            missed = list(case.verdict.fields)
            ok_case = case.verdict.passed
        else:
            ok = {f: matches(e, case.actual.get(f)) for f, e in case.expected.items()}
            for f, hit in ok.items():
                seen[f] = seen.get(f, 0) + 1
                hits[f] = hits.get(f, 0) + (1 if hit else 0)
            missed = [f for f in case.must_not_miss if not ok[f]]
            ok_case = not missed
        results.append(CaseResult(case.id, ok_case, () if ok_case else tuple(missed)))
        if ok_case:
            passed += 1
            continue
        failing_total += 1
        if len(failing) < MAX_FAILING:
            failing.append(_failing(case, missed))
    total = len(results)
    if not total:
        raise EvalFileError([(1, f"no cases to score: all {skipped} were skipped")])
    accuracy = {f: round(hits[f] / seen[f] * 100, 2) for f in seen}
    score = round(passed / total * 100, 2)
    return EvalScore(score, total, passed, accuracy, tuple(failing), failing_total, skipped, tuple(results))


def _failing(case: Case, missed: list[str]) -> FailingCase:
    if case.verdict is not None:
        text = case.verdict.outcome + (f": {case.verdict.message}" if case.verdict.message else "")
        return FailingCase(case.id, case.line, (), text)
    return FailingCase(case.id, case.line, tuple(Miss(f, case.expected[f], case.actual.get(f)) for f in missed))


def score_text(text: str, fmt: str) -> EvalScore:
    return score_cases(parse_labelled(text, fmt))
