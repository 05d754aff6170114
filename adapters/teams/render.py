"""Outbound translation: the neutral Reply -> an Adaptive Card (+ plain-text fallback).

Schema 1.5 is what Teams desktop/web renders; we keep to 1.4 features so mobile shows the same.
Teams limits: a message of about 28 KB (TEAMS_MESSAGE_LIMIT); we cap long lists and lines, and the
check-in form is paged: as many metrics per card as fit, a "Next" submit carrying the values so
far, the eval score, note and "Submit check-in" on the last page.
TextBlock and FactSet text is markdown on Teams (bold, italic, lists, links; no code spans), so
every string is escaped once, in `md`, and a `code` span is written in bold instead.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from botbuilder.schema import Activity, ActivityTypes, Attachment

from adapters.teams.inbound import CHECKIN_NEXT, CHECKIN_OPEN, CHECKIN_SUBMIT, COMMAND_SUBMIT, FIELD_PREFIX, PLATFORM
from bot.forms import FIX_HEADLINE, FORM_PREFIX, SUBMIT_LABEL, CheckinForm, FormErrors, FormField
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
    Person,
    Portfolio,
    Reply,
    Tone,
    expand_mentions,
    mentions_in,
    more_note,
    plain_mentions,
    render_text,
    series_summary,
)

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.5"
MAX_LINES = 40
MAX_CHARS = 2000
MAX_ACTIONS = 6  # Teams shows up to 6 top-level actions
# "The message size limit is 28 KB" for bot messages, card attachments included (Microsoft Learn,
# Teams platform: Bots > "Send and receive messages" / rate limiting and message size); larger
# sends are refused with 413 or dropped. Measured on the serialized activity, not the card alone.
TEAMS_MESSAGE_LIMIT = 28 * 1024
# Room for what the connector call adds around our activity (ids, serviceUrl, from/recipient,
# conversation, replyToId): a form page is cut to fit TEAMS_MESSAGE_LIMIT minus this.
ENVELOPE_ROOM = 2 * 1024
NEXT_LABEL = "Next: more metrics"
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
    """A model sentence -> TextBlock markdown: escaped, its `code` spans (commands) in bold, its
    mention tokens as `<at>Name</at>` (a Teams user: the card's `msteams.entities` make it notify)
    or `@name` (someone on another platform)."""
    people: list[Person] = []

    def hold(person: Person) -> str:
        people.append(person)
        return f"{_HOLD}{len(people) - 1}{_HOLD}"

    held = md_code(expand_mentions(text, hold))
    if not people:
        return held
    return _HELD.sub(lambda m: _teams_mention(people[int(m.group(1))]), held)


_HOLD = "\ue003"  # a private-use mark md_escape leaves alone: where a mention goes back in
_HELD = re.compile(f"{_HOLD}(\\d+){_HOLD}")


def _teams_mention(person: Person) -> str:
    return at_text(person) if person.platform == PLATFORM else md_escape("@" + person.name)


def at_text(person: Person) -> str:
    """What a Teams mention shows in the text; its entity's `text` must be exactly this."""
    return f"<at>{person.name}</at>"


def mention_entities(reply: Reply) -> list[dict[str, Any]]:
    """One mention entity per Teams user the reply names (Teams matches each to its `<at>` text)."""
    seen: dict[str, dict[str, Any]] = {}
    for person in mentions_in(render_text(reply, keep_mentions=True)):
        if person.platform == PLATFORM and person.id and person.id not in seen:
            seen[person.id] = {
                "type": "mention",
                "text": at_text(person),
                "mentioned": {"id": person.id, "name": person.name},
            }
    return list(seen.values())


def md_code(text: str) -> str:
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
    form: CheckinForm,
    values: dict[str, object] | None = None,
    errors: dict[str, str] | None = None,
    fields: list[FormField] | None = None,
) -> list[dict[str, Any]]:
    """One input per field (all, or this page's); `values` re-fills a rejected submission, `errors`
    shows what to fix."""
    values, errors = values or {}, errors or {}
    body: list[dict[str, Any]] = [
        _text(form.title, weight="Bolder", separator=True),
        _text(form.intro, spacing="None"),
    ]
    for f in form.fields if fields is None else fields:
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


def submit_checkin_action(
    slug: str, period: str | None = None, carry: dict[str, object] | None = None
) -> dict[str, Any]:
    """Sends the form; `period` says which week it answers, `carry` the values of earlier pages."""
    data: dict[str, Any] = {"action": CHECKIN_SUBMIT, "slug": slug}
    if period:
        data["period"] = period
    if carry:
        data["carry"] = carry
    return {"type": "Action.Submit", "title": SUBMIT_LABEL, "style": "positive", "data": data}


def next_page_action(form: CheckinForm, start: int, end: int, carry: dict[str, object]) -> dict[str, Any]:
    data = {"action": CHECKIN_NEXT, "slug": form.slug, "period": form.period, "start": start, "end": end}
    return {"type": "Action.Submit", "title": NEXT_LABEL, "data": {**data, "carry": carry}}


def open_checkin_action(label: str, slug: str) -> dict[str, Any]:
    """Intent.OPEN_CHECKIN on a card without the form (reminder, missed review): sends back a
    submit the bot answers with the form."""
    return {"type": "Action.Submit", "title": label[:50], "data": {"action": CHECKIN_OPEN, "slug": slug}}


