"""Outbound translation: the neutral Reply -> an Adaptive Card (+ plain-text fallback).

Schema 1.5 is what Teams desktop/web renders; we keep to 1.4 features so mobile shows the same.
Teams limits: a card payload of about 28 KB; we cap long lists and lines to stay far below it.
TextBlock and FactSet text is markdown on Teams (bold, italic, lists, links; no code spans), so
every string is escaped once, in `md`, and a `code` span is written in bold instead.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from botbuilder.schema import Activity, ActivityTypes, Attachment

from adapters.teams.inbound import CHECKIN_SUBMIT, COMMAND_SUBMIT, FIELD_PREFIX
from bot.forms import FIX_HEADLINE, SUBMIT_LABEL, CheckinForm, FormErrors
from bot.replies import (
    EVAL_TITLE,
    GO_LIVE_LABEL,
    METRICS_TITLE,
    NEXT_TITLE,
    OWNER_LABEL,
    PATH_TITLE,
    Action,
    GapCard,
    Intent,
    Portfolio,
    Reply,
    Tone,
    more_note,
    render_text,
    series_summary,
)

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.5"
MAX_LINES = 40
MAX_CHARS = 2000
MAX_ACTIONS = 6  # Teams shows up to 6 top-level actions
TONE_COLOR = {Tone.info: "Default", Tone.success: "Good", Tone.warning: "Warning", Tone.error: "Attention"}


_MD_SPECIAL = re.compile(r"([\\*_~\[\]])")
_MD_LINE_START = re.compile(r"^(\s*)([-+>#]|\d+[.)])(?=\s|$)", re.MULTILINE)


def md_escape(text: str) -> str:
    """Plain text -> TextBlock markdown that shows it as typed (a pilot named `*x*` is not bold)."""

    def marker(m: re.Match[str]) -> str:  # "- x" / "1. x" at a line start would become a list
        lead, mark = m.group(1), m.group(2)
        return f"{lead}{mark[:-1]}\\{mark[-1]}" if mark[0].isdigit() else f"{lead}\\{mark}"

    return _MD_LINE_START.sub(marker, _MD_SPECIAL.sub(r"\\\1", text))


def md(text: str) -> str:
    """A model sentence -> TextBlock markdown: escaped, its `code` spans (commands) in bold."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans, just drop the backticks
        return md_escape("".join(parts))
    return "".join(
        f"**{md_escape(part.strip())}**" if i % 2 and part.strip() else md_escape(part) for i, part in enumerate(parts)
    )


def _text(text: str, **extra: Any) -> dict[str, Any]:
    return _markdown(md(text[:MAX_CHARS]), **extra)


