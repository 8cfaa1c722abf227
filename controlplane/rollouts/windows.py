"""Weekly maintenance windows in an organisation's time zone.

Pure functions over aware datetimes: no clock reads, no database, so the
planner can evaluate thousands of servers quickly and tests can inject any
instant (including the two DST transitions).

A window opens at a local wall-clock time (Monday 02:00 Europe/Berlin) and
lasts `duration_minutes` of real time. A start that falls into a spring-
forward gap opens as much later as the gap is long (02:30 becomes 03:30
summer time); a start that falls into an autumn repeat opens at its first
occurrence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True, order=True)
class WeeklyWindow:
    weekday: int  # ISO: 1 = Monday … 7 = Sunday
    start_minute: int  # minutes after local midnight
    duration_minutes: int

    def __post_init__(self) -> None:
        if not 1 <= self.weekday <= 7:
            raise ValueError("weekday must be 1 (Monday) to 7 (Sunday)")
        if not 0 <= self.start_minute < MINUTES_PER_DAY:
            raise ValueError("start_minute must be within the day (0 to 1439)")
        if not 1 <= self.duration_minutes <= 7 * MINUTES_PER_DAY:
            raise ValueError("duration_minutes must be 1 minute to 7 days")


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _opening(day: date, window: WeeklyWindow, tz: ZoneInfo) -> datetime:
    """The UTC instant a window opens on a given local day (fold=0: the
    first occurrence of a repeated wall time, and a wall time in a gap read
    with the offset before the gap, which moves it forward by the gap)."""
    hour, minute = divmod(window.start_minute, 60)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)


def current_or_next(
    now: datetime, timezone: str, windows: Sequence[WeeklyWindow]
) -> tuple[datetime, datetime] | None:
    """The window `now` is inside, or else the next one to open, as UTC
    (opens, closes); None when there are no windows."""
    if not windows:
        return None
    tz = zone(timezone)
    today = now.astimezone(tz).date()
    best: tuple[datetime, datetime] | None = None
    # Windows may last up to a week, so one that opened up to 7 days ago may
    # still be open; 8 days ahead always reaches the next opening.
    for offset in range(-7, 8):
        day = today + timedelta(days=offset)
        weekday = day.isoweekday()
        for window in windows:
            if window.weekday != weekday:
                continue
            opens = _opening(day, window, tz)
            closes = opens + timedelta(minutes=window.duration_minutes)
            if closes <= now:
                continue
            if opens <= now:
                return opens, closes
            if best is None or opens < best[0]:
                best = (opens, closes)
    return best


def is_open(now: datetime, timezone: str, windows: Sequence[WeeklyWindow]) -> bool:
    """A server without windows may be maintained at any time."""
    if not windows:
        return True
    found = current_or_next(now, timezone, windows)
    return found is not None and found[0] <= now


def next_opening(now: datetime, timezone: str, windows: Sequence[WeeklyWindow]) -> datetime:
    """When a server may next be touched: now if it may be touched now."""
    found = current_or_next(now, timezone, windows)
    if found is None or found[0] <= now:
        return now
    return found[0]
