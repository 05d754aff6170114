"""JUnit XML as pytest `--junitxml` (and the eval tools that reuse it) writes it -> labelled cases.

- One `<testcase>` is one case; its id is `classname::name`, or `name` when there is no classname.
- A `<failure>` or `<error>` child makes the case failed (an error is a test that crashed, which
  is still a case the system got wrong).
- A `<skipped>` child (pytest `skip`, and `xfail`, which pytest writes as skipped) leaves the case
  out of the run: it is neither passed nor failed, is not counted in `cases` or the score, and so
  never shows as a flip; the summary says how many were skipped. A failure beats a skip.
- A case listed twice (pytest writes a second entry when teardown errors after a failed call) is
  one case: failed if any entry failed.
- Failing fields: a test may name them with `record_property("failing_fields", "party,amount")`
  (a `<property name="failing_fields">` in the testcase); otherwise a failed case names none.

Safety: the stdlib expat parser with any DOCTYPE refused outright, so there are no entity
declarations to expand (billion laughs) and no external entities or DTDs to fetch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

from bot.evalscore import MAX_ID, Case, EvalFileError, Verdict

ROOTS = ("testsuites", "testsuite")
FIELDS_PROPERTY = "failing_fields"
MAX_MESSAGE = 200


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message


@dataclass
class _Open:
    """The testcase being read."""

    id: str
    line: int
    outcome: str = "passed"
    message: str = ""
    fields: tuple[str, ...] = ()


@dataclass
class _Reader:
    parser: Any
    cases: dict[str, Case] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)
    depth: int = 0
    current: _Open | None = None

    def start(self, name: str, attrs: dict[str, str]) -> None:
        line = self.parser.CurrentLineNumber
        self.depth += 1
        if self.depth == 1 and name not in ROOTS:
            raise _Refused(line, f"the root element is `{name[:40]}`; a JUnit report starts with `<testsuites>`")
        if name == "testcase":
            if self.current is not None:
                raise _Refused(line, "a `<testcase>` inside another `<testcase>`")
            self.current = _Open(self._id(attrs, line), line)
            return
        cur = self.current
        if cur is None:
            return
        if name in ("failure", "error"):
            if cur.outcome in ("passed", "skipped"):
                cur.outcome, cur.message = name, _message(attrs)
        elif name == "skipped" and cur.outcome == "passed":
            cur.outcome = "skipped"
        elif name == "property" and attrs.get("name") == FIELDS_PROPERTY:
            cur.fields = tuple(f for f in (p.strip() for p in attrs.get("value", "").split(",")) if f)

    def end(self, name: str) -> None:
        self.depth -= 1
        if name == "testcase" and self.current is not None:
            self._close(self.current)
            self.current = None

    def _id(self, attrs: dict[str, str], line: int) -> str:
        name, classname = attrs.get("name", "").strip(), attrs.get("classname", "").strip()
        if not name:
            self.errors.append((line, "a `<testcase>` without a `name`"))
        cid = f"{classname}::{name}" if classname else name
        if len(cid) > MAX_ID:
            self.errors.append((line, f"the case id `{cid[:40]}…` is longer than {MAX_ID} characters"))
        return cid

    def _close(self, c: _Open) -> None:
        fields = c.fields if c.outcome in ("failure", "error") else ()
        case = Case(c.id, c.line, {}, {}, (), Verdict(c.outcome, fields, c.message))
        earlier = self.cases.get(c.id)
        if earlier is not None and earlier.verdict is not None:
            if _RANK[earlier.verdict.outcome] >= _RANK[c.outcome]:
                return  # the first failure stands; a later pass or skip changes nothing
            case = Case(c.id, earlier.line, {}, {}, (), case.verdict)
        self.cases[c.id] = case


_RANK = {"skipped": 0, "passed": 1, "failure": 2, "error": 2}


def _message(attrs: dict[str, str]) -> str:
    text = " ".join(attrs.get("message", "").split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _refuse_doctype(*_: Any) -> None:
    raise _Refused(0, "a DOCTYPE is not accepted in a JUnit report; remove the `<!DOCTYPE …>` line")


def parse_junit(text: str) -> list[Case]:
    parser = expat.ParserCreate()
    reader = _Reader(parser)
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(text, True)
    except _Refused as e:
        raise EvalFileError([(e.line or parser.CurrentLineNumber, e.message)]) from None
    except expat.ExpatError as e:
        raise EvalFileError([(e.lineno, f"not valid XML ({expat.ErrorString(e.code)})")]) from None
    if reader.errors:
        raise EvalFileError(reader.errors)
    if not reader.cases:
        raise EvalFileError([(1, "no `<testcase>` found; is this a JUnit XML report?")])
    return list(reader.cases.values())
