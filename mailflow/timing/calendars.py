"""Holiday calendars and business-day arithmetic (pure; holiday tables are built once per year)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from mailflow.timing.offsets import Offset

_CALENDAR_KEYS = {"country", "subdiv", "extra"}
CLOSURE = "closure"  # the name is_holiday gives to the consultant's own extra dates


@dataclass(frozen=True)
class Calendar:
    """Public holidays of a country (and subdivision) plus extra closure dates; hashable."""

    country: str | None
    subdiv: str | None
    extra: frozenset[date]
    # per-year closed weekdays, filled on first use: the planner asks thousands of times a tick
    _closed: dict[int, frozenset[date]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def is_holiday(self, d: date) -> str | None:
        """Name the holiday on `d` ("Christmas Day", or "closure" for extra dates), else None."""
        if self.country is not None:
            name = _year_table(self.country, self.subdiv, d.year).get(d)
            if name:
                return name
        return CLOSURE if d in self.extra else None

    def is_business_day(self, d: date) -> bool:
        """True for Monday to Friday when no holiday or closure falls on the day."""
        if d.weekday() >= 5:
            return False
        closed = self._closed.get(d.year)
        if closed is None:
            closed = self._closed[d.year] = _closed_weekdays(self, d.year)
        return d not in closed


def _country_holidays(*args: Any, **kwargs: Any) -> Any:
    # imported on first use: the library takes ~20 ms to import, and commands such as
    # `mailflow --help` never need a calendar
    import holidays

    return holidays.country_holidays(*args, **kwargs)


@lru_cache(maxsize=256)
def _entity(country: str, subdiv: str | None) -> tuple[str | None, str | None]:
    """Check (country, subdiv) once; return the subdivision the library knows and a language."""
    for candidate in dict.fromkeys([subdiv, subdiv.upper() if subdiv else subdiv]):
        try:
            table = _country_holidays(country, subdiv=candidate, years=[])
        except NotImplementedError:
            continue
        # English names read best in reasons and logs; keep the default where there is none
        languages = getattr(table, "supported_languages", ()) or ()
        return candidate, ("en_US" if "en_US" in languages else None)
    try:
        _country_holidays(country, years=[])
    except NotImplementedError:
        raise ValueError(f"unknown holiday country {country!r}") from None
    raise ValueError(f"unknown holiday subdivision {subdiv!r} for country {country!r}")


@lru_cache(maxsize=4096)
def _year_table(country: str, subdiv: str | None, year: int) -> dict[date, str]:
    """The holidays of one country/subdivision in one year, built once and reused."""
    subdiv, language = _entity(country, subdiv)
    table = _country_holidays(country, subdiv=subdiv, years=year, language=language)
    return {d: name for d, name in table.items() if d.year == year}


@lru_cache(maxsize=8192)
def _closed_weekdays(cal: Calendar, year: int) -> frozenset[date]:
    """Mon-Fri dates of `year` that are holidays or closures of `cal`."""
    days = {d for d in cal.extra if d.year == year}
    if cal.country is not None:
        days.update(_year_table(cal.country, cal.subdiv, year))
    return frozenset(d for d in days if d.weekday() < 5)


@lru_cache(maxsize=8192)
def _closed_sorted(cal: Calendar, year: int) -> tuple[date, ...]:
    return tuple(sorted(_closed_weekdays(cal, year)))


def _as_date(value: Any, where: str) -> date:
    # TOML datetimes are date subclasses: a time of day here is a mistake, not a date
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{where} must be a date like 2026-12-24, not {value!r}")


@lru_cache(maxsize=1024)
def _make_calendar(
    country: str | None, subdiv: str | None, extra: tuple[Hashable, ...]
) -> Calendar:
    if subdiv is not None and country is None:
        raise ValueError(f"holiday subdivision {subdiv!r} needs a country")
    if country is not None:
        subdiv, _ = _entity(country, subdiv)
    dates = frozenset(_as_date(v, f"extra[{i}]") for i, v in enumerate(extra))
    return Calendar(country, subdiv, dates)


def _optional_text(spec: dict[str, Any], key: str) -> str | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"holiday {key!r} must be text, not {value!r}")
    return value.strip() or None


def make_calendar(spec: dict[str, Any] | None) -> Calendar:
    """Build (or reuse) the Calendar for a {country, subdiv, extra} table; None = no holidays."""
    if not spec:
        return _make_calendar(None, None, ())
    unknown = sorted(set(spec) - _CALENDAR_KEYS)
    if unknown:
        raise ValueError(f"unknown holidays key {unknown[0]!r} (expected country, subdiv, extra)")
    country = _optional_text(spec, "country")
    extra = spec.get("extra", [])
    if not isinstance(extra, list | tuple):
        raise ValueError(f"holidays 'extra' must be a list of dates, not {extra!r}")
    try:
        return _make_calendar(country.upper() if country else None, _optional_text(spec, "subdiv"),
                              tuple(extra))
    except TypeError:  # an unhashable item in extra (e.g. a table): report it like any bad date
        for i, v in enumerate(extra):
            _as_date(v, f"extra[{i}]")
        raise


def add_business_days(d: date, n: int, cal: Calendar) -> date:
    """Step n business days from d (backwards if n < 0); n = 0 rolls forward to a business day."""
    if n == 0:
        while not cal.is_business_day(d):
            d += timedelta(days=1)
        return d
    step = timedelta(days=1 if n > 0 else -1)
    remaining = abs(n)
    # d itself never counts, so 1 business day after Saturday is Monday (like WORKDAY)
    while remaining:
        d += step
        if cal.is_business_day(d):
            remaining -= 1
    return d


def _weekdays_upto(d: date) -> int:
    """Mon-Fri days from 0001-01-01 (a Monday) to d inclusive."""
    o = d.toordinal()
    return 5 * (o // 7) + min(o % 7, 5)


def _closed_in(cal: Calendar, a: date, b: date) -> int:
    """Closed Mon-Fri days in (a, b]."""
    count = 0
    for year in range(a.year, b.year + 1):
        days = _closed_sorted(cal, year)
        count += bisect_right(days, b) - bisect_left(days, a + timedelta(days=1)) if days else 0
    return count


def business_days_between(a: date, b: date, cal: Calendar) -> int:
    """Business days in (a, b] (negative when b < a): how late b is against a due date a."""
    if b < a:
        return -business_days_between(b, a, cal)
    return _weekdays_upto(b) - _weekdays_upto(a) - _closed_in(cal, a, b)


def add_offset(anchor: date, offset: Offset, cal: Calendar) -> date:
    """The date `offset` lands on from `anchor`, in calendar or business days."""
    try:
        if offset.business:
            return add_business_days(anchor, offset.days, cal)
        return anchor + timedelta(days=offset.days)
    except OverflowError:
        raise ValueError(f"{offset.describe()} from {anchor} is outside the calendar") from None
