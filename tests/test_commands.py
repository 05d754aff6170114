"""The grammar (pure): every command, its variants, and one-sentence errors with the correct form."""

from __future__ import annotations

from datetime import date

import pytest

from bot import commands as c
from bot.errors import UserError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", c.Help()),
        ("help", c.Help()),
        ("/pilot help", c.Help()),
        ("pilot STATUS", c.Status(None)),
        ("status Support-Drafts", c.Status("support-drafts")),
        ("new legal-intake Legal   intake extraction", c.New("legal-intake", "Legal   intake extraction")),
        ("new ab", c.New("ab", None)),
        ("owner x1 <@U024BE7LH|bob>", c.SetOwner("x1", c.UserRef("U024BE7LH", "bob"))),
        ("owner x1 <@U024BE7LH>", c.SetOwner("x1", c.UserRef("U024BE7LH", None))),
        ("owner x1 @dana", c.SetOwner("x1", c.UserRef("dana", "dana", bare=True))),
        ("owner x1 <@29:1abc-DEF|Li Wei>", c.SetOwner("x1", c.UserRef("29:1abc-DEF", "Li Wei"))),
        ("golive x1 2026-09-28", c.GoLive("x1", date(2026, 9, 28))),
        ("baseline x1 handle_time 14 min", c.Baseline("x1", "handle_time", 14, "min", None, None)),
        ("baseline x1 handle_time 14min", c.Baseline("x1", "handle_time", 14, "min", None, None)),
        (
            "baseline x1 Handle_Time 14 min LOWER at 2026-09-14",
            c.Baseline("x1", "handle_time", 14, "min", "lower", date(2026, 9, 14)),
        ),
        ("baseline x1 csat 4.5 higher", c.Baseline("x1", "csat", 4.5, None, "higher", None)),
        ("baseline x1 revision_rate 38%", c.Baseline("x1", "revision_rate", 38, "%", None, None)),
        ("baseline x1 cost $1200", c.Baseline("x1", "cost", 1200, "$", None, None)),
        ("measure x1 handle_time 9", c.Measure("x1", "handle_time", 9, None)),
        ("measure x1 handle_time 9.5min", c.Measure("x1", "handle_time", 9.5, "min")),
        ("threshold x1 95", c.Threshold("x1", 95, None, None)),
        ("threshold x1 95.5% min-cases 150", c.Threshold("x1", 95.5, 150, None)),
        ("threshold x1 0.95", c.Threshold("x1", 95, None, None, True)),
        ("threshold x1 95 drop-alert 3", c.Threshold("x1", 95, None, 3)),
        ("eval x1 96.2% cases 150", c.Eval("x1", 96.2, 150, None)),
        ("eval x1 96.2 cases 150 version prompt v7", c.Eval("x1", 96.2, 150, "prompt v7")),
        ("eval x1 0.962 cases 150", c.Eval("x1", 96.2, 150, None, True)),
        ("eval x1 100% cases 1", c.Eval("x1", 100, 1, None)),
        ("path x1 rollback done", c.Path("x1", "rollback", "done", None)),
        ("path x1 Kill_Switch TODO", c.Path("x1", "kill-switch", "todo", None)),
        (
            "path x1 rollback done <https://wiki/runbook|runbook> tested",
            c.Path("x1", "rollback", "done", "<https://wiki/runbook|runbook> tested"),
        ),
        ("checkin x1 monday 09:00", c.CheckinCadence("x1", 0, "09:00", None)),
        ("checkin x1 Fri 9:30 europe/berlin", c.CheckinCadence("x1", 4, "09:30", "Europe/Berlin")),
        ("escalate x1 <#C01|ops>", c.Escalate("x1", c.ChannelRef("C01", "ops"))),
        ("escalate x1 #ai-pilots", c.Escalate("x1", c.ChannelRef("ai-pilots", "ai-pilots", bare=True))),
        ("history x1", c.History("x1")),
        ("audit x1", c.Audit("x1")),
    ],
)
def test_parse(text: str, expected: c.Command) -> None:
    assert c.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "must_contain"),
    [
        ("new", "Which pilot?"),
        ("new X_Y", "not a valid slug"),
        ("new -abc", "not a valid slug"),
        ("new a", "not a valid slug"),
        ("status a b", "did not expect `b`"),
        ("owner x1", "Mention the user"),
        ("owner x1 bob", "not a user mention"),
        ("golive x1 28.09.2026", "YYYY-MM-DD"),
        ("golive x1 2026-02-30", "YYYY-MM-DD"),
        ("baseline x1 handle_time", "value is missing"),
        ("baseline x1 handle_time fourteen", "not a number"),
        ("baseline x1 handle_time 9,5", "decimal point"),
        ("measure x1 handle_time 9,5", "write `9.5`"),
        ("baseline x1 handle_time 14 min sideways", "did not expect"),
        ("baseline x1 bad-key 14", "not a valid metric key"),
        ("threshold x1 101", "between 0 and 100"),
        ("threshold x1 -5", "between 0 and 100"),
        ("threshold x1 95 min-cases zero", "whole number"),
        ("threshold x1 95 min-cases 0", "between 1 and"),
        ("eval x1 96", "cases <n>"),
        ("eval x1 96 cases -3", "whole number"),
        ("eval x1 120% cases 10", "between 0 and 100"),
        ("eval x1 96 cases 10 version", "version text is missing"),
        ("path x1 deploy done", "not a path item"),
        ("path x1 rollback finished", "`done` or `todo`"),
        ("checkin x1 someday 09:00", "not a weekday"),
        ("checkin x1 monday 25:00", "HH:MM"),
        ("checkin x1 monday 09:00 Mars/Olympus", "IANA time zone"),
        ("escalate x1 ops", "not a channel mention"),
        ("baseline x1 t nan", "not a number"),
        ("baseline x1 t 1e400", "write it out in full"),
    ],
)
def test_errors_are_one_sentence_with_the_form(text: str, must_contain: str) -> None:
    with pytest.raises(UserError) as err:
        c.parse(text)
    sentence = err.value.sentence
    assert must_contain in sentence
    assert "\n" not in sentence
    assert sentence.endswith((".", "?"))


