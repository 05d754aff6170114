"""Display names from Slack (users.info, `<@U…|name>` mentions) over the owner-name column's length
or holding a NUL are trimmed, not refused: the user's signed command still runs (issue 12)."""

from __future__ import annotations

from tests.slack.test_app import Slack, slack  # noqa: F401  (the fixture)


async def test_an_over_long_display_name_is_trimmed(slack: Slack) -> None:  # noqa: F811
    slack.fake.add_user("U42", "B" * 300 + "\x00")
    await slack.ask("new p-one One")
    before = len(slack.fake.of("response_url"))  # `new` too, if it took longer than the ack budget
    await slack.command("owner p-one <@U42>")
    assert "now owns" in (await slack.answer(before + 1))["text"]
    owner = slack.core.services.pilot_report("p-one").pilot.owner_name
    assert owner is not None and len(owner) == 200 and "\x00" not in owner


async def test_an_over_long_mention_label_is_trimmed(slack: Slack) -> None:  # noqa: F811
    await slack.ask("new p-two Two")
    answer = await slack.ask("owner p-two <@U1|" + "d" * 250 + ">")
    assert "now owns" in answer["text"], answer
    owner = slack.core.services.pilot_report("p-two").pilot.owner_name
    assert owner is not None and len(owner) == 200


async def test_an_over_long_slack_id_is_one_sentence(slack: Slack) -> None:  # noqa: F811
    await slack.ask("new p-three Three")
    answer = await slack.ask("owner p-three <@U" + "1" * 200 + ">")
    assert answer["text"].startswith("The user id is too long (201 characters; 128 at most)"), answer