def _markdown(markdown: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": markdown, "wrap": True, **extra}


def _facts(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": md(t[:200]), "value": md(v[:MAX_CHARS])} for t, v in pairs]}


def gap_card_body(card: GapCard) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = [
        _text(f"{card.name} ({card.slug})", size="Large", weight="Bolder"),
        _text(
            f"{card.stage}, {card.verdict}", isSubtle=True, spacing="None", color="Good" if card.ready else "Default"
        ),
    ]
    facts = []
    if card.owner:
        facts.append((OWNER_LABEL.capitalize(), card.owner))
    if card.go_live:
        facts.append((GO_LIVE_LABEL.capitalize(), card.go_live))
    if facts:
        body.append(_facts(facts))
    body.append(_facts([(f"{row.mark} {row.label}", f"{row.word} — {row.reason}") for row in card.gaps]))
    if card.metrics:
        body.append(_text(METRICS_TITLE, weight="Bolder", separator=True))
        body.extend(_text(m.text, spacing="None") for m in card.metrics)
    if card.eval_line:
        body.append(_facts([(EVAL_TITLE, card.eval_line)]))
    if card.path_line:
        body.append(_facts([(PATH_TITLE, card.path_line)]))
    if card.next_steps:
        body.append(_text(NEXT_TITLE, weight="Bolder", separator=True))
        body.extend(_text(f"• {s}", spacing="None") for s in card.next_steps)
    return body


def portfolio_body(p: Portfolio) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = [_text(p.summary, size="Medium", weight="Bolder")]
    if p.empty_hint:
        body.append(_text(p.empty_hint.text))
        return body
    body.append(_text(p.legend, isSubtle=True, spacing="None"))
    rows = []
    for r in p.rows:
        owner = f" · {r.owner}" if r.owner else ""
        rows.append((r.slug, f"{' '.join(r.marks)}  {r.next_step}{owner}"))
    body.append(_facts(rows))
    if p.more_hint:
        body.append(_text(p.more_hint.text, isSubtle=True))
    return body


def form_body(
    form: CheckinForm, values: dict[str, object] | None = None, errors: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One input per field; `values` re-fills a rejected submission, `errors` shows what to fix."""
    values, errors = values or {}, errors or {}
    body: list[dict[str, Any]] = [
        _text(form.title, weight="Bolder", separator=True),
        _text(form.intro, spacing="None"),
    ]
    for f in form.fields:
        given = values.get(f.key)
        item: dict[str, Any] = {
            "id": FIELD_PREFIX + f.key,
            "label": f.label,  # plain text; Teams adds the " *" of a required input itself
            "isRequired": not f.optional,
            "placeholder": f.placeholder or "",
        }
        if f.kind == "number":
            item["type"] = "Input.Number"
            item["errorMessage"] = errors.get(f.key) or f.not_a_number
            if given not in (None, ""):
                try:
                    item["value"] = float(str(given).strip().rstrip("%"))
                except ValueError:
                    pass
        else:
            item.update(type="Input.Text", isMultiline=True, maxLength=2000)
            if given:
                item["value"] = str(given)[:2000]
        body.append(item)
        if f.hint:
            body.append(_text(f.hint, isSubtle=True, spacing="None", size="Small"))
        if f.key in errors:
            body.append(_text(errors[f.key], color="Attention", spacing="None", size="Small"))
    return body


def submit_checkin_action(slug: str) -> dict[str, Any]:
    return {
        "type": "Action.Submit",
        "title": SUBMIT_LABEL,
        "style": "positive",
        "data": {"action": CHECKIN_SUBMIT, "slug": slug},
    }


def command_action(action: Action) -> dict[str, Any]:
    """messageBack sends the command as the user's message, so it runs through the same grammar."""
    assert action.command is not None
    return {
        "type": "Action.Submit",
        "title": action.label[:50],
        "data": {
            "action": COMMAND_SUBMIT,
            "command": action.command,
            "msteams": {"type": "messageBack", "text": action.command, "displayText": action.command},
        },
    }


def card(body: list[dict[str, Any]], actions: list[dict[str, Any]], fallback: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "fallbackText": fallback[:MAX_CHARS],
        "msteams": {"width": "Full"},
    }
    if actions:
        out["actions"] = actions[:MAX_ACTIONS]
    return out


def render_card(reply: Reply, form_values: dict[str, object] | None = None) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    if reply.text:
        color = TONE_COLOR[reply.tone]
        body.append(_text(reply.text, weight="Bolder" if reply.tone is not Tone.info else "Default", color=color))
    if reply.portfolio:
        body.extend(portfolio_body(reply.portfolio))
    if reply.card:
        body.extend(gap_card_body(reply.card))
    body.extend(_markdown(f"**{md_escape(s.label)}** {md_escape(series_summary(s))}") for s in reply.series)
    lines = list(reply.lines)
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES] + [more_note(len(reply.lines) - MAX_LINES, "lines")]
    body.extend(_text(line, spacing="Small") for line in lines)
    actions: list[dict[str, Any]] = []
    if reply.form is not None:
        body.extend(form_body(reply.form, form_values))
        actions.append(submit_checkin_action(reply.form.slug))
    actions.extend(b for a in reply.actions if (b := intent_action(a)) is not None)
    return card(body, actions, render_text(reply))


def intent_action(action: Action) -> dict[str, Any] | None:
    """The core's intents as Teams card actions (see inbound.COMMAND_SUBMIT / CHECKIN_SUBMIT)."""
    if action.intent is Intent.RUN_COMMAND:
        return command_action(action)
    # Intent.OPEN_CHECKIN opens a modal on Slack; on Teams the form itself is on the card
    # (`Reply.form`, answered with `submit_checkin_action`), so there is no separate button.
    return None


def render_form_errors(form: CheckinForm, values: dict[str, object], errors: dict[str, str]) -> dict[str, Any]:
    """A rejected check-in: what to fix, and the same form again with the given values kept."""
    lines = FormErrors(errors).lines
    body = [_text(FIX_HEADLINE, weight="Bolder", color="Attention"), *(_text(x) for x in lines)]
    body.extend(form_body(form, values, errors))
    fallback = "\n".join([FIX_HEADLINE, *lines])
    return card(body, [submit_checkin_action(form.slug)], fallback)


def reply_activity(reply: Reply, form_values: dict[str, object] | None = None) -> Activity:
    return card_activity(render_card(reply, form_values), reply.text or render_text(reply))


def with_image(activity: Activity, png: bytes, name: str) -> Activity:
    """Adds a PNG as an inline image attachment (a data URI: Teams shows it under the card)."""
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    activity.attachments = [
        *(activity.attachments or []),
        Attachment(content_type="image/png", content_url=uri, name=name),
    ]
    return activity


def card_activity(card_json: dict[str, Any], summary: str) -> Activity:
    """A message whose only content is the card; `summary` is what notifications show."""
    return Activity(
        type=ActivityTypes.message,
        summary=summary.split("\n", 1)[0][:200],
        attachments=[Attachment(content_type=CARD_CONTENT_TYPE, content=card_json)],
    )
