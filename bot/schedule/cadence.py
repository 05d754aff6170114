"""Weekly check-in times: local wall time in an IANA zone, converted to UTC (DST-correct)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def period_of(due_at: datetime, tz: str) -> str:
    """The ISO week the check-in belongs to, in the pilot's local calendar: `2026-W48`."""
    local = due_at.astimezone(ZoneInfo(tz))
    iso = local.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def _local_to_utc(day: object, at: time, zone: ZoneInfo) -> datetime:
    local = datetime.combine(day, at, tzinfo=zone)  # type: ignore[arg-type]
    # A wall time skipped by a spring-forward gap does not exist: move it past the gap.
    roundtrip = local.astimezone(UTC).astimezone(zone)
    if roundtrip.replace(tzinfo=None) != local.replace(tzinfo=None):
        local = roundtrip
    return local.astimezone(UTC)


def next_due(weekday: int, hhmm: str, tz: str, after: datetime) -> datetime:
    """The first cadence moment strictly after `after` (UTC)."""
    zone = ZoneInfo(tz)
    local_after = after.astimezone(zone)
    hh, mm = (int(x) for x in hhmm.split(":"))
    day = local_after.date() + timedelta(days=(weekday - local_after.weekday()) % 7)
    for _ in range(3):
        candidate = _local_to_utc(day, time(hh, mm), zone)
        if candidate > after:
            return candidate
        day = day + timedelta(days=7)
    raise AssertionError("unreachable")


def latest_due(weekday: int, hhmm: str, tz: str, at_or_before: datetime) -> datetime:
    """The most recent cadence moment at or before the given time."""
    zone = ZoneInfo(tz)
    hh, mm = (int(x) for x in hhmm.split(":"))
    nxt_local = next_due(weekday, hhmm, tz, at_or_before).astimezone(zone)
    return _local_to_utc(nxt_local.date() - timedelta(days=7), time(hh, mm), zone)
