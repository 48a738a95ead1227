"""Send windows in the client's local wall-clock time, time zones, and finding the next opening."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailflow.timing.calendars import CLOSURE, Calendar

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_LOOKUP = {n.lower(): i for i, n in enumerate(DAY_NAMES)} | {
    full: i
    for i, full in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}
_ALL_DAYS = frozenset(range(7))
_WINDOW_KEYS = {"days", "start", "end"}
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")
MAX_SEARCH_DAYS = 400  # a window that never opens must fail loudly, not spin


@dataclass(frozen=True)
class Window:
    """Days of the week (Monday=0) and a same-day [start, end) span of local wall-clock time."""

    days: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.days or not self.days <= _ALL_DAYS:
            raise ValueError(f"window days must be weekday numbers 0-6, not {sorted(self.days)}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are local wall-clock times, without a time zone")
        if self.end <= self.start:
            raise ValueError(
                f"window end {self.end:%H:%M} must be after start {self.start:%H:%M} "
                f"(overnight windows are not supported)"
            )

    def describe(self) -> str:
        """Say the window like "Mon-Fri 09:00-17:00"."""
        end = "24:00" if self.end == time.max else f"{self.end:%H:%M}"
        return f"{_describe_days(self.days)} {self.start:%H:%M}-{end}"

    def contains(self, local: datetime) -> bool:
        """True when a local datetime falls on a window day inside [start, end)."""
        return local.weekday() in self.days and self.start <= local.time() < self.end


DEFAULT_WINDOW = Window(frozenset(range(5)), time(9, 0), time(17, 0))


def _describe_days(days: frozenset[int]) -> str:
    if days == _ALL_DAYS:
        return "every day"
    runs: list[list[int]] = []
    for d in sorted(days):
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}")
        else:
            parts.extend(DAY_NAMES[d] for d in run)
    return ", ".join(parts)


def _day_number(name: str) -> int:
    try:
        return _DAY_LOOKUP[name.strip().lower()]
    except KeyError:
        raise ValueError(f"window 'days': unknown day {name.strip()!r} (use mon..sun)") from None


def _parse_days(value: Any) -> frozenset[int]:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("every day", "everyday", "all", "daily"):
            return _ALL_DAYS
        if text in ("weekdays", "workdays"):
            return frozenset(range(5))
        items: list[Any] = [p for p in text.split(",") if p.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(f"window 'days' must be text like \"mon-fri\" or a list, not {value!r}")
    days: set[int] = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"window 'days': {item!r} is not a day name")
        first, sep, last = item.partition("-")
        if not sep:
            days.add(_day_number(first))
            continue
        a, b = _day_number(first), _day_number(last)
        # "fri-mon" wraps over the weekend
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    if not days:
        raise ValueError("window 'days' names no day")
    return frozenset(days)


def _parse_time(value: Any, key: str) -> time:
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValueError(f"window {key!r} must be a local time without an offset")
        return value
    m = _TIME_RE.match(value.strip()) if isinstance(value, str) else None
    if m and int(m[1]) < 24 and int(m[2]) < 60:
        return time(int(m[1]), int(m[2]))
    if m and key == "end" and value.strip() == "24:00":
        return time.max  # the end is exclusive, so this is "until midnight"
    raise ValueError(f"window {key!r} must be a time like \"09:00\", not {value!r}")


def parse_window(spec: dict[str, Any] | None, base: Window | None = None) -> Window:
    """Read a {days, start, end} table; missing keys come from `base` (default Mon-Fri 9-17)."""
    base = base or DEFAULT_WINDOW
    if not spec:
        return base
    unknown = sorted(set(spec) - _WINDOW_KEYS)
    if unknown:
        raise ValueError(f"unknown window key {unknown[0]!r} (expected days, start, end)")
    days = _parse_days(spec["days"]) if "days" in spec else base.days
    start = _parse_time(spec["start"], "start") if "start" in spec else base.start
    end = _parse_time(spec["end"], "end") if "end" in spec else base.end
    if end <= start:
        key = "end" if "end" in spec else "start"
        raise ValueError(
            f"window {key!r}: end {end:%H:%M} must be after start {start:%H:%M} "
            f"(overnight windows are not supported)"
        )
    return Window(days, start, end)


def load_zone(name: str) -> ZoneInfo:
    """The IANA time zone called `name`."""
    try:
        if not isinstance(name, str) or not name.strip():
            raise ValueError
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}{_zone_hint(name)}") from None


def _zone_hint(name: object) -> str:
    """' (did you mean Europe/London?)' for a near miss of an IANA name, else ''."""
    import difflib
    from zoneinfo import available_timezones
    if not isinstance(name, str) or not name.strip():
        return ""
    close = difflib.get_close_matches(name.strip(), sorted(available_timezones()), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def as_utc(moment: datetime, what: str = "time") -> datetime:
    """The same instant as an aware UTC datetime; a naive datetime is refused (it has no zone)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} {moment.isoformat()} has no time zone; expected an aware time")
    return moment.astimezone(UTC)


def to_local(utc: datetime, zone: ZoneInfo) -> datetime:
    """The instant as an aware datetime in `zone`."""
    return as_utc(utc).astimezone(zone)


def format_wall(local: datetime) -> str:
    """A local datetime's weekday, date and wall time, e.g. "Mon 2027-01-18 09:00"."""
    return f"{DAY_NAMES[local.weekday()]} {local:%Y-%m-%d %H:%M}"


def format_day(d: date) -> str:
    """A date with its weekday, e.g. "Tue 2027-01-19"."""
    return f"{DAY_NAMES[d.weekday()]} {d.isoformat()}"


