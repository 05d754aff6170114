"""One set of replies, three renderers: plain text, Slack Block Kit, a Teams Adaptive Card.

Each rendering must be valid for its surface (slack_sdk's models; the Adaptive Card 1.5 JSON
schema in /work/shared/schemas) and must show the same facts: the slug, every gap state with
its reason sentence, the counts and the ready line, the hints, and the same action intents.
The facts are read from the neutral model, so a sentence a renderer invents or drops fails here.
"""

from __future__ import annotations

import copy
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from adapters.slack.render import ActionId, home_view, reply_blocks
from adapters.teams.inbound import CHECKIN_SUBMIT, COMMAND_SUBMIT
from adapters.teams.render import render_card
from bot.core import Core
from bot.home import home_replies
from bot.ports import Actor
from bot.replies import Action, Intent, Reply, Tone, render_text, series_summary
from bot.schedule.messages import checkin_prompt
from bot.views import portfolio_reply
from tests.slack.payloads import assert_valid_blocks, assert_valid_view

ANA = Actor("console", "ana", "Ana")
SCHEMA_PATH = Path("/work/shared/schemas/adaptive-card.1.5.0.json")


@pytest.fixture(scope="module")
def card_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _setup(core: Core) -> None:
    for text in (
        "new support-drafts Support drafts",
        "owner support-drafts @ana",
        "baseline support-drafts handle_time 14 min",
        "measure support-drafts handle_time 9",
        "threshold support-drafts 90",
        "eval support-drafts 88 cases 120",
        "eval support-drafts 93 cases 120",
        "new legal-intake Legal intake",
        "new hr-answers HR answers",
    ):
        reply = core.router.handle(text, ANA)
        assert reply.ok, (text, reply.text)


def replies(core: Core) -> Iterator[tuple[str, Reply]]:
    _setup(core)
    handle = core.router.handle
    entries = core.services.portfolio()
    yield "gap card", handle("status support-drafts", ANA)
    yield "portfolio", handle("status", ANA)
    yield "portfolio and N more", portfolio_reply(entries, page=1)
    yield "empty portfolio", portfolio_reply([])
    yield "help", handle("help", ANA)
    yield "error", handle("frobnicate", ANA)
    yield "history", handle("history support-drafts", ANA)
    form = core.services.checkin_form("support-drafts")
    yield "check-in prompt", checkin_prompt(core.services.pilot_report("support-drafts"), form)
    for i, section in enumerate(home_replies(entries, "console", "ana")):
        yield f"home {i}", section


def facts(reply: Reply) -> list[str]:
    """What a reader must find on every surface, taken from the model (backticks are layout)."""
    out = [reply.text] if reply.text else []
    if reply.card:
        c = reply.card
        out += [c.slug, c.name, c.stage, c.verdict, *(f"{r.word} — {r.reason}" for r in c.gaps)]
        out += [r.label for r in c.gaps] + [m.text for m in c.metrics] + list(c.next_steps)
        out += [x for x in (c.owner, c.go_live, c.eval_line, c.path_line) if x]
    if reply.portfolio:
        p = reply.portfolio
        out += [p.summary, *(r.slug for r in p.rows), *(r.next_step for r in p.rows)]
        for hint in (p.empty_hint, p.more_hint):
            if hint:
                out += [hint.before.strip(), hint.command, hint.after.strip()]
    for s in reply.series:
        out += [s.label, series_summary(s)]
    out += list(reply.lines)
    return [f.replace("`", "") for f in out if f.strip()]


def _strings(node: Any, keys: tuple[str, ...]) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in keys and isinstance(v, str):
                yield v
            else:
                yield from _strings(v, keys)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v, keys)


def text_of_text(reply: Reply) -> str:
    return render_text(reply).replace("`", "")


def text_of_blocks(blocks: list[dict[str, Any]]) -> str:
    shown = [b for b in blocks if b["type"] != "actions"]
    return html.unescape("\n".join(_strings(shown, ("text",)))).replace("`", "")


def text_of_card(card: dict[str, Any]) -> str:
    raw = "\n".join(_strings(card["body"], ("text", "title", "value", "label")))
    return re.sub(r"\\(.)", r"\1", raw.replace("**", ""))


def slack_intents(blocks: list[dict[str, Any]]) -> set[tuple[Intent, str]]:
    out = set()
    for el in (el for b in blocks if b["type"] == "actions" for el in b["elements"]):
        if el["action_id"].startswith(f"{ActionId.run_command}:"):
            out.add((Intent.RUN_COMMAND, el["value"]))
        else:
            assert el["action_id"] == ActionId.checkin_open, el
            out.add((Intent.OPEN_CHECKIN, el["value"]))
    return out


