"""Block Kit renderer of the neutral reply model (bot/replies.py), inside Slack's limits.

Every payload stays valid for any input: long texts are clipped, long lists are cut with an
explicit "… and N more", and the block count never exceeds the surface's budget.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from adapters.slack.manifest import COMMAND
from bot.forms import EVAL_FIELD, TRIAGE_FIELD, CheckinForm, FormField
from bot.gaps import GapState
from bot.replies import (
    EVAL_TITLE,
    GO_LIVE_LABEL,
    METRICS_TITLE,
    NEXT_TITLE,
    OWNER_LABEL,
    PATH_TITLE,
    STATE_MARK,
    Action,
    Confirm,
    GapCard,
    Hint,
    Intent,
    Person,
    Portfolio,
    Reply,
    Tone,
    expand_mentions,
    more_fields_hint,
    more_note,
    plain_mentions,
    render_text,
    series_summary,
)

Block = dict[str, Any]

# Slack limits (https://api.slack.com/reference/block-kit); slack_sdk's models check them.
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_TEXT = 3000
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ELEMENTS = 25
MAX_FALLBACK_TEXT = 3000  # `text` of chat.postMessage: Slack truncates at 40,000; keep notifications short
MAX_MODAL_TITLE = 24
MAX_INPUT_LABEL = 2000
MAX_HINT = 2000
MAX_PLACEHOLDER = 150
MAX_PRIVATE_METADATA = 3000


class ActionId(StrEnum):
    """action_id / callback_id values owned by the Slack adapter."""

    run_command = "pilot_cmd"  # a button that runs a command; value = the command text
    checkin_open = "checkin_open"  # a button that opens the check-in modal; value = slug
    checkin_submit = "checkin_submit"  # modal callback_id
    kill_switch = "kill_switch"  # Intent.KILL: a danger button with a confirm dialog; value = the kill command


# The core's intents (bot.replies.Intent) as Slack buttons; RUN_COMMAND gets `run_command:<index>`.
INTENT_ACTION = {Intent.OPEN_CHECKIN: ActionId.checkin_open}


INPUT_ACTION = "value"  # action_id of every input element in the check-in modal
TONE_MARK = {Tone.error: "⛔ ", Tone.warning: "⚠️ ", Tone.success: "", Tone.info: ""}


def escape(text: str) -> str:
    """Slack mrkdwn control characters; everything we render is escaped once, here. Then the
    mention tokens (bot.replies.mention) become real mentions: `<@U…>` for a Slack user, which
    notifies them; `@name` for a person on another platform."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return expand_mentions(escaped, _slack_mention)


def _slack_mention(person: Person) -> str:
    return f"<@{person.id}>" if person.platform == "slack" and person.id else "@" + person.name


def hint(h: Hint) -> str:
    """A sentence naming a command, in mrkdwn: the command as the user types it here (`/pilot …`)."""
    return f"{escape(h.before)}`{COMMAND} {escape(h.command)}`{escape(h.after)}"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(plain_mentions(text), limit), "emoji": True}