def format_local(utc: datetime, zone: ZoneInfo) -> str:
    """Say an instant in local time, e.g. "Tue 2027-01-19 09:00 EST"."""
    local = to_local(utc, zone)
    return f"{format_wall(local)} {local.tzname()}"


def _at(day: date, wall: time, zone: ZoneInfo, fold: int = 0) -> datetime:
    """The UTC instant of a local wall time with the given fold (no gap handling)."""
    return datetime.combine(day, wall, zone).replace(fold=fold).astimezone(UTC)


def local_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first UTC instant at which the local clock shows `wall` or later on `day`."""
    first = _at(day, wall, zone)
    shown = first.astimezone(zone)
    if shown.date() == day and shown.time() == wall:
        return first  # exists; if the hour repeats, fold=0 is its first occurrence
    # inside a spring-forward gap: the clock jumps past `wall` at the change itself
    change = _transition_on(day, zone)
    return change if change is not None and change < first else first


def _transition_on(day: date, zone: ZoneInfo) -> datetime | None:
    """The UTC instant at which the zone's offset changes during local `day`, if it does."""
    midnight, next_midnight = time(0), day + timedelta(days=1)
    lo = min(_at(day, midnight, zone, f) for f in (0, 1))
    hi = max(_at(next_midnight, midnight, zone, f) for f in (0, 1))
    before = lo.astimezone(zone).utcoffset()
    if before == hi.astimezone(zone).utcoffset():
        return None  # (two changes in one day would cancel out here; no zone does that)
    lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
    while hi_s - lo_s > 1:  # offsets change on whole seconds
        mid = (lo_s + hi_s) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == before:
            lo_s = mid
        else:
            hi_s = mid
    return datetime.fromtimestamp(hi_s, UTC)


def _first_in_day(day: date, earliest: datetime, zone: ZoneInfo, window: Window) -> datetime | None:
    """The first UTC instant >= earliest whose local time is inside the window on `day`."""
    shown = earliest.astimezone(zone)
    if shown.date() == day and window.contains(shown):
        return earliest  # the common case, and nothing can be earlier
    # The window can only open at: `earliest` itself, the wall-clock start (either fold), or a
    # clock change (a start inside a spring-forward gap, or the repeated hour after falling back).
    candidates = [earliest, local_instant(day, window.start, zone), _at(day, window.start, zone, 1)]
    if (change := _transition_on(day, zone)) is not None:
        candidates.append(change)
    inside = []
    for c in candidates:
        local = c.astimezone(zone)
        if c >= earliest and local.date() == day and window.contains(local):
            inside.append(c)
    return min(inside, default=None)


def zone_name(zone: ZoneInfo) -> str:
    """The zone's IANA name, e.g. "America/New_York"."""
    return zone.key or str(zone)  # a zone loaded from a file has no key


def _closed_reason(day: date, window: Window, cal: Calendar) -> str | None:
    if day.weekday() not in window.days:
        return f"{format_day(day)} is outside {window.describe()}"
    name = cal.is_holiday(day)
    if name == CLOSURE:
        return f"{format_day(day)} is a closure day"
    if name:
        return f"{format_day(day)} is {name}"
    return None


def _next_window_day(day: date, window: Window) -> date:
    day += timedelta(days=1)
    while day.weekday() not in window.days:
        day += timedelta(days=1)
    return day


def next_opening(
    earliest_utc: datetime, zone: ZoneInfo, window: Window, cal: Calendar
) -> tuple[datetime, list[str]]:
    """The first UTC instant >= earliest_utc inside the window on an open day, and why it moved."""
    earliest = as_utc(earliest_utc, "earliest send time")
    reasons: list[str] = []
    day = first_day = earliest.astimezone(zone).date()
    while (day - first_day).days <= MAX_SEARCH_DAYS:
        why = _closed_reason(day, window, cal)
        if why is None:
            hit = _first_in_day(day, earliest, zone, window)
            if hit is not None:
                if hit != earliest and (note := _moved(earliest, hit, zone, window, day)):
                    reasons.append(note)
                return hit, reasons
            why = _missed(earliest, zone, window, day)
        day = _next_window_day(day, window)
        reasons.append(f"{why} -> {format_day(day)} {window.start:%H:%M}")
    raise ValueError(
        f"no send opening within {MAX_SEARCH_DAYS} days after "
        f"{format_local(earliest, zone)} in {window.describe()} (check the window and holidays)"
    )


def _moved(earliest: datetime, hit: datetime, zone: ZoneInfo, window: Window, day: date) -> str:
    """Explain a move within `day`; "" when an earlier reason already named the target."""
    local, hit_local = earliest.astimezone(zone), hit.astimezone(zone)
    if local.date() == day and not window.contains(local):
        # after falling back, the same wall-clock hour comes round a second time
        again = f" ({zone_name(zone)} clocks go back)" if hit_local.time() < local.time() else ""
        target = format_wall(hit_local)
        return f"{format_wall(local)} is outside {window.describe()} -> {target}{again}"
    if hit_local.time() != window.start:
        return (f"{window.start:%H:%M} on {format_day(day)} is skipped by a clock change "
                f"in {zone_name(zone)} -> {format_wall(hit_local)}")
    return ""


def _missed(earliest: datetime, zone: ZoneInfo, window: Window, day: date) -> str:
    local = earliest.astimezone(zone)
    if local.date() == day and local.time() >= window.end:
        return f"{format_wall(local)} is outside {window.describe()}"
    span = window.describe().rsplit(" ", 1)[1]
    return f"{format_day(day)} has no {span} in {zone_name(zone)} (clock change)"
