"""Unit tests of the pure timing core: grammar, windows, calendars, business days, zones, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailflow.timing import (
    DEFAULT_WINDOW,
    Calendar,
    Offset,
    Window,
    add_business_days,
    add_offset,
    business_days_between,
    due_slot,
    format_local,
    load_zone,
    make_calendar,
    next_opening,
    parse_duration,
    parse_offset,
    parse_window,
    to_local,
)

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
NONE = make_calendar(None)
US = make_calendar({"country": "US"})
WEEKDAYS = DEFAULT_WINDOW


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)


# --- offsets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30 days before contract_end", Offset(-30, False, "contract_end")),
        ("10 business days before contract_end", Offset(-10, True, "contract_end")),
        ("1 day after previous", Offset(1, False, "previous")),
        ("2 weeks before handover_date", Offset(-14, False, "handover_date")),
        ("2 business weeks before handover_date", Offset(-10, True, "handover_date")),
        ("1 week after x", Offset(7, False, "x")),
        ("on contract_end", Offset(0, False, "contract_end")),
        ("contract_end", Offset(0, False, "contract_end")),
        ("3 business days after deliverables_recap", Offset(3, True, "deliverables_recap")),
        ("5 business days after reply to notice", Offset(5, True, "reply:notice")),
        ("2 days after reply", Offset(2, False, "reply")),
        ("on reply to timeline_notice", Offset(0, False, "reply:timeline_notice")),
        ("5 business days", Offset(5, True, None)),
        ("3 days", Offset(3, False, None)),
        ("1 day", Offset(1, False, None)),
        ("-10 business days from contract_end", Offset(-10, True, "contract_end")),
        ("+3 days from previous", Offset(3, False, "previous")),
        ("3 days from previous", Offset(3, False, "previous")),
        ("0 days before contract_end", Offset(0, False, "contract_end")),
        ("  10   BUSINESS Days\tBEFORE  contract_end ", Offset(-10, True, "contract_end")),
        ("2 Days After Previous", Offset(2, False, "previous")),
        ("ON Contract_End", Offset(0, False, "Contract_End")),  # names keep their case
        ("- 2 days from x", Offset(-2, False, "x")),
    ],
)
def test_parse_offset_text(text: str, expected: Offset) -> None:
    assert parse_offset(text) == expected


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"days": -10, "business": True, "from": "end"}, Offset(-10, True, "end")),
        ({"days": 3, "from": "previous"}, Offset(3, False, "previous")),
        ({"days": 5, "business": True}, Offset(5, True, None)),
        ({"days": 2, "from": "reply to notice"}, Offset(2, False, "reply:notice")),
        ({"days": 2, "from": "reply:timeline_notice"}, Offset(2, False, "reply:timeline_notice")),
        ({"days": 0, "from": "Reply"}, Offset(0, False, "reply")),
    ],
)
def test_parse_offset_table(table: dict, expected: Offset) -> None:
    assert parse_offset(table) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tomorrow-ish", "cannot read offset 'tomorrow-ish': expected e.g. \"10 business days"),
        ("", "cannot read offset ''"),
        ("before contract_end", "cannot read offset"),
        ("10 business days before", "cannot read offset"),
        ("10 fortnights before contract_end", "cannot read offset"),
        ("ten days before contract_end", "cannot read offset"),
        ("3 days before contract-end", "'contract-end' is not an anchor"),
        ("3 days after reply to", "is not an anchor"),
        ("-3 days after previous", "use a sign with 'from'"),
        ("+3 days before previous", "use a sign with 'from'"),
        ("-5 business days", "cannot have a sign"),
        ("1.5 days before x", "cannot read offset"),
        ("on", "cannot read offset"),
        ("days", "cannot read offset"),
        (None, "cannot read offset None"),
        (12, "cannot read offset 12"),
        ({"business": True}, "needs 'days'"),
        ({"days": "3"}, "'days' must be a whole number"),
        ({"days": True}, "'days' must be a whole number"),
        ({"days": 1.5}, "'days' must be a whole number"),
        ({"days": 3, "business": "yes"}, "'business' must be true or false"),
        ({"days": 3, "from": "not an anchor"}, "'from' must name an anchor"),
        ({"days": 3, "from": 7}, "'from' must name an anchor"),
        ({"days": -3}, "needs 'from'"),
        ({"days": 3, "form": "x"}, "unknown key 'form'"),
    ],
)
def test_parse_offset_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_offset(value)  # type: ignore[arg-type]
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("offset", "text"),
    [
        (Offset(-10, True, "contract_end"), "10 business days before contract_end"),
        (Offset(0, False, "contract_end"), "on contract_end"),
        (Offset(2, False, "deliverables_recap"), "2 days after deliverables_recap"),
        (Offset(1, False, "previous"), "1 day after previous"),
        (Offset(-1, True, "x"), "1 business day before x"),
        (Offset(0, True, "x"), "0 business days after x"),
        (Offset(5, True, "reply:notice"), "5 business days after reply to notice"),
        (Offset(2, False, "reply"), "2 days after reply"),
        (Offset(5, True, None), "5 business days"),
        (Offset(1, False, None), "1 day"),
    ],
)
def test_offset_describe_reads_back(offset: Offset, text: str) -> None:
    assert offset.describe() == text
    assert parse_offset(text) == offset


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5 business days", (5, True)),
        ("2 days", (2, False)),
        ("1 day", (1, False)),
        ("0 business days", (0, True)),
        ("2 weeks", (14, False)),
        ("1 business week", (5, True)),
        (" 3  Business  DAYS ", (3, True)),
    ],
)
def test_parse_duration(text: str, expected: tuple[int, bool]) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "-2 days", "2 days after previous", "2 hours", "2"])
def test_parse_duration_errors(text: str) -> None:
    with pytest.raises(ValueError, match=r"cannot read duration .*e.g. \"5 business days\""):
        parse_duration(text)


# --- windows -------------------------------------------------------------------------------


def test_parse_window_default() -> None:
    w = parse_window(None)
    assert w == Window(frozenset(range(5)), time(9), time(17))
    assert w.describe() == "Mon-Fri 09:00-17:00"
    assert parse_window({}) == w


@pytest.mark.parametrize(
    ("days", "expected", "described"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}, "Mon-Fri"),
        (["mon", "tue", "thu"], {0, 1, 3}, "Mon, Tue, Thu"),
        ("mon,wed,fri", {0, 2, 4}, "Mon, Wed, Fri"),
        ("Mon, Wed , FRI", {0, 2, 4}, "Mon, Wed, Fri"),
        ("every day", set(range(7)), "every day"),
        ("all", set(range(7)), "every day"),
        ("fri-mon", {4, 5, 6, 0}, "Mon, Fri-Sun"),
        ("sat-sun", {5, 6}, "Sat, Sun"),
        (["monday", "Tuesday"], {0, 1}, "Mon, Tue"),
        ("mon-wed,fri", {0, 1, 2, 4}, "Mon-Wed, Fri"),
        ("tue", {1}, "Tue"),
        ("weekdays", {0, 1, 2, 3, 4}, "Mon-Fri"),
    ],
)
def test_parse_window_days(days: object, expected: set[int], described: str) -> None:
    w = parse_window({"days": days})
    assert w.days == frozenset(expected)
    assert w.describe() == f"{described} 09:00-17:00"


def test_parse_window_inherits_from_base() -> None:
    base = parse_window({"days": "mon-thu", "start": "08:30", "end": "16:00"})
    assert parse_window({"end": "12:00"}, base) == Window(base.days, time(8, 30), time(12))
    assert parse_window({"days": "fri"}, base).start == time(8, 30)
    assert parse_window(None, base) is base
    assert parse_window({"start": time(10, 15)}).start == time(10, 15)  # a TOML local time


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"days": "mon-funday"}, "window 'days': unknown day 'funday'"),
        ({"days": ["mon", 3]}, "window 'days': 3 is not a day name"),
        ({"days": ""}, "window 'days' names no day"),
        ({"days": 5}, "window 'days' must be text"),
        ({"start": "9am"}, "window 'start' must be a time like \"09:00\", not '9am'"),
        ({"end": "24:01"}, "window 'end' must be a time"),
        ({"end": "17:60"}, "window 'end' must be a time"),
        ({"end": 17}, "window 'end' must be a time"),
        ({"start": "18:00"}, "window 'start': end 17:00 must be after start 18:00"),
        ({"start": "10:00", "end": "10:00"}, "window 'end': end 10:00 must be after start 10:00"),
        ({"start": "22:00", "end": "06:00"}, "overnight windows are not supported"),
        ({"hours": "9-5"}, "unknown window key 'hours'"),
    ],
)
def test_parse_window_errors(spec: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_window(spec)
    assert message in str(info.value)


def test_window_until_midnight() -> None:
    w = parse_window({"days": "all", "start": "00:00", "end": "24:00"})
    assert w.describe() == "every day 00:00-24:00"
    assert w.contains(local(NY, 2027, 1, 19, 23, 59, 59))
    with pytest.raises(ValueError, match="window 'start' must be a time"):
        parse_window({"start": "24:00"})


def test_window_checks_itself() -> None:
    with pytest.raises(ValueError, match="weekday numbers"):
        Window(frozenset(), time(9), time(17))
    with pytest.raises(ValueError, match="weekday numbers"):
        Window(frozenset({7}), time(9), time(17))
    with pytest.raises(ValueError, match="must be after start"):
        Window(frozenset({0}), time(17), time(9))


def test_window_end_is_exclusive() -> None:
    assert WEEKDAYS.contains(local(NY, 2027, 1, 19, 9, 0))
    assert WEEKDAYS.contains(local(NY, 2027, 1, 19, 16, 59, 59))
    assert not WEEKDAYS.contains(local(NY, 2027, 1, 19, 17, 0))
    assert not WEEKDAYS.contains(local(NY, 2027, 1, 16, 10, 0))  # a Saturday


# --- calendars -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "day", "name"),
    [
        ({"country": "US"}, date(2027, 1, 18), "Martin Luther King Jr. Day"),
        ({"country": "US"}, date(2027, 7, 5), "Independence Day (observed)"),
        ({"country": "US"}, date(2026, 12, 25), "Christmas Day"),
        ({"country": "us"}, date(2026, 12, 25), "Christmas Day"),
        ({"country": "US", "subdiv": "NY"}, date(2027, 2, 12), "Lincoln's Birthday"),
        ({"country": "US"}, date(2027, 2, 12), None),
        ({"country": "GB", "subdiv": "ENG"}, date(2026, 4, 6), "Easter Monday"),
        ({"country": "GB", "subdiv": "SCT"}, date(2026, 1, 2), "New Year Holiday"),
        ({"country": "GB", "subdiv": "ENG"}, date(2026, 1, 2), None),
        ({"country": "GB", "subdiv": "sct"}, date(2026, 1, 2), "New Year Holiday"),
        ({"country": "DE", "subdiv": "BY"}, date(2026, 1, 6), "Epiphany"),
        ({"country": "DE", "subdiv": "BE"}, date(2026, 1, 6), None),
        ({"country": "DE"}, date(2026, 10, 3), "German Unity Day"),
        ({"country": "FR"}, date(2026, 7, 14), "National Day"),
        ({"country": "ES"}, date(2026, 10, 12), "National Day"),
        ({"country": "US", "extra": ["2026-12-24", date(2026, 12, 31)]}, date(2026, 12, 24),
         "closure"),
        ({"country": "US", "extra": ["2026-12-24", date(2026, 12, 31)]}, date(2026, 12, 31),
         "closure"),
        ({"extra": ["2026-12-24"]}, date(2026, 12, 24), "closure"),
        ({"extra": ["2026-12-24"]}, date(2026, 12, 25), None),
        (None, date(2026, 12, 25), None),
    ],
)
def test_calendar_holidays(spec: dict | None, day: date, name: str | None) -> None:
    assert make_calendar(spec).is_holiday(day) == name


def test_holiday_name_wins_over_closure() -> None:
    cal = make_calendar({"country": "US", "extra": ["2026-12-25"]})
    assert cal.is_holiday(date(2026, 12, 25)) == "Christmas Day"


def test_business_days() -> None:
    assert US.is_business_day(date(2027, 1, 19))
    assert not US.is_business_day(date(2027, 1, 18))  # MLK day
    assert not US.is_business_day(date(2027, 1, 16))  # Saturday
    assert not make_calendar({"extra": ["2027-01-19"]}).is_business_day(date(2027, 1, 19))
    # a holiday on a weekend changes nothing for business days
    assert not US.is_business_day(date(2027, 7, 4))
    assert US.is_business_day(date(2027, 7, 6))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"country": "XX"}, "unknown holiday country 'XX'"),
        ({"country": "US", "subdiv": "ZZ"}, "unknown holiday subdivision 'ZZ' for country 'US'"),
        ({"subdiv": "NY"}, "holiday subdivision 'NY' needs a country"),
        ({"country": 12}, "holiday 'country' must be text"),
        ({"extra": ["24/12/2026"]}, "extra[0] must be a date like 2026-12-24, not '24/12/2026'"),
        ({"extra": ["2026-12-24", {}]}, "extra[1] must be a date"),
        ({"extra": [datetime(2026, 12, 24, 9)]}, "extra[0] must be a date"),
        ({"extra": "2026-12-24"}, "'extra' must be a list of dates"),
        ({"region": "NY"}, "unknown holidays key 'region'"),
    ],
)
def test_make_calendar_errors(spec: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        make_calendar(spec)
    assert message in str(info.value)


def test_calendar_is_cached_and_hashable() -> None:
    spec = {"country": "US", "subdiv": "NY", "extra": ["2026-12-24"]}
    a, b = make_calendar(spec), make_calendar(dict(spec))
    assert a is b
    assert hash(a) == hash(Calendar("US", "NY", frozenset({date(2026, 12, 24)})))
    assert {a: 1}[b] == 1


def test_directly_built_calendar_with_unknown_country_says_so() -> None:
    with pytest.raises(ValueError, match="unknown holiday country 'QQ'"):
        Calendar("QQ", None, frozenset()).is_holiday(date(2026, 1, 1))


# --- business-day arithmetic ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (date(2027, 1, 29), -10, date(2027, 1, 14)),  # skips the weekends and MLK day
        (date(2027, 1, 15), 1, date(2027, 1, 19)),  # Fri + 1 over the weekend and MLK day
        (date(2027, 1, 19), 0, date(2027, 1, 19)),
        (date(2027, 1, 16), 0, date(2027, 1, 19)),  # Saturday rolls to Tuesday (MLK Monday)
        (date(2027, 1, 16), 1, date(2027, 1, 19)),  # the start never counts
        (date(2027, 1, 16), -1, date(2027, 1, 15)),
        (date(2026, 12, 24), 1, date(2026, 12, 28)),  # Christmas Friday 25th
        (date(2026, 12, 31), 1, date(2027, 1, 4)),  # New Year's Day Friday
    ],
)
def test_add_business_days(start: date, n: int, expected: date) -> None:
    assert add_business_days(start, n, US) == expected


def test_add_offset_calendar_and_business() -> None:
    assert add_offset(date(2027, 1, 29), parse_offset("30 days before x"), US) == date(2026, 12, 30)
    assert add_offset(date(2027, 1, 29), parse_offset("on x"), US) == date(2027, 1, 29)
    assert add_offset(date(2027, 1, 16), parse_offset("on x"), US) == date(2027, 1, 16)
    assert add_offset(date(2027, 1, 16), parse_offset("0 business days after x"), US) == date(
        2027, 1, 19
    )
    assert add_offset(date(2027, 1, 29), parse_offset("1 business week before x"), US) == date(
        2027, 1, 22
    )


def test_add_offset_past_the_calendar() -> None:
    with pytest.raises(ValueError, match="outside the calendar"):
        add_offset(date(9999, 12, 30), parse_offset("3 days after x"), NONE)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (date(2027, 1, 15), date(2027, 1, 15), 0),
        (date(2027, 1, 15), date(2027, 1, 19), 1),  # Fri -> Tue over MLK day
        (date(2027, 1, 15), date(2027, 1, 18), 0),
        (date(2027, 1, 19), date(2027, 1, 15), -1),
        (date(2027, 1, 16), date(2027, 1, 17), 0),
        (date(2026, 12, 1), date(2027, 1, 31), 40),  # 43 weekdays - Christmas, New Year, MLK
    ],
)
def test_business_days_between(a: date, b: date, expected: int) -> None:
    assert business_days_between(a, b, US) == expected


def test_business_days_between_matches_counting_day_by_day() -> None:
    cal = make_calendar({"country": "DE", "subdiv": "BY", "extra": ["2026-12-24", "2027-06-01"]})
    a = date(2026, 11, 20)
    for span in range(0, 400, 7):
        b = a + timedelta(days=span)
        counted = sum(cal.is_business_day(a + timedelta(days=i)) for i in range(1, span + 1))
        assert business_days_between(a, b, cal) == counted


# --- zones ---------------------------------------------------------------------------------


def test_load_zone() -> None:
    assert load_zone("Asia/Kathmandu") == ZoneInfo("Asia/Kathmandu")
    for bad in ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime"]:
        with pytest.raises(ValueError, match=f"unknown time zone {bad!r}"):
            load_zone(bad)


@pytest.mark.parametrize(
    ("moment", "zone", "text"),
    [
        (utc(2027, 1, 19, 14), "America/New_York", "Tue 2027-01-19 09:00 EST"),
        (utc(2027, 7, 19, 13), "America/New_York", "Mon 2027-07-19 09:00 EDT"),
        (utc(2027, 3, 29, 7), "Europe/Berlin", "Mon 2027-03-29 09:00 CEST"),
        (utc(2027, 1, 19, 3, 30), "Asia/Kolkata", "Tue 2027-01-19 09:00 IST"),
        (utc(2027, 1, 19, 3, 15), "Asia/Kathmandu", "Tue 2027-01-19 09:00 +0545"),
        (utc(2027, 1, 18, 22, 30), "Australia/Adelaide", "Tue 2027-01-19 09:00 ACDT"),
    ],
)
def test_format_local(moment: datetime, zone: str, text: str) -> None:
    assert format_local(moment, ZoneInfo(zone)) == text
    assert to_local(moment, ZoneInfo(zone)).tzinfo == ZoneInfo(zone)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        to_local(datetime(2027, 1, 19, 9), NY)
    with pytest.raises(ValueError, match="has no time zone"):
        next_opening(datetime(2027, 1, 19, 9), NY, WEEKDAYS, US)


# --- next_opening --------------------------------------------------------------------------


def test_inside_the_window_is_returned_unchanged() -> None:
    moment = utc(2027, 1, 19, 15, 7, 3)
    assert next_opening(moment, NY, WEEKDAYS, US) == (moment, [])
    other_zone = moment.astimezone(BERLIN)  # any aware time is accepted, UTC comes back
    assert next_opening(other_zone, NY, WEEKDAYS, US)[0].tzinfo is UTC


def test_before_and_after_the_window() -> None:
    at, why = next_opening(local(NY, 2027, 1, 19, 7, 0), NY, WEEKDAYS, US)
    assert at == utc(2027, 1, 19, 14)
    assert why == ["Tue 2027-01-19 07:00 is outside Mon-Fri 09:00-17:00 -> Tue 2027-01-19 09:00"]
    at, why = next_opening(local(NY, 2027, 1, 15, 17, 0), NY, WEEKDAYS, US)
    assert at == utc(2027, 1, 19, 14)
    assert why == [
        "Fri 2027-01-15 17:00 is outside Mon-Fri 09:00-17:00 -> Mon 2027-01-18 09:00",
        "Mon 2027-01-18 is Martin Luther King Jr. Day -> Tue 2027-01-19 09:00",
    ]


def test_closure_days_and_one_day_windows() -> None:
    cal = make_calendar({"extra": ["2027-01-20", "2027-01-27"]})
    wednesdays = parse_window({"days": "wed"})
    at, why = next_opening(utc(2027, 1, 19, 12), NY, wednesdays, cal)
    assert to_local(at, NY) == local(NY, 2027, 2, 3, 9)
    assert why == [
        "Tue 2027-01-19 is outside Wed 09:00-17:00 -> Wed 2027-01-20 09:00",
        "Wed 2027-01-20 is a closure day -> Wed 2027-01-27 09:00",
        "Wed 2027-01-27 is a closure day -> Wed 2027-02-03 09:00",
    ]


def test_no_opening_at_all_fails_instead_of_spinning() -> None:
    every_wednesday = [date(2027, 1, 6) + timedelta(weeks=i) for i in range(70)]
    cal = make_calendar({"extra": [d.isoformat() for d in every_wednesday]})
    with pytest.raises(ValueError, match="no send opening within 400 days"):
        next_opening(utc(2027, 1, 1), NY, parse_window({"days": "wed"}), cal)


# DST: New York springs forward 2027-03-14 02:00 -> 03:00 and falls back 2027-11-07 02:00 -> 01:00;
# Berlin springs forward 2027-03-28 02:00 -> 03:00 and falls back 2027-10-31 03:00 -> 02:00.


def test_normal_window_on_dst_days() -> None:
    every_day = parse_window({"days": "all"})
    spring = due_slot(date(2027, 3, 14), parse_offset("on x"), NY, every_day, NONE)
    assert spring.utc == utc(2027, 3, 14, 13) and spring.local.hour == 9
    fall = due_slot(date(2027, 11, 7), parse_offset("on x"), NY, every_day, NONE)
    assert fall.utc == utc(2027, 11, 7, 14) and fall.local.hour == 9
    berlin = due_slot(date(2027, 3, 28), parse_offset("on x"), BERLIN, every_day, NONE)
    assert berlin.utc == utc(2027, 3, 28, 7) and berlin.local.hour == 9


def test_window_start_in_the_spring_forward_gap_opens_at_the_change() -> None:
    w = parse_window({"days": "all", "start": "02:30", "end": "04:00"})
    slot = due_slot(date(2027, 3, 14), parse_offset("on x"), NY, w, NONE)
    assert slot.utc == utc(2027, 3, 14, 7)  # 03:00 EDT, the first wall time after 02:30
    assert slot.local.time() == time(3, 0)
    assert slot.reasons[-1] == (
        "02:30 does not exist on Sun 2027-03-14 in America/New_York (clocks go forward) "
        "-> Sun 2027-03-14 03:00"
    )
    slot = due_slot(date(2027, 3, 28), parse_offset("on x"), BERLIN, w, NONE)
    assert slot.local == local(BERLIN, 2027, 3, 28, 3, 0)


def test_window_inside_the_gap_moves_to_the_next_day() -> None:
    w = parse_window({"days": "all", "start": "02:00", "end": "03:00"})
    at, why = next_opening(local(NY, 2027, 3, 14, 0, 30), NY, w, NONE)
    assert to_local(at, NY) == local(NY, 2027, 3, 15, 2, 0)
    assert why == [
        "Sun 2027-03-14 has no 02:00-03:00 in America/New_York (clock change) "
        "-> Mon 2027-03-15 02:00"
    ]


def test_ambiguous_start_uses_the_first_occurrence() -> None:
    w = parse_window({"days": "all", "start": "01:30", "end": "02:30"})
    slot = due_slot(date(2027, 11, 7), parse_offset("on x"), NY, w, NONE)
    assert slot.utc == utc(2027, 11, 7, 5, 30)  # 01:30 EDT, fold=0
    assert slot.local.fold == 0 and slot.local.tzname() == "EDT"


def test_repeated_hour_after_falling_back_reopens_the_window() -> None:
    w = parse_window({"days": "all", "start": "00:30", "end": "01:45"})
    late_first_pass = local(NY, 2027, 11, 7, 1, 50)  # EDT; the window has just closed
    at, why = next_opening(late_first_pass, NY, w, NONE)
    assert at == utc(2027, 11, 7, 6, 0)  # 01:00 EST, the clock went back into the window
    assert why == [
        "Sun 2027-11-07 01:50 is outside every day 00:30-01:45 -> Sun 2027-11-07 01:00 "
        "(America/New_York clocks go back)"
    ]
    second_pass = local(NY, 2027, 11, 7, 1, 20, fold=1)  # EST
    assert next_opening(second_pass, NY, w, NONE) == (second_pass.astimezone(UTC), [])


def test_berlin_fall_back_window_in_the_repeated_hour() -> None:
    w = parse_window({"days": "all", "start": "02:15", "end": "02:45"})
    at, _ = next_opening(local(BERLIN, 2027, 10, 31, 2, 50), BERLIN, w, NONE)  # CEST
    assert to_local(at, BERLIN) == local(BERLIN, 2027, 10, 31, 2, 15, fold=1)  # CET
    assert at == utc(2027, 10, 31, 1, 15)


@pytest.mark.parametrize(
    ("zone", "expected_utc"),
    [
        ("Asia/Kolkata", utc(2027, 1, 19, 3, 30)),
        ("Asia/Kathmandu", utc(2027, 1, 19, 3, 15)),
        ("Australia/Adelaide", utc(2027, 1, 18, 22, 30)),  # ACDT, +10:30
        ("Australia/Lord_Howe", utc(2027, 1, 18, 22, 0)),  # +11 in summer (30-minute DST)
    ],
)
def test_odd_offset_zones(zone: str, expected_utc: datetime) -> None:
    slot = due_slot(date(2027, 1, 19), parse_offset("on x"), ZoneInfo(zone), WEEKDAYS, NONE)
    assert slot.utc == expected_utc
    assert slot.local.time() == time(9)


def test_adelaide_spring_forward_gap() -> None:
    # Adelaide goes from +09:30 to +10:30 at 02:00 on 2027-10-03
    zone = ZoneInfo("Australia/Adelaide")
    w = parse_window({"days": "all", "start": "02:15", "end": "05:00"})
    slot = due_slot(date(2027, 10, 3), parse_offset("on x"), zone, w, NONE)
    assert slot.local.time() == time(3, 0)
    assert slot.utc == utc(2027, 10, 2, 16, 30)


def test_a_skipped_calendar_day() -> None:
    # Samoa skipped 2011-12-30 when it crossed the date line
    zone = ZoneInfo("Pacific/Apia")
    every_day = parse_window({"days": "all"})
    at, why = next_opening(datetime(2011, 12, 29, 18, tzinfo=zone), zone, every_day, NONE)
    assert to_local(at, zone) == datetime(2011, 12, 31, 9, tzinfo=zone)
    assert len(why) == 2


# --- due_slot ------------------------------------------------------------------------------


def test_due_slot_reasons_read_like_a_story() -> None:
    slot = due_slot(date(2027, 1, 16), parse_offset("on contract_end"), NY, WEEKDAYS, US)
    assert slot.utc == utc(2027, 1, 19, 14)
    assert slot.local == local(NY, 2027, 1, 19, 9)
    assert slot.reasons == (
        "on contract_end (2027-01-16) = Sat 2027-01-16 09:00",
        "Sat 2027-01-16 is outside Mon-Fri 09:00-17:00 -> Mon 2027-01-18 09:00",
        "Mon 2027-01-18 is Martin Luther King Jr. Day -> Tue 2027-01-19 09:00",
    )


def test_due_slot_business_offset() -> None:
    offset = parse_offset("10 business days before contract_end")
    slot = due_slot(date(2027, 1, 29), offset, NY, WEEKDAYS, US)
    assert slot.local == local(NY, 2027, 1, 14, 9)
    assert slot.reasons == (
        "10 business days before contract_end (2027-01-29) = Thu 2027-01-14 09:00",
    )


def test_due_slot_for_a_reminder() -> None:
    slot = due_slot(date(2027, 1, 15), parse_offset("5 business days"), NY, WEEKDAYS, US)
    assert slot.local == local(NY, 2027, 1, 25, 9)
    assert slot.reasons[0] == "5 business days after 2027-01-15 = Mon 2027-01-25 09:00"


def test_due_slot_at_and_not_before() -> None:
    on = parse_offset("on contract_end")
    slot = due_slot(date(2027, 1, 19), on, NY, WEEKDAYS, US, at=time(11, 30))
    assert slot.local == local(NY, 2027, 1, 19, 11, 30)
    previous_send = utc(2027, 1, 19, 21, 55)  # 16:55 EST
    slot = due_slot(date(2027, 1, 19), on, NY, WEEKDAYS, US, not_before_utc=previous_send)
    assert slot.utc == previous_send
    assert slot.reasons[1] == "not before Tue 2027-01-19 16:55 EST"
    earlier = utc(2027, 1, 1)
    assert due_slot(date(2027, 1, 19), on, NY, WEEKDAYS, US, not_before_utc=earlier).utc == utc(
        2027, 1, 19, 14
    )