def test_usage_error_shows_correct_form() -> None:
    with pytest.raises(UserError) as err:
        c.parse("eval x1 96")
    assert "`eval <slug> <pct> cases <n> [version <text>]`" in err.value.sentence


def test_unknown_command() -> None:
    with pytest.raises(c.UnknownCommand):
        c.parse("deploy everything")


def test_every_command_has_a_parser_and_help_line() -> None:
    from bot.views import help_reply

    text = "\n".join(help_reply().lines)
    for name in c.COMMAND_NAMES:
        assert f"`{name}" in text
    for _, usage, example, _ in c.GRAMMAR:
        c.parse(example)  # every example in the help parses
        assert usage.split()[0] in c.COMMAND_NAMES


@pytest.mark.parametrize(
    ("number", "text"),
    [(14, "14"), (9.25, "9.25"), (0.95, "0.95"), (-1, "-1"), (0, "0"), (96.2, "96.2")],
)
def test_a_json_number_reads_as_its_text_does(number: float, text: str) -> None:
    """The REST API hands JSON numbers to the same parser the grammar uses."""
    assert c.parse_value(number, "measure") == c.parse_value(text, "measure")
    if 0 <= number <= 100:
        assert c.parse_pct(number, "eval", "score") == c.parse_pct(text, "eval", "score")


@pytest.mark.parametrize("number", [1e15, -1e20, 10**400, float("nan"), float("inf")])
def test_a_json_number_out_of_range_is_refused(number: float) -> None:
    with pytest.raises(UserError, match="out of range"):
        c.parse_value(number, "measure")


@pytest.mark.parametrize(("number", "ok"), [(150, True), (0, False), (-3, False), (10**12, False)])
def test_a_json_integer_reads_as_a_whole_number(number: int, ok: bool) -> None:
    if ok:
        assert c.parse_int(number, "eval", "cases") == number
    else:
        with pytest.raises(UserError):
            c.parse_int(number, "eval", "cases")


def test_escalation_to_check_is_an_escalate_naming_a_channel_id() -> None:
    from bot.commands import Escalate, escalation_to_check

    found = escalation_to_check("escalate support-drafts <#C123|ai-pilots>")
    assert isinstance(found, Escalate) and found.channel.id == "C123" and found.slug == "support-drafts"
    assert escalation_to_check("escalate support-drafts #ai-pilots") is None  # bare name: nothing to ask
    assert escalation_to_check("status support-drafts") is None
    assert escalation_to_check("escalate") is None  # refused by the grammar: no check
