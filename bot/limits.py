"""One length rule per text field, and the characters no text field may hold.

The limits are the column lengths declared in storage/models.py, read from the model metadata so
there is one number per field: SQLite ignores VARCHAR lengths and PostgreSQL raises on them, so
both engines only ever see text that was checked here first. NUL and lone surrogates (half a
UTF-16 pair: neither engine can store them) are refused with the same kind of sentence.

The grammar's parsers and the REST payload parser call `text(...)`; the unit of work checks every
row it flushes with `check_row(...)`, so nothing slips through; text that comes from a platform
(display names from mentions and rosters) is trimmed with `clip(...)` instead of refusing the
user's command.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers every table in the metadata)
from bot.errors import UserError

_BAD = re.compile("[\x00\ud800-\udfff]")

# How a column is named in a sentence; any other column is named "<table> <column>".
LABELS: dict[tuple[str, str], str] = {
    ("pilot", "slug"): "slug",
    ("pilot", "name"): "pilot name",
    ("pilot", "owner_id"): "owner id",
    ("pilot", "owner_name"): "owner name",
    ("pilot", "escalation_channel_id"): "channel id",
    ("pilot", "escalation_channel_name"): "channel name",
    ("pilot", "checkin_tz"): "time zone",
    ("pilot", "created_by"): "user reference",
    ("pilot", "flag_reason"): "reason",
    ("metric", "key"): "metric key",
    ("metric", "unit"): "unit",
    ("eval_run", "version"): "version",
    ("path_item", "note"): "note",
    ("api_token", "name"): "token name",
}


def limit(table: str, column: str) -> int:
    """The declared length of a text column (storage/models.py)."""
    length = getattr(SQLModel.metadata.tables[table].c[column].type, "length", None)
    assert isinstance(length, int), f"{table}.{column} has no declared length"
    return length


def label(table: str, column: str) -> str:
    return LABELS.get((table, column), f"{table.replace('_', ' ')} {column.replace('_', ' ')}")


def problem(value: str, what: str, most: int) -> str | None:
    """The sentence refusing `value` as the field `what` (at most `most` characters), or None."""
    bad = _BAD.search(value)
    if bad is not None:
        if bad.group() == "\x00":
            return f"The {what} contains a NUL character; remove it."
        return f"The {what} contains a broken character (half of a UTF-16 surrogate pair); send it as valid text."
    if len(value) > most:
        return f"The {what} is too long ({len(value)} characters; {most} at most)."
    return None


def text(value: str, table: str, column: str, what: str | None = None) -> str:
    """`value` as the column `table.column` accepts it, or UserError naming the field and its limit."""
    sentence = problem(value, what or label(table, column), limit(table, column))
    if sentence is not None:
        raise UserError(sentence)
    return value


def clip(value: str, table: str, column: str) -> str:
    """Text from a platform (a display name), made storable: bad characters dropped, cut to length."""
    value = _BAD.sub("", value)
    most = limit(table, column)
    return value if len(value) <= most else value[: most - 1] + "…"


def check_row(row: Any) -> None:
    """Refuses (UserError) a row whose text columns break their rule; the unit of work calls it
    for every new or changed row before a flush."""
    table = getattr(row, "__table__", None)
    if not isinstance(table, sa.Table):
        return
    for col in table.columns:
        value = getattr(row, col.name, None)
        if not isinstance(value, str):
            continue
        length = getattr(col.type, "length", None)  # SQLModel's AutoString passes its String's length on
        most = length if isinstance(length, int) else len(value)
        sentence = problem(value, label(table.name, col.name), most)
        if sentence is not None:
            raise UserError(sentence)