def metric_fields(form: CheckinForm) -> list[FormField]:
    return [f for f in form.fields if not f.key.startswith(FORM_PREFIX)]


def form_page(
    form: CheckinForm,
    head: list[dict[str, Any]],
    actions: list[dict[str, Any]],
    fallback: str,
    start: int = 0,
    carry: dict[str, object] | None = None,
    values: dict[str, object] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The card with `head`, then metrics from `start` on, as many as fit the Teams limit; the
    last page adds the eval score and note and the "Submit check-in" button."""
    metrics, extra, carry = metric_fields(form), [f for f in form.fields if f.key.startswith(FORM_PREFIX)], carry or {}

    def build(end: int) -> dict[str, Any]:
        last = end >= len(metrics)
        fields = metrics[start:end] + (extra if last else [])
        body = head + form_body(form, values, errors, fields)
        submit = (
            submit_checkin_action(form.slug, form.period, carry) if last else next_page_action(form, start, end, carry)
        )
        return card(body, [submit, *actions], fallback)

    end = len(metrics)
    found = build(end)
    while end > start + 1 and card_bytes(found) > TEAMS_MESSAGE_LIMIT - ENVELOPE_ROOM:
        # Shrink by the overshoot's share of a field (at least one): a few builds, not one per metric.
        over = card_bytes(found) - (TEAMS_MESSAGE_LIMIT - ENVELOPE_ROOM)
        per_field = max(1, card_bytes(found) // max(1, end - start + len(extra)))
        end = max(start + 1, end - max(1, -(-over // per_field)))
        found = build(end)
    return found


def card_bytes(card_json: dict[str, Any]) -> int:
    """The card as it travels inside the activity (UTF-8 JSON)."""
    return len(json.dumps(card_json, ensure_ascii=False).encode())


def activity_bytes(activity: Activity) -> int:
    return len(json.dumps(activity.serialize(), ensure_ascii=False).encode())


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
    form = reply.form
    # On a card that carries the form, "report this week's numbers" is the form itself.
    actions = [
        b
        for a in reply.actions
        if not (form is not None and a.intent is Intent.OPEN_CHECKIN and a.slug == form.slug)
        and (b := intent_action(a)) is not None
    ]
    if form is not None:
        return _with_mentions(form_page(form, body, actions, render_text(reply), values=form_values), reply)
    return _with_mentions(card(body, actions, render_text(reply)), reply)


def _with_mentions(out: dict[str, Any], reply: Reply) -> dict[str, Any]:
    entities = mention_entities(reply)
    if entities:
        out["msteams"]["entities"] = entities
    return out


KILL_SUBMIT = "kill_switch"  # Intent.KILL: data {"action", "slug", "default"} plus the typed reason
KILL_REASON_INPUT = "reason"


def kill_action(action: Action) -> dict[str, Any]:
    """Intent.KILL as an Action.ShowCard: pressing it opens the confirmation (its sentence, a reason
    input prefilled with the default) whose submit runs `kill <slug> <reason>` (adapters/teams/app.py)."""
    assert action.confirm is not None and action.slug is not None and action.command is not None
    default = action.command.split(" ", 2)[2] if action.command.count(" ") >= 2 else ""
    confirm = action.confirm
    return {
        "type": "Action.ShowCard",
        "title": action.label[:50],
        "card": {
            "type": "AdaptiveCard",
            "body": [
                _text(confirm.title, weight="Bolder", color="Attention"),
                _text(confirm.text),
                {
                    "type": "Input.Text",
                    "id": KILL_REASON_INPUT,
                    "label": confirm.reason_label,
                    "value": default,
                    "maxLength": 500,
                },
            ],
            "actions": [
                {
                    "type": "Action.Submit",
                    "title": confirm.yes[:50],
                    "style": "destructive",
                    "data": {"action": KILL_SUBMIT, "slug": action.slug, "default": default},
                }
            ],
        },
    }


def intent_action(action: Action) -> dict[str, Any] | None:
    """The core's intents as Teams card actions (see inbound.COMMAND_SUBMIT / CHECKIN_OPEN)."""
    if action.intent is Intent.RUN_COMMAND:
        return command_action(action)
    if action.intent is Intent.KILL:
        return kill_action(action)
    if action.intent is Intent.OPEN_CHECKIN and action.slug:
        return open_checkin_action(action.label, action.slug)
    return None


def render_form_page(form: CheckinForm, start: int = 0, carry: dict[str, object] | None = None) -> dict[str, Any]:
    """A page of the form on its own (the answer to "open the form" and to "Next")."""
    return form_page(form, [], [], f"{form.title}: {form.intro}", start, carry)


def render_form_errors(
    form: CheckinForm,
    values: dict[str, object],
    errors: dict[str, str],
    start: int = 0,
    carry: dict[str, object] | None = None,
) -> dict[str, Any]:
    """A rejected check-in page: what to fix, and the same page again with the given values kept."""
    lines = FormErrors(errors).lines
    head = [_text(FIX_HEADLINE, weight="Bolder", color="Attention"), *(_text(x) for x in lines)]
    fallback = "\n".join([FIX_HEADLINE, *lines])
    return form_page(form, head, [], fallback, start, carry, values, errors)


def reply_activity(reply: Reply, form_values: dict[str, object] | None = None) -> Activity:
    return card_activity(render_card(reply, form_values), plain_mentions(reply.text) or render_text(reply))


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
