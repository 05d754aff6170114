"""Hostile and careless eval files (issue 12): one clear refusal by line, never a crash."""

from __future__ import annotations

import json

import pytest

from bot.evalscore import MAX_ERRORS_KEPT, EvalFileError, score_text


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def row(expected: str, actual: str = '{"x": 1}', cid: str = '"a"') -> str:
    return f'{{"id": {cid}, "expected": {expected}, "actual": {actual}}}'


DEEP = "a value is nested deeper than 32 levels; flatten it"
CLASH = "keys `A` and `a` are the same once case and spaces are ignored; keep one"
SURROGATE_VALUE = "a string holds a lone surrogate escape"
SURROGATE_KEY = "a key holds a lone surrogate escape"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (row(f'{{"x": {nested(600)}}}', f'{{"x": {nested(600)}}}'), DEEP),
        (row('{"x": 1}', f'{{"x": {nested(100_000)}}}'), DEEP),  # deeper than the JSON parser goes
        (row('{"x": 1}', f'{{"x": {nested(33)}}}'), DEEP),
        (row('{"x": {"A": 1, "a": "b"}}'), CLASH),
        (row('{"x": [{"A": 1, " a ": 2.5}]}'), "keys `A` and ` a ` are the same"),
        (row('{"x": 1}', '{"x": {"A": "1", "a": 1}}'), CLASH),
        (row('{"x": 1}', cid='"c\\ud800"'), SURROGATE_VALUE),
        (row('{"x": "caf\\udfff"}'), SURROGATE_VALUE),
        (row('{"x\\ud800": 1}'), SURROGATE_KEY),
        (row('{"x": {"k\\uDBFF": 1}}'), SURROGATE_KEY),
        (row('{"x": ' + "9" * 5000 + "}"), "a number has too many digits; write it as a string"),
    ],
)
def test_refused_rows(line: str, fragment: str) -> None:
    with pytest.raises(EvalFileError) as e:
        score_text('{"id": "ok", "expected": {"x": 1}}\n' + line + "\n", "jsonl")
    assert [n for n, _ in e.value.errors] == [2]
    assert fragment in e.value.sentence and e.value.sentence.startswith("The eval file has 1 malformed row")


@pytest.mark.parametrize(
    "line",
    [
        row(f'{{"x": {nested(32)}}}', f'{{"x": {nested(32)}}}'),  # as deep as allowed
        row('{"Party": "a", "party": "b"}', '{"Party": "a", "party": "b"}'),  # field names are exact
        row('{"x": "\\ud83d\\ude00"}', '{"x": "😀"}'),  # a surrogate pair is one character
        row('{"x": {"a": 1, "b": 2}}', '{"x": {"B": 2, "A": 1}}'),
        row('{"x": 1' + "0" * 400 + "}", '{"x": 1' + "0" * 400 + "}"),  # an int beyond float range
    ],
)
def test_accepted_rows(line: str) -> None:
    assert score_text(line + "\n", "jsonl").passed == 1


def test_the_refusal_keeps_the_first_50_errors_and_counts_the_rest() -> None:
    text = "".join(f'{{"id": "c{i}"}}\n' for i in range(300))
    with pytest.raises(EvalFileError) as e:
        score_text(text, "jsonl")
    err = e.value
    assert (len(err.errors), err.total, err.more) == (MAX_ERRORS_KEPT, 300, 250)
    assert [n for n, _ in err.errors] == list(range(1, 51))
    assert err.sentence.startswith("The eval file has 300 malformed rows, nothing was recorded")
    assert err.sentence.endswith("(and 295 more).")
    assert len(err.sentence) < 600


def test_scores_of_the_two_shapes_agree_after_the_checks() -> None:
    """The nested-value walk must not change a score: the same rows with and without it."""
    rows = [
        {
            "id": f"c{i}",
            "expected": {"x": {"k": i, "l": [i, {"m": "A"}]}},
            "actual": {"x": {"K": i, "l": [i, {"M": "a"}]}},
        }
        for i in range(50)
    ]
    s = score_text("\n".join(json.dumps(r) for r in rows), "jsonl")
    assert (s.cases, s.passed) == (50, 50)