def teams_intents(card: dict[str, Any]) -> set[tuple[Intent, str]]:
    out = set()
    for action in card.get("actions", []):
        data = action["data"]
        if data["action"] == COMMAND_SUBMIT:
            assert data["msteams"]["text"] == data["command"]
            out.add((Intent.RUN_COMMAND, data["command"]))
        else:  # the check-in form is on the card itself: its submit button is the open-check-in intent
            assert data["action"] == CHECKIN_SUBMIT, data
            out.add((Intent.OPEN_CHECKIN, data["slug"]))
    return out


def text_intents(reply: Reply) -> set[tuple[Intent, str]]:
    tried = [line for line in render_text(reply).splitlines() if line.startswith("Try: ")]
    return {(Intent.RUN_COMMAND, c) for line in tried for c in re.findall(r"`([^`]+)`", line)}


def validate_card(validator: jsonschema.protocols.Validator, card: dict[str, Any]) -> None:
    # `msteams` (width) is Teams' documented host extension of the card, not part of the schema.
    plain = copy.deepcopy(card)
    plain.pop("msteams", None)
    errors = [f"{list(e.absolute_path)}: {e.message[:300]}" for e in validator.iter_errors(plain)]
    assert not errors, errors


def test_the_same_facts_on_every_surface(core: Core, card_validator: jsonschema.protocols.Validator) -> None:
    seen = set()
    for name, reply in replies(core):
        seen.add(name)
        blocks = reply_blocks(reply)
        assert_valid_blocks(blocks)
        card = render_card(reply)
        validate_card(card_validator, card)
        shown = {"text": text_of_text(reply), "slack": text_of_blocks(blocks), "teams": text_of_card(card)}
        for fact in facts(reply):
            for surface, text in shown.items():
                assert fact in text, f"{name}: {surface} lacks {fact!r}:\n{text}"
        if reply.portfolio and reply.portfolio.rows:  # the legend; the text table has it as column heads
            p = reply.portfolio
            assert p.legend in shown["slack"] and p.legend in shown["teams"], name
            assert re.search(r"pilot +" + r" +".join(p.columns), shown["text"]), name
        intents = {(a.intent, a.command or a.slug or "") for a in reply.actions}
        assert slack_intents(blocks) == intents, name
        assert teams_intents(card) == intents | ({(Intent.OPEN_CHECKIN, reply.form.slug)} if reply.form else set()), (
            name
        )
        assert text_intents(reply) == {i for i in intents if i[0] is Intent.RUN_COMMAND}, name
    assert len(seen) >= 10


def test_the_replies_carry_what_the_parity_test_claims(core: Core) -> None:
    """Guards the test above against an empty model: the named facts really are in the replies."""
    got = dict(replies(core))
    card = got["gap card"].card
    assert card is not None and card.slug == "support-drafts"
    assert {r.reason for r in card.gaps} and all(r.reason for r in card.gaps)
    portfolio = got["portfolio"].portfolio
    assert portfolio is not None and portfolio.summary == "0 of 3 pilots ready to ship (0%)"
    more = got["portfolio and N more"].portfolio
    assert more is not None and more.more_hint is not None and more.more_hint.before == "… and 2 more; "
    empty = got["empty portfolio"].portfolio
    assert empty is not None and empty.empty_hint is not None and empty.empty_hint.text.startswith("No pilots yet")
    assert not got["error"].ok and got["help"].ok
    assert [s.values for s in got["history"].series][0] == (88.0, 93.0)
    prompt = got["check-in prompt"]
    assert prompt.form is not None and [a.intent for a in prompt.actions] == [Intent.OPEN_CHECKIN]
    assert got["home 0"].text.startswith("Your pilots: 1")


def test_home_is_a_valid_slack_view(core: Core) -> None:
    _setup(core)
    assert_valid_view(home_view(home_replies(core.services.portfolio(), "slack", "U1")))


def test_ok_is_the_tone_and_actions_name_what_they_act_on() -> None:
    assert [Reply(tone=t).ok for t in Tone] == [t is not Tone.error for t in Tone]
    with pytest.raises(TypeError):
        Reply(tone=Tone.error, ok=True)  # type: ignore[call-arg]  # no second field that can disagree
    with pytest.raises(ValueError, match="names no pilot"):
        Action("Report", intent=Intent.OPEN_CHECKIN)
    with pytest.raises(ValueError, match="names none"):
        Action("Status")


def test_a_mention_token_is_written_as_at_name_in_plain_text_and_lists_the_person() -> None:
    from bot.replies import Person, mention, mentions_in, plain_mentions

    token = mention("slack", "U1", "Dana\ue001 Ops")  # separators in a name cannot break the token
    text = f"{token} missed the weekly review of `p1`."
    assert plain_mentions(text) == "@Dana Ops missed the weekly review of `p1`."
    assert mentions_in(text) == [Person("slack", "U1", "Dana Ops")]
    assert render_text(Reply(text=text)) == "@Dana Ops missed the weekly review of `p1`."
