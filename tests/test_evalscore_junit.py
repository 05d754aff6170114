"""JUnit XML, the third labelled format: a real report written by pytest --junitxml, and the
shapes and hostile inputs a report can take."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.evalscore import EvalFileError, format_of, parse_labelled, score_text
from storage.cases import CaseResult

GENERATED = textwrap.dedent(
    """
    import pytest

    def test_pass():
        assert 1 + 1 == 2

    def test_fail():
        assert {"party": "Acme"} == {"party": "Beta"}

    @pytest.fixture
    def broken():
        raise RuntimeError("database down")

    def test_error(broken):
        pass

    def test_skip():
        pytest.skip("not on this platform")

    @pytest.mark.xfail(reason="known")
    def test_xfail():
        assert False

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_param(n):
        assert n != 2

    class TestExtraction:
        def test_amount(self, record_property):
            record_property("failing_fields", "amount, party")
            assert 1200 == 1201

        def test_party(self):
            pass
    """
)


@pytest.fixture(scope="module")
def pytest_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Run pytest on a generated module and return the JUnit XML it wrote."""
    here = tmp_path_factory.mktemp("junit")
    (here / "test_generated.py").write_text(GENERATED)
    out = here / "report.xml"
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={out}", "test_generated.py"],
        cwd=here,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # some tests fail, on purpose
    return out.read_text(encoding="utf-8")


def test_a_real_pytest_report(pytest_report: str) -> None:
    s = score_text(pytest_report, "junit")
    assert list(s.results) == [
        CaseResult("test_generated::test_pass", True),
        CaseResult("test_generated::test_fail", False),
        CaseResult("test_generated::test_error", False),
        CaseResult("test_generated::test_param[1]", True),
        CaseResult("test_generated::test_param[2]", False),
        CaseResult("test_generated::test_param[3]", True),
        CaseResult("test_generated.TestExtraction::test_amount", False, ("amount", "party")),
        CaseResult("test_generated.TestExtraction::test_party", True),
    ]
    assert (s.cases, s.passed, s.skipped, s.score, s.failing_total) == (8, 4, 2, 50.0, 4)
    assert s.field_accuracy == {}
    lines = s.summary_lines()
    assert lines[:2] == ["4 of 8 cases pass.", "2 skipped cases were left out."]
    assert any(line.startswith("✗ test_generated::test_fail (line ") and "failure: " in line for line in lines)
    assert any("test_generated::test_error" in line and "error: " in line for line in lines)


def report(*cases: str, root: str = "testsuites") -> str:
    body = "".join(c + "\n" for c in cases)
    return f'<?xml version="1.0" encoding="utf-8"?>\n<{root}><testsuite name="pytest">\n{body}</testsuite></{root}>'


@pytest.mark.parametrize(
    ("xml", "results", "skipped"),
    [
        (report('<testcase name="c1"/>'), [CaseResult("c1", True)], 0),  # no classname: the name alone
        (report('<testcase classname="" name="c1"/>'), [CaseResult("c1", True)], 0),
        (
            report(
                '<testcase name="c1"><failure message="x"/></testcase>', '<testcase name="c2"><skipped/></testcase>'
            ),
            [CaseResult("c1", False)],
            1,
        ),
        # listed twice (teardown error after a pass): one case, failed
        (
            report('<testcase name="c1"/>', '<testcase name="c1"><error message="teardown"/></testcase>'),
            [CaseResult("c1", False)],
            0,
        ),
        # a skip then a pass of the same id: passed; a failure then a pass: failed
        (
            report('<testcase name="a"><skipped/></testcase>', '<testcase name="a"/>'),
            [CaseResult("a", True)],
            0,
        ),
        (
            report('<testcase name="a"><failure/></testcase>', '<testcase name="a"/>'),
            [CaseResult("a", False)],
            0,
        ),
        # a failure beats a skip in the same testcase
        (report('<testcase name="a"><skipped/><failure/></testcase>'), [CaseResult("a", False)], 0),
        # a bare <testsuite> root, nested suites, properties on a passing case ignored
        (
            '<testsuite><testsuite><testcase name="a"><properties>'
            '<property name="failing_fields" value="party"/></properties></testcase></testsuite></testsuite>',
            [CaseResult("a", True)],
            0,
        ),
    ],
)
def test_report_shapes(xml: str, results: list[CaseResult], skipped: int) -> None:
    s = score_text(xml, "junit")
    assert (list(s.results), s.skipped) == (results, skipped)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<testsuites><testsuite><testcase name="&lol3;"/></testsuite></testsuites>"""

EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<testsuites><testsuite><testcase name="&x;"/></testsuite></testsuites>"""


@pytest.mark.parametrize(
    ("xml", "fragment"),
    [
        (BILLION_LAUGHS, "a DOCTYPE is not accepted"),
        (EXTERNAL, "a DOCTYPE is not accepted"),
        ("<testsuites><testcase name='a'>", "not valid XML"),
        ("not xml at all", "not valid XML"),
        ('<results><case id="a"/></results>', "the root element is `results`"),
        ("<testsuites><testsuite/></testsuites>", "no `<testcase>` found"),
        (report('<testcase name="a"><skipped/></testcase>'), "no cases to score: all 1 were skipped"),
        (report('<testcase classname="m"/>'), "a `<testcase>` without a `name`"),
        (report(f'<testcase name="{"x" * 201}"/>'), "longer than 200 characters"),
        (report('<testcase name="a"><testcase name="b"/></testcase>'), "inside another `<testcase>`"),
        (report('<testcase name="a&#xD800;"/>'), "not valid XML"),  # no lone surrogate gets through
    ],
)
def test_refused_reports(xml: str, fragment: str) -> None:
    with pytest.raises(EvalFileError) as e:
        parse_labelled(xml, "junit") if "skipped" not in fragment else score_text(xml, "junit")
    assert fragment in e.value.sentence and "nothing was recorded" in e.value.sentence


def test_refusal_names_the_line() -> None:
    xml = report('<testcase name="a"/>', '<testcase classname="m"/>')
    with pytest.raises(EvalFileError) as e:
        parse_labelled(xml, "junit")
    assert e.value.errors == [(4, "a `<testcase>` without a `name`")]


def test_format_of_junit() -> None:
    assert format_of(filename="report.XML") == "junit"
    assert format_of(content_type="application/xml; charset=utf-8") == "junit"
    assert format_of(content_type="text/xml") == "junit"
    assert format_of(content_type="application/junit+xml") == "junit"


def test_pytest_report_file_round_trip(pytest_report: str, tmp_path: Path) -> None:
    """The same report read from disk as the CLI reads it (utf-8-sig) scores the same."""
    path = tmp_path / "r.xml"
    path.write_bytes(b"\xef\xbb\xbf" + pytest_report.encode("utf-8"))
    assert score_text(path.read_text(encoding="utf-8-sig"), "junit").score == 50.0
