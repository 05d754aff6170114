"""Score a labelled eval set: JSONL or CSV rows -> score, per-field accuracy, failing must-not-miss cases.

Pure: no I/O, no clock. Any malformed row makes the whole file refused (errors by line number),
so nothing is recorded from a half-read file.

JSONL, one case a line:
    {"id": "c1", "expected": {"party": "Acme", "amount": 1200},
     "actual": {"party": "acme ", "amount": "1200.0"}, "must_not_miss": ["party", "amount"]}
`must_not_miss` is optional: when absent, every expected field is must-not-miss.

CSV, header `id,field,expected,actual,must_not_miss`, one row per (case, field); must_not_miss is
true/false (also yes/no, 1/0; empty or a missing column means true).

A field matches when expected and actual are equal after normalising: strings trimmed and
case-folded, numbers (also numeric strings) compared as numbers, null and a missing value equal to "".
A case passes when every must-not-miss field matches; the score is the share of passing cases.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any

from bot.errors import UserError

MAX_ERRORS_SHOWN = 5
MAX_ID = 200
MAX_FAILING = 10
TRUE_WORDS = frozenset({"true", "yes", "y", "1", ""})
FALSE_WORDS = frozenset({"false", "no", "n", "0"})
CSV_COLUMNS = ("id", "field", "expected", "actual", "must_not_miss")


@dataclass(frozen=True)
class Case:
    id: str
    line: int
    expected: dict[str, Any]
    actual: dict[str, Any]
    must_not_miss: tuple[str, ...]


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


@dataclass(frozen=True)
class EvalScore:
    score: float  # percent, 0-100, rounded to 2 decimals
    cases: int
    passed: int
    field_accuracy: dict[str, float]  # field -> percent of cases where it matched
    failing: tuple[FailingCase, ...]  # failing must-not-miss cases, the first MAX_FAILING
    failing_total: int

    def summary_lines(self) -> list[str]:
        lines = [f"{self.passed} of {self.cases} cases pass every must-not-miss field."]
        if self.field_accuracy:
            lines.append(
                "Per field: " + ", ".join(f"{k} {_pct(v)}" for k, v in sorted(self.field_accuracy.items())) + "."
            )
        for f in self.failing:
            misses = "; ".join(f"{m.field}: expected {_show(m.expected)}, got {_show(m.actual)}" for m in f.misses)
            lines.append(f"✗ {f.id} (line {f.line}): {misses}")
        if self.failing_total > len(self.failing):
            lines.append(f"… and {self.failing_total - len(self.failing)} more failing cases.")
        return lines


class EvalFileError(UserError):
    """Malformed rows, by line number; nothing was recorded."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.errors = errors
        shown = "; ".join(f"line {n}: {msg}" for n, msg in errors[:MAX_ERRORS_SHOWN])
        more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        noun = "row" if len(errors) == 1 else "rows"
        super().__init__(f"The eval file has {len(errors)} malformed {noun}, nothing was recorded — {shown}{more}.")


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
        return float(v) if math.isfinite(v) else None
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


def parse_jsonl(text: str) -> list[Case]:
    cases: list[Case] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            errors.append((n, "not valid JSON"))
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


def parse_labelled(text: str, fmt: str) -> list[Case]:
    """fmt is `jsonl` or `csv`."""
    if fmt == "csv":
        return parse_csv(text)
    if fmt == "jsonl":
        return parse_jsonl(text)
    raise ValueError(f"unknown format {fmt!r}")


def format_of(filename: str | None = None, content_type: str | None = None) -> str | None:
    """`jsonl` or `csv` from a Content-Type or a file name; None when neither says."""
    if content_type:
        ct = content_type.split(";", 1)[0].strip().lower()
        if ct in ("text/csv", "application/csv"):
            return "csv"
        if ct in ("application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/json-lines"):
            return "jsonl"
        return None
    if filename:
        lower = filename.lower()
        if lower.endswith(".csv"):
            return "csv"
        if lower.endswith((".jsonl", ".ndjson")):
            return "jsonl"
    return None


# ---- scoring ----


def score_cases(cases: list[Case]) -> EvalScore:
    passed = 0
    hits: dict[str, int] = {}
    seen: dict[str, int] = {}
    failing: list[FailingCase] = []
    failing_total = 0
    for case in cases:
        ok = {f: matches(e, case.actual.get(f)) for f, e in case.expected.items()}
        for f, hit in ok.items():
            seen[f] = seen.get(f, 0) + 1
            hits[f] = hits.get(f, 0) + (1 if hit else 0)
        missed = [f for f in case.must_not_miss if not ok[f]]
        if missed:
            failing_total += 1
            if len(failing) < MAX_FAILING:
                misses = tuple(Miss(f, case.expected[f], case.actual.get(f)) for f in missed)
                failing.append(FailingCase(case.id, case.line, misses))
        else:
            passed += 1
    total = len(cases)
    accuracy = {f: round(hits[f] / seen[f] * 100, 2) for f in seen}
    return EvalScore(round(passed / total * 100, 2), total, passed, accuracy, tuple(failing), failing_total)


def score_text(text: str, fmt: str) -> EvalScore:
    return score_cases(parse_labelled(text, fmt))
