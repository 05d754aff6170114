"""The weekly check-in as a neutral form: Slack renders it as a modal, Teams as an
Adaptive Card, and both hand the submitted strings back to `parse_checkin_answer`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.gaps import fmt_number

# The form's own fields carry a prefix no metric key can take (metric keys are [a-z0-9_]+), so a
# metric called `eval_score` or `triage` is a metric like any other (Slack block ids, Teams inputs).
FORM_PREFIX = "pb."
EVAL_FIELD = FORM_PREFIX + "eval_score"
TRIAGE_FIELD = FORM_PREFIX + "triage"
MAX_TRIAGE = 2000
FIX_HEADLINE = "Please fix the check-in:"  # above a rejected submission's errors
SUBMIT_LABEL = "Submit check-in"  # the button that sends a form shown inside a message (Teams)


@dataclass(frozen=True)
class FormField:
    key: str  # metric key, EVAL_FIELD or TRIAGE_FIELD
    label: str
    kind: str  # "number" | "text"
    optional: bool
    hint: str | None = None
    placeholder: str | None = None

    @property
    def not_a_number(self) -> str:
        """Shown by a client that checks a number input itself before submitting."""
        return f"Enter this week's {self.key} as a number."


@dataclass(frozen=True)
class CheckinForm:
    slug: str
    name: str
    period: str
    title: str
    intro: str
    fields: tuple[FormField, ...]


@dataclass(frozen=True)
class CheckinAnswer:
    values: dict[str, float]  # metric key -> value
    eval_score: float | None
    triage: str | None


class FormErrors(Exception):
    """Field key -> one sentence; shown inline next to the field."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))

    @property
    def lines(self) -> list[str]:
        """The errors as a list under FIX_HEADLINE."""
        return [f"• {k.removeprefix(FORM_PREFIX)}: {v}" for k, v in self.errors.items()]


def build_checkin_form(slug: str, name: str, period: str, metrics: list[tuple[str, str, float | None]]) -> CheckinForm:
    """metrics: (key, unit, last value or None)."""
    fields = []
    for key, unit, last in metrics:
        unit_txt = f" ({unit})" if unit else ""
        hint = (
            f"last: {fmt_number(last)}{unit if unit == '%' else (' ' + unit if unit else '')}"
            if last is not None
            else None
        )
        fields.append(
            FormField(key, f"{key}{unit_txt}", "number", optional=False, hint=hint, placeholder="this week's value")
        )
    fields.append(
        FormField(
            EVAL_FIELD, "Eval score (%) — if you re-ran the eval", "number", optional=True, placeholder="e.g. 96.2"
        )
    )
    fields.append(
        FormField(TRIAGE_FIELD, "Anything to triage?", "text", optional=True, placeholder="blockers, incidents, asks")
    )
    return CheckinForm(
        slug=slug,
        name=name,
        period=period,
        title="Weekly check-in",
        intro=f"This week's numbers for {name} ({slug}), {period}.",
        fields=tuple(fields),
    )


_NUM = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def _number(raw: str, label: str) -> float:
    text = raw.strip().rstrip("%").strip()
    if re.fullmatch(r"[+-]?\d+,\d+", text):
        raise ValueError(f"Use a decimal point, not a comma: {text.replace(',', '.')}.")
    if not _NUM.match(text):
        raise ValueError(f"{label} must be a number, such as 9 or 9.5.")
    value = float(text)
    if abs(value) >= 1e15:
        raise ValueError(f"{label} is out of range.")
    return value


def parse_checkin_answer(form: CheckinForm, raw: dict[str, object]) -> CheckinAnswer:
    """Validates every field at once so the user sees all mistakes in one go."""
    errors: dict[str, str] = {}
    values: dict[str, float] = {}
    eval_score: float | None = None
    triage: str | None = None
    for f in form.fields:
        given = raw.get(f.key)
        text = "" if given is None else str(given).strip()
        if f.key == TRIAGE_FIELD:
            if len(text) > MAX_TRIAGE:
                errors[f.key] = f"Keep it under {MAX_TRIAGE} characters."
            triage = text or None
            continue
        if not text:
            if not f.optional:
                errors[f.key] = f"Enter this week's {f.key}."
            continue
        try:
            value = _number(text, f.key)
        except ValueError as e:
            errors[f.key] = str(e)
            continue
        if f.key == EVAL_FIELD:
            if 0 < value < 1 and "%" not in text:
                value = round(value * 100, 6)
            if not 0 <= value <= 100:
                errors[f.key] = "The eval score is a percentage between 0 and 100."
                continue
            eval_score = value
        else:
            values[f.key] = value
    known = {f.key for f in form.fields}
    metric_keys = [f.key for f in form.fields if not f.key.startswith(FORM_PREFIX)]
    for key in raw:
        if key not in known:
            listed = ", ".join(metric_keys) or "none yet"
            errors[key] = f"`{key[:64]}` is not a metric of {form.slug}; its metrics are {listed}."
    if errors:
        raise FormErrors(errors)
    return CheckinAnswer(values, eval_score, triage)


FORM_FAILED = "I could not open the check-in form. Answer in one line instead:"


def answer_command(form: CheckinForm) -> str:
    """The `answer` command that fills in this form: the fallback when a form cannot open."""
    metrics = " ".join(f"{f.key} <value>" for f in form.fields if not f.key.startswith(FORM_PREFIX))
    return f"answer {form.slug} {metrics} [eval <pct>] [note <text>]".replace("  ", " ")
