"""Numbers, words and text lengths as a new user meets them (issue 12), through the router on a real
database (SQLite and PostgreSQL): every refusal is one sentence and writes nothing."""

from __future__ import annotations

import pytest

from bot import commands as c
from bot import limits
from bot.core import Core
from bot.errors import UserError
from bot.ports import Actor
from bot.replies import render_text
from storage import repo
from storage.db import session_scope
from tests.helpers import row_counts

ANA = Actor("console", "ana", "Ana")


def run(core: Core, text: str) -> str:
    reply = core.router.handle(text, ANA)
    assert reply.ok, render_text(reply)
    return render_text(reply)


def refuse(core: Core, text: str) -> str:
    before = row_counts(core.engine)
    reply = core.router.handle(text, ANA)
    assert not reply.ok, render_text(reply)
    assert "went wrong" not in reply.text, reply.text
    assert row_counts(core.engine) == before, "a refused command wrote to the database"
    return reply.text


def seed(core: Core) -> None:
    run(core, "new support-drafts Support reply drafts")
    run(core, "owner support-drafts @ana")
    run(core, "baseline support-drafts handle_time 14 min lower at 2026-09-14")
    run(core, "baseline support-drafts revision_rate 38% lower at 2026-09-14")
    run(core, "baseline support-drafts cost 4.50 EUR lower at 2026-09-14")


def metric(core: Core, key: str) -> tuple[float, str, float | None]:
    """(baseline, unit, latest value) of a metric of support-drafts."""
    with session_scope(core.engine) as s:
        pilot = repo.pilot_by_slug(s, "support-drafts")
        assert pilot is not None and pilot.id is not None
        for m, latest in repo.metrics_with_latest(s, pilot.id):
            if m.key == key:
                return m.baseline, m.unit, latest.value if latest else None
    raise AssertionError(key)


# ---- numbers ----


@pytest.mark.parametrize(
    ("token", "value"), [("1,200", 1200.0), ("1,200.5", 1200.5), ("12,345,678", 12345678.0), ("$1,200", 1200.0)]
)
def test_a_thousands_separator_is_accepted(token: str, value: float) -> None:
    assert c.parse_value(token, "measure")[0] == value


@pytest.mark.parametrize(("token", "fixed"), [("0,5", "0.5"), ("1,20", "1.20"), ("14,5min", "14.5min")])
def test_a_decimal_comma_gets_the_number_it_meant(token: str, fixed: str) -> None:
    with pytest.raises(UserError) as e:
        c.parse_value(token, "measure")
    assert f"write `{fixed}` instead of `{token}`" in e.value.sentence


def test_1_200_is_1200_and_never_hinted_as_1_point_2(core: Core) -> None:
    seed(core)
    run(core, "baseline support-drafts tickets 1,200 lower at 2026-09-14")
    assert metric(core, "tickets")[0] == 1200
    run(core, "measure support-drafts tickets 1,150")
    assert metric(core, "tickets")[2] == 1150


def test_cases_take_a_thousands_separator(core: Core) -> None:
    seed(core)
    assert "on 1200 cases" in run(core, "eval support-drafts 96 cases 1,200")


def test_a_unit_the_metric_does_not_have_is_refused_naming_its_unit(core: Core) -> None:
    seed(core)
    said = refuse(core, "measure support-drafts handle_time 0.2 hours")
    assert "`handle_time` is measured in min, not hours" in said
    assert "`measure support-drafts handle_time 12 min`" in said  # 0.2 h, not 0.2 min
    said = refuse(core, "measure support-drafts cost $4.10")
    assert "`cost` is measured in EUR, not $" in said
    said = refuse(core, "baseline support-drafts cost $4.10")  # a EUR baseline does not become dollars
    assert "`cost` is measured in EUR, not $" in said
    assert metric(core, "cost")[1] == "EUR"
    run(core, "measure support-drafts handle_time 9 minutes")  # the same unit by another name


def test_a_percent_metric_reads_a_fraction_the_way_eval_does(core: Core) -> None:
    seed(core)
    said = run(core, "measure support-drafts revision_rate 0.21")
    assert "read 0.21 as 21%" in said
    assert metric(core, "revision_rate")[2] == 21
    said = run(core, "eval support-drafts 0.95 cases 100")
    assert "95%" in said


@pytest.mark.parametrize("value", ["-5", "120", "101%", "-0.5"])
def test_a_percent_metric_takes_0_to_100(core: Core, value: str) -> None:
    seed(core)
    said = refuse(core, f"measure support-drafts revision_rate {value}")
    assert "`revision_rate` is a percentage: give a value from 0 to 100" in said


def test_a_percent_baseline_is_checked_too(core: Core) -> None:
    seed(core)
    refuse(core, "baseline support-drafts revision_rate 140")
    assert "read 0.4 as 40%" in run(core, "baseline support-drafts revision_rate 0.4 at 2026-09-14")


