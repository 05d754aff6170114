"""A value against the unit its metric is measured in: the same unit under another name is the
same unit, any other unit is refused naming the metric's own, and a `%` metric reads a bare
fraction the way `eval` does. Pure; the metric use cases (bot/services/metrics.py) call `fit`."""

from __future__ import annotations

from bot.errors import UserError
from bot.gaps import fmt_number, fmt_pct

# Names that mean one unit; the first is the canonical one.
_SAME: tuple[tuple[str, ...], ...] = (
    ("s", "sec", "secs", "second", "seconds"),
    ("min", "mins", "minute", "minutes"),
    ("h", "hr", "hrs", "hour", "hours"),
    ("d", "day", "days"),
    ("%", "pct", "percent"),
    ("$", "usd", "us$"),
    ("eur", "€", "euro", "euros"),
    ("gbp", "£"),
)
_CANONICAL = {name: group[0] for group in _SAME for name in group}
_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def canonical(unit: str) -> str:
    return _CANONICAL.get(unit.strip().lower(), unit.strip().lower())


def same_unit(a: str, b: str) -> bool:
    return canonical(a) == canonical(b)


def is_percent(unit: str) -> bool:
    return canonical(unit) == "%"


def convert(value: float, unit: str, to: str) -> float | None:
    """`value` in `unit` expressed in `to`, when both are durations; None otherwise."""
    a, b = _SECONDS.get(canonical(unit)), _SECONDS.get(canonical(to))
    return None if a is None or b is None else value * a / b


def fit(value: float, unit: str | None, metric_unit: str, example: str) -> tuple[float, str | None]:
    """The value as the metric stores it, and a note for the reply when it was read as a fraction.

    `example` is the command without its value (`measure support-drafts handle_time`), for the hint.
    """
    key = example.split()[-1]
    if unit is not None and metric_unit and not same_unit(unit, metric_unit):
        converted = convert(value, unit, metric_unit)
        shown = fmt_number(round(converted, 4)) if converted is not None else f"<value in {metric_unit}>"
        unit_word = "" if is_percent(metric_unit) or converted is None else f" {metric_unit}"
        raise UserError(
            f"`{key}` is measured in {metric_unit}, not {unit}: write the value in {metric_unit}, "
            f"as in `{example} {shown}{unit_word}`."
        )
    if not is_percent(metric_unit):
        return value, None
    note = None
    if unit is None and 0 < value < 1:
        note = f"(I read {fmt_number(value)} as {fmt_pct(value * 100)}, the way `eval` reads a fraction.)"
        value = round(value * 100, 6)
    if not 0 <= value <= 100:
        raise UserError(f"`{key}` is a percentage: give a value from 0 to 100, not {fmt_number(value)}.")
    return value, note
