"""The pure timing core: offsets, business days, send windows and time zones.

Nothing here reads the clock or touches files: the planner passes `now`, the engagement's
zone, window and calendar in, and gets an exact UTC instant with human reasons back.
The pieces live in timing_offset, timing_calendar and timing_window; import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from mailflow.timing.calendars import (
    CLOSURE,
    Calendar,
    add_business_days,
    add_offset,
    business_days_between,
    make_calendar,
)
from mailflow.timing.offsets import Offset, parse_duration, parse_offset
from mailflow.timing.windows import (
    DEFAULT_WINDOW,
    MAX_SEARCH_DAYS,
    Window,
    as_utc,
    format_day,
    format_local,
    format_wall,
    load_zone,
    local_instant,
    next_opening,
    parse_window,
    to_local,
    zone_name,
)

__all__ = [
    "CLOSURE",
    "DEFAULT_WINDOW",
    "MAX_SEARCH_DAYS",
    "Calendar",
    "Offset",
    "Slot",
    "Window",
    "add_business_days",
    "add_offset",
    "as_utc",
    "business_days_between",
    "due_slot",
    "format_day",
    "format_local",
    "format_wall",
    "load_zone",
    "local_instant",
    "make_calendar",
    "next_opening",
    "parse_duration",
    "parse_offset",
    "parse_window",
    "to_local",
    "zone_name",
]


@dataclass(frozen=True)
class Slot:
    """When to send: the UTC instant, the same instant in the client's zone, and why."""

    utc: datetime  # aware, UTC
    local: datetime  # aware, in the engagement's zone
    reasons: tuple[str, ...]


def due_slot(
    anchor_date: date,
    offset: Offset,
    zone: ZoneInfo,
    window: Window,
    cal: Calendar,
    at: time | None = None,
    not_before_utc: datetime | None = None,
) -> Slot:
    """The first send opening at or after `offset` from `anchor_date` and `not_before_utc`."""
    day = add_offset(anchor_date, offset, cal)
    wall = window.start if at is None else at
    if offset.anchor is None:
        first = f"{offset.describe()} after {anchor_date.isoformat()}"
    else:
        first = f"{offset.describe()} ({anchor_date.isoformat()})"
    reasons = [f"{first} = {format_day(day)} {wall:%H:%M}"]
    earliest = local_instant(day, wall, zone)
    if (shown := earliest.astimezone(zone)).time() != wall:
        reasons.append(f"{wall:%H:%M} does not exist on {format_day(day)} in {zone_name(zone)} "
                       f"(clocks go forward) -> {format_wall(shown)}")
    if not_before_utc is not None and (floor := as_utc(not_before_utc, "not_before")) > earliest:
        # the previous step's actual send (or an order guard) comes later: start from there
        reasons.append(f"not before {format_local(floor, zone)}")
        earliest = floor
    utc, moves = next_opening(earliest, zone, window, cal)
    return Slot(utc=utc, local=to_local(utc, zone), reasons=tuple(reasons + moves))