# ---- words ----


@pytest.mark.parametrize(
    ("day", "says"),
    [
        ("2026-11-31", "2026-11-31 does not exist (November has 30 days)"),
        ("2026-02-29", "2026-02-29 does not exist (February 2026 has 28 days)"),
        ("2026-13-01", "2026-13-01 does not exist (there is no month 13"),
        ("2026-1-5", "`2026-1-5` is not a date in the form YYYY-MM-DD"),
    ],
)
def test_a_date_that_does_not_exist_says_why(core: Core, day: str, says: str) -> None:
    seed(core)
    assert says in refuse(core, f"golive support-drafts {day}")


def test_did_you_mean_for_path_items_time_zones_and_metric_keys(core: Core) -> None:
    seed(core)
    assert "Did you mean `rollback`?" in refuse(core, "path support-drafts rollbak done")
    assert "did you mean `Europe/Berlin`?" in refuse(core, "checkin support-drafts monday 09:00 Europe/Berln")
    assert "Did you mean `handle_time`?" in refuse(core, "measure support-drafts handel_time 9")


def test_a_10_kb_time_zone_is_one_refusal(core: Core) -> None:
    seed(core)
    said = refuse(core, "checkin support-drafts monday 09:00 " + "Europe/" * 1500)
    assert "is not an IANA time zone (64 characters at most)" in said


def test_a_strangers_change_says_who_may_and_how_to_become_admin(core: Core) -> None:
    seed(core)
    reply = core.router.handle("golive support-drafts 2026-10-01", Actor("slack", "U9", "eve"))
    assert not reply.ok
    assert "Only the owner of `support-drafts` (@ana) or an admin can change it." in reply.text
    assert "PILOTBOT_ADMINS" in reply.text and "`slack:U9`" in reply.text


# ---- text lengths, NUL and lone surrogates ----


def test_limits_are_the_model_column_lengths() -> None:
    assert limits.limit("pilot", "owner_name") == 200
    assert limits.limit("pilot", "owner_id") == 128
    assert c.MAX_NOTE == limits.limit("path_item", "note") == 500


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("owner support-drafts <@" + "U" * 129 + ">", "The user id is too long (129 characters; 128 at most)."),
        ("escalate support-drafts <#" + "C" * 130 + ">", "The channel id is too long (130 characters; 128 at most)."),
        ("new other-pilot " + "n" * 201, "The pilot name is too long (201 characters; 200 at most)."),
        ("new other-pilot Bad\x00name", "The pilot name contains a NUL character; remove it."),
        ("path support-drafts rollback done see\x00runbook", "The note contains a NUL character; remove it."),
        ("eval support-drafts 96 cases 100 version v\x007", "The version contains a NUL character; remove it."),
        ("eval support-drafts 96 cases 100 version v\udc807", "The version contains a broken character"),
        ("path support-drafts rollback done " + "x" * 501, "The note is too long (501 characters; 500 at most)."),
        ("status support-drafts\x00", "is not a valid slug"),
    ],
)
def test_text_fields_have_one_rule_before_the_database(core: Core, text: str, says: str) -> None:
    seed(core)
    assert says in refuse(core, text)


def test_display_names_from_mentions_are_trimmed_not_refused(core: Core) -> None:
    seed(core)
    run(core, "owner support-drafts <@ana|" + "D" * 300 + ">")
    run(core, "escalate support-drafts <#C1|ai\x00pilots" + "x" * 300 + ">")
    with session_scope(core.engine) as s:
        pilot = repo.pilot_by_slug(s, "support-drafts")
        assert pilot is not None
        assert pilot.owner_name is not None and len(pilot.owner_name) == 200
        assert pilot.escalation_channel_name is not None and "\x00" not in pilot.escalation_channel_name
        assert len(pilot.escalation_channel_name) == 200


def test_the_unit_of_work_guards_every_row_it_writes(core: Core) -> None:
    """A use case called without the grammar (as the REST API and check-in forms do) is still held to
    the column rules before the database: one sentence, nothing written, on both engines."""
    seed(core)
    before = row_counts(core.engine)
    with pytest.raises(UserError, match=r"^The pilot name is too long \(300 characters; 200 at most\)\.$"):
        core.services.new_pilot(ANA, "long-name", "n" * 300)
    with pytest.raises(UserError, match=r"^The owner name is too long \(201 characters; 200 at most\)\.$"):
        core.services.set_owner(ANA, "support-drafts", c.UserRef("U1"), "o" * 201)
    with pytest.raises(UserError, match="The version contains a NUL character"):
        core.services.record_eval(ANA, "support-drafts", 96.0, 100, "v\x00")
    assert row_counts(core.engine) == before