class Blocks:
    """A list of blocks with a budget; one slot is always kept for the final "and N more" note."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.items: list[Block] = []
        self.dropped_lines = 0

    @property
    def room(self) -> int:
        return self.budget - 1 - len(self.items)

    def add(self, block: Block) -> bool:
        if self.room <= 0:
            return False
        self.items.append(block)
        return True

    def section(self, text: str) -> bool:
        return self.add({"type": "section", "text": _mrkdwn(clip(text, MAX_SECTION_TEXT))})

    def lines(self, lines: list[str], what: str = "lines", reserve: int = 0) -> None:
        """Lines packed into sections of at most 3,000 chars; what does not fit is counted."""
        chunk: list[str] = []
        size = 0
        for i, raw in enumerate(lines):
            line = clip(raw, MAX_SECTION_TEXT - 40)
            if chunk and size + len(line) + 1 > MAX_SECTION_TEXT - 40:
                if self.room - reserve <= 1:
                    self._more(len(lines) - i + len(chunk), what)
                    return
                self.section("\n".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line) + 1
        if chunk:
            if self.room - reserve <= 0:
                self._more(len(chunk), what)
                return
            self.section("\n".join(chunk))

    def _more(self, n: int, what: str) -> None:
        self.dropped_lines += n
        if len(self.items) >= self.budget:
            return
        self.items.append({"type": "context", "elements": [_mrkdwn(escape(more_note(n, what)))]})

    def done(self) -> list[Block]:
        return self.items


def _button(action: Action, index: int) -> Block | None:
    if action.intent is Intent.RUN_COMMAND and action.command:
        action_id, value = f"{ActionId.run_command}:{index}", action.command
    elif action.intent is Intent.KILL and action.command:
        action_id, value = ActionId.kill_switch.value, action.command
    elif action.intent in INTENT_ACTION and action.slug:
        action_id, value = INTENT_ACTION[action.intent].value, action.slug
    else:
        return None
    button: Block = {
        "type": "button",
        "text": _plain(action.label, MAX_BUTTON_TEXT),
        "action_id": clip(action_id, 255),
        "value": clip(value, MAX_BUTTON_VALUE),
    }
    if action.style in ("primary", "danger"):
        button["style"] = action.style
    if action.confirm is not None:
        button["confirm"] = confirm_dialog(action.confirm, action.style == "danger")
    return button


def confirm_dialog(c: Confirm, danger: bool) -> Block:
    """A Block Kit confirmation object: Slack asks before the button's action is sent at all. It takes
    no typed input, so a confirmed kill uses the action's default reason (said in the dialog)."""
    dialog: Block = {
        "title": _plain(c.title, 100),
        "text": {"type": "mrkdwn", "text": clip(escape(c.text), 300)},
        "confirm": _plain(c.yes, 30),
        "deny": _plain(c.no, 30),
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def actions_block(actions: tuple[Action, ...], block_id: str | None = None) -> Block | None:
    buttons = [b for i, a in enumerate(actions[:MAX_ACTION_ELEMENTS]) if (b := _button(a, i)) is not None]
    if not buttons:
        return None
    block: Block = {"type": "actions", "elements": buttons}
    if block_id:
        block["block_id"] = clip(block_id, 255)
    return block


def card_blocks(out: Blocks, card: GapCard) -> None:
    verdict = f"{STATE_MARK[GapState.closed]} {card.verdict}" if card.ready else card.verdict
    out.add({"type": "header", "text": _plain(f"{card.name} ({card.slug})", MAX_HEADER_TEXT)})
    facts = [f"`{escape(card.slug)}`", escape(card.stage), verdict]
    if card.owner:
        facts.append(f"{OWNER_LABEL} {escape(card.owner)}")
    if card.go_live:
        facts.append(f"{GO_LIVE_LABEL} {escape(card.go_live)}")
    out.add({"type": "context", "elements": [_mrkdwn(clip(" · ".join(facts), MAX_CONTEXT_TEXT))]})
    gap_lines = [f"{row.mark} *{escape(row.label)}*: {row.word} — {escape(clip(row.reason, 600))}" for row in card.gaps]
    out.section("\n".join(gap_lines))
    if card.metrics:
        lines = []
        for m in card.metrics:
            mark = {"better": "▲ ", "worse": "▼ "}.get(m.verdict or "", "• ")
            lines.append(mark + escape(m.text))
        out.section(f"*{METRICS_TITLE}*")
        out.lines(lines, "metrics", reserve=3)
    tail = []
    if card.eval_line:
        tail.append(f"*{EVAL_TITLE}:* {escape(card.eval_line)}")
    if card.path_line:
        tail.append(f"*{PATH_TITLE}:* {escape(card.path_line)}")
    if tail:
        out.section("\n".join(tail))
    if card.next_steps:
        out.section(f"*{NEXT_TITLE}*\n" + "\n".join(f"• {escape(s)}" for s in card.next_steps))


def portfolio_lines(p: Portfolio) -> list[str]:
    lines = []
    for r in p.rows:
        owner = f" · {escape(r.owner)}" if r.owner else ""
        name = escape(clip(r.name, 80))
        lines.append(f"{''.join(r.marks)} *{escape(r.slug)}* — {name}{owner} · _{escape(r.next_step)}_")
    return lines


def portfolio_blocks(out: Blocks, p: Portfolio) -> None:
    out.section(f"*{escape(p.summary)}*")
    if p.empty_hint:
        out.section(hint(p.empty_hint))
        return
    out.add({"type": "context", "elements": [_mrkdwn(escape(p.legend))]})
    out.lines(portfolio_lines(p), "pilots", reserve=1)
    if p.more_hint:
        out.add({"type": "context", "elements": [_mrkdwn(hint(p.more_hint))]})


def reply_blocks(reply: Reply, budget: int = MAX_MESSAGE_BLOCKS, block_id_prefix: str = "") -> list[Block]:
    block = actions_block(reply.actions, f"{block_id_prefix}actions" if block_id_prefix else None)
    out = Blocks(budget - (1 if block else 0))  # the actions go last and always fit
    if reply.text:
        out.section(TONE_MARK[reply.tone] + escape(reply.text))
    if reply.portfolio:
        portfolio_blocks(out, reply.portfolio)
    if reply.card:
        card_blocks(out, reply.card)
    if reply.series:
        series = [f"`{escape(clip(s.label, 40))}` {escape(series_summary(s))}" for s in reply.series]
        out.lines(series, "series", reserve=2)
    if reply.lines:
        out.lines([escape(line) for line in reply.lines], "lines", reserve=1)
    blocks = out.done()
    if block:
        blocks.append(block)
    return blocks


def fallback_text(reply: Reply) -> str:
    return clip(escape(render_text(reply, keep_mentions=True)) or "pilotbot", MAX_FALLBACK_TEXT)


def message(reply: Reply) -> dict[str, Any]:
    """kwargs for chat.postMessage / response_url: blocks plus the plain-text fallback."""
    return {"text": fallback_text(reply), "blocks": reply_blocks(reply)}


# ---- the check-in modal -------------------------------------------------------------------


def field_block_id(key: str) -> str:
    return clip(f"f:{key}", 255)


def _input(f: FormField) -> Block:
    if f.key == TRIAGE_FIELD:
        element: Block = {"type": "plain_text_input", "action_id": INPUT_ACTION, "multiline": True, "max_length": 2000}
    else:
        element = {"type": "number_input", "action_id": INPUT_ACTION, "is_decimal_allowed": True}
        if f.key == EVAL_FIELD:
            element["min_value"] = "0"
            element["max_value"] = "100"
    if f.placeholder:
        element["placeholder"] = _plain(f.placeholder, MAX_PLACEHOLDER)
    block: Block = {
        "type": "input",
        "block_id": field_block_id(f.key),
        "optional": f.optional,
        "label": _plain(f.label, MAX_INPUT_LABEL),
        "element": element,
    }
    if f.hint:
        block["hint"] = _plain(f.hint, MAX_HINT)
    return block


def checkin_modal(form: CheckinForm, metadata: dict[str, str]) -> dict[str, Any]:
    """The check-in modal: one number input per metric, an optional eval score, a triage note."""
    blocks: list[Block] = [{"type": "section", "text": _mrkdwn(clip(escape(form.intro), MAX_SECTION_TEXT))}]
    fields = list(form.fields)
    extra = [f for f in fields if f.key in (EVAL_FIELD, TRIAGE_FIELD)]
    metrics = [f for f in fields if f.key not in (EVAL_FIELD, TRIAGE_FIELD)]
    room = MAX_VIEW_BLOCKS - len(blocks) - len(extra) - 1
    shown = metrics[:room]
    blocks.extend(_input(f) for f in shown)
    if len(metrics) > len(shown):
        note = hint(more_fields_hint(len(metrics) - len(shown)))
        blocks.append({"type": "context", "elements": [_mrkdwn(note)]})
    blocks.extend(_input(f) for f in extra)
    return {
        "type": "modal",
        "callback_id": ActionId.checkin_submit.value,
        "private_metadata": clip(json.dumps(metadata), MAX_PRIVATE_METADATA),
        "title": _plain(form.title, MAX_MODAL_TITLE),
        "submit": _plain("Submit", MAX_MODAL_TITLE),
        "close": _plain("Cancel", MAX_MODAL_TITLE),
        "blocks": blocks,
    }


def modal_values(view: dict[str, Any]) -> dict[str, object]:
    """view.state.values -> {field key: raw string} for Services.answer_checkin."""
    raw: dict[str, object] = {}
    for block_id, actions in (view.get("state", {}).get("values", {}) or {}).items():
        if not block_id.startswith("f:"):
            continue
        value = (actions.get(INPUT_ACTION) or {}).get("value")
        if value is not None:
            raw[block_id[2:]] = value
    return raw


def modal_errors(view: dict[str, Any], errors: dict[str, str]) -> dict[str, str]:
    """FormErrors -> response_action errors, only for blocks present in the view (Slack rejects others)."""
    present = [b.get("block_id") for b in view.get("blocks", []) if b.get("type") == "input"]
    out: dict[str, str] = {}
    for key, sentence in errors.items():
        block_id = field_block_id(key)
        target = block_id if block_id in present else (present[0] if present else block_id)
        out[target] = clip((out[target] + " " if target in out else "") + sentence, 150)
    return out


def home_view(sections: list[Reply]) -> dict[str, Any]:
    """App Home: the given replies one after another, within 100 blocks."""
    blocks: list[Block] = []
    for i, reply in enumerate(sections):
        room = MAX_VIEW_BLOCKS - len(blocks) - (1 if i else 0)
        if room < 3:
            break
        if i:
            blocks.append({"type": "divider"})
        blocks.extend(reply_blocks(reply, budget=room, block_id_prefix=f"s{i}"))
    return {"type": "home", "blocks": blocks}
