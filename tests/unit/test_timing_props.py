"""Property tests of the timing core: never outside the window, never on a holiday, order kept."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailflow.timing import (
    Calendar,
    Offset,
    Window,
    add_business_days,
    add_offset,
    business_days_between,
    due_slot,
    make_calendar,
    next_opening,
    parse_offset,
)

# DST both ways, half- and quarter-hour offsets, a 30-minute DST shift, midnight DST changes
ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Europe/London",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Adelaide",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Pacific/Chatham",
    "America/Santiago",
    "America/Havana",
    "Antarctica/Troll",  # a two-hour DST shift
    "Africa/Casablanca",  # DST suspended every Ramadan: four changes a year
    "Pacific/Apia",  # DST until 2021
]
COUNTRIES = [None, ("US", None), ("US", "NY"), ("GB", "ENG"), ("DE", "BY"), ("FR", None),
             ("ES", None)]
QUARTER = timedelta(minutes=15)
PROPS = settings(max_examples=200, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])

zones = st.sampled_from(ZONES).map(ZoneInfo)
anchors = st.dates(date(2020, 1, 1), date(2035, 12, 31))


@st.composite
def windows(draw: st.DrawFn) -> Window:
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    # quarter-hour wall times, so windows that start or end inside a DST change come up often
    start = draw(st.integers(0, 95))
    end = draw(st.integers(start + 1, 96))
    last = time.max if end == 96 else time(end // 4, end % 4 * 15)  # 96 = "24:00"
    return Window(days, time(start // 4, start % 4 * 15), last)


@st.composite
def calendars(draw: st.DrawFn, near: date) -> Calendar:
    country = draw(st.sampled_from(COUNTRIES))
    # closures near the anchor, where they can actually get in the way
    extra = draw(st.lists(st.integers(-90, 120), max_size=25))
    spec: dict = {"extra": [(near + timedelta(days=k)).isoformat() for k in extra]}
    if country:
        spec["country"], spec["subdiv"] = country
    return make_calendar(spec)


def offsets(anchor: str | None = "contract_end") -> st.SearchStrategy[Offset]:
    low = 0 if anchor is None else -60
    return st.builds(Offset, st.integers(low, 60), st.booleans(), st.just(anchor))


def is_open(moment: datetime, zone: ZoneInfo, window: Window, cal: Calendar) -> bool:
    local = moment.astimezone(zone)
    return window.contains(local) and cal.is_holiday(local.date()) is None


def check_slot_invariants(at: datetime, zone: ZoneInfo, window: Window, cal: Calendar) -> None:
    assert at.tzinfo is UTC
    local = at.astimezone(zone)
    assert local.weekday() in window.days
    assert window.start <= local.time() < window.end
    assert cal.is_holiday(local.date()) is None


@st.composite
def cases(draw: st.DrawFn) -> tuple[date, ZoneInfo, Window, Calendar]:
    anchor = draw(anchors)
    return anchor, draw(zones), draw(windows()), draw(calendars(anchor))


@PROPS
@given(case=cases(), offset=offsets())
def test_due_slot_is_inside_the_window_on_an_open_day(case: tuple, offset: Offset) -> None:
    anchor, zone, window, cal = case
    slot = due_slot(anchor, offset, zone, window, cal)
    check_slot_invariants(slot.utc, zone, window, cal)
    assert slot.local == slot.utc and slot.local.tzinfo == zone
    assert slot.local.date() >= add_offset(anchor, offset, cal)
    assert slot.reasons[0].startswith(offset.describe())
    assert due_slot(anchor, offset, zone, window, cal) == slot


@PROPS
@given(case=cases(), minutes=st.integers(0, 24 * 60 * 30))
def test_next_opening_is_the_first_open_instant(case: tuple, minutes: int) -> None:
    anchor, zone, window, cal = case
    # quarter-hour instants: with quarter-hour windows and offsets, every opening is on the grid
    earliest = datetime.combine(anchor, time(0), UTC) + minutes // 15 * QUARTER
    at, reasons = next_opening(earliest, zone, window, cal)
    check_slot_invariants(at, zone, window, cal)
    assert at >= earliest
    assert next_opening(earliest, zone, window, cal) == (at, reasons)
    assert (at == earliest) == (not reasons)
    if at - earliest <= timedelta(days=8):  # a brute-force scan proves nothing earlier is open
        t = earliest
        while t < at:
            assert not is_open(t, zone, window, cal), t
            t += QUARTER


@PROPS
@given(
    case=cases(),
    days=st.lists(st.integers(-60, 60), min_size=2, max_size=6),
    business=st.booleans(),
    chained=st.booleans(),
)
def test_increasing_offsets_keep_their_order(
    case: tuple, days: list[int], business: bool, chained: bool
) -> None:
    anchor, zone, window, cal = case
    previous: datetime | None = None
    for n in sorted(days):
        not_before = previous if chained else None
        slot = due_slot(anchor, Offset(n, business, "contract_end"), zone, window, cal,
                        not_before_utc=not_before)
        check_slot_invariants(slot.utc, zone, window, cal)
        if previous is not None:
            assert slot.utc >= previous
        previous = slot.utc


@PROPS
@given(start=anchors, n=st.integers(-80, 80), country=st.sampled_from(COUNTRIES),
       extra=st.lists(st.integers(-100, 100), max_size=30))
def test_business_day_arithmetic(start: date, n: int, country: tuple | None,
                                 extra: list[int]) -> None:
    spec: dict = {"extra": [start + timedelta(days=k) for k in extra]}
    if country:
        spec["country"], spec["subdiv"] = country
    cal = make_calendar(spec)
    end = add_business_days(start, n, cal)
    assert cal.is_business_day(end)
    assert add_business_days(start, n + 1, cal) >= end  # monotone in n
    if cal.is_business_day(start):
        assert business_days_between(start, end, cal) == n
    assert business_days_between(start, end, cal) == -business_days_between(end, start, cal)


anchor_names = st.one_of(
    st.sampled_from(["contract_end", "previous", "reply", "handover_date", "Deliverables_Recap"]),
    st.from_regex(r"\A[a-z_][a-z0-9_]{0,12}\Z").filter(
        lambda s: s not in {"on", "to", "from", "day", "days", "week", "weeks", "after",
                            "before", "business"}
    ),
    st.from_regex(r"\A[a-z_][a-z0-9_]{0,12}\Z").map(lambda s: f"reply:{s}"),
)


@PROPS
@given(offset=st.one_of(
    st.builds(Offset, st.integers(-400, 400), st.booleans(), anchor_names),
    offsets(None),
))
def test_describe_reads_back(offset: Offset) -> None:
    assert parse_offset(offset.describe()) == offset
