"""Tables that fit a terminal (issue 17): least useful columns first, never the id."""

from __future__ import annotations

import datetime as dt

from mailflow.cli.app import hoist_global_options
from mailflow.clock import resolve_now
from mailflow.desk.tables import Column, natural_key, render
from mailflow.engine.planner import PlanItem
from mailflow.engine.schedule import next_time
from mailflow.timing import load_zone

ID = "northwind-2026/deliverables_recap/0"
COLUMNS = [Column("id", keep=True), Column("engagement", rank=9, min_width=10),
           Column("stage", rank=6, min_width=10), Column("subject", rank=5, min_width=16),
           Column("to", rank=7, min_width=12), Column("due (local)", rank=2, min_width=20),
           Column("waits for", rank=3, min_width=9)]
ROW = [ID, "northwind-2026", "deliverables_recap",
       "Northwind Traders: everything delivered, in one place", "mj.alvarez@northwind.example",
       "Wed 2027-01-27 09:00 EST", "approval"]


def test_ids_sort_naturally():
    ids = ["client-10", "client-2", "client-100", "client-1"]
    assert sorted(ids, key=natural_key) == ["client-1", "client-2", "client-10", "client-100"]


def test_piped_output_is_never_narrowed():
    lines = render(COLUMNS, [ROW], None)
    assert all(cell in lines[2] for cell in ROW)


def test_at_80_and_120_columns_every_line_fits_and_the_id_is_whole():
    for width in (80, 120):
        lines = render(COLUMNS, [ROW], width)
        assert all(len(line) <= width for line in lines), (width, lines)
        assert lines[2].startswith(ID + "  ")
        assert "Wed 2027-01-27 09:00 EST" in lines[2]  # the due time is among the most useful
    wide = render(COLUMNS, [ROW], 120)
    assert "subject" in wide[0] and "engagement" not in wide[0]  # the repeat goes first
    narrow = render(COLUMNS, [ROW], 80)
    assert narrow[0].split() == ["id", "due", "(local)", "waits", "for"]


def test_an_id_wider_than_the_terminal_is_still_whole():
    lines = render(COLUMNS, [["x" * 100] + ROW[1:]], 80)
    assert "x" * 100 in lines[2]


def test_short_headers_and_compact_cells_come_before_narrowing():
    cols = [Column("engagement", keep=True), Column("deliverables_recap", short="recap")]
    rows = [["acme", "to approve 01-27"]]
    lines = render(cols, rows, 25, compact=[["acme", "approve 01-27"]])
    assert lines[0].split() == ["engagement", "recap"]
    assert lines[2].split() == ["acme", "approve", "01-27"]


# -- one next time for every view ----------------------------------------------------------

def item(due: dt.datetime | None) -> PlanItem:
    return PlanItem("e/s/0", "e", "s", 0, "s", True, "scheduled", due, ())


def test_next_time_is_the_send_for_a_sent_message_and_the_plan_for_a_pending_one():
    from mailflow import timing
    ny = load_zone("America/New_York")
    cal = timing.make_calendar(None)
    win = timing.DEFAULT_WINDOW

    def at(msg, it, now=dt.datetime(2027, 1, 20, 12, tzinfo=dt.UTC)):
        return next_time(msg, it, now, ny, win, cal)

    planned = dt.datetime(2027, 1, 27, 14, tzinfo=dt.UTC)  # Wed 09:00 EST, in the window
    stored = "2027-01-22T14:00:00+00:00"
    sent = {"state": "sent", "sent_at": "2027-01-20T15:00:00+00:00", "due": stored}
    assert at(sent, item(planned)).isoformat() == "2027-01-20T15:00:00+00:00"
    waiting = {"state": "awaiting_approval", "due": stored}
    assert at(waiting, item(planned)) == planned  # what the next run will store
    assert at(waiting, None).isoformat() == stored
    assert at(None, item(planned)) == planned
    assert at({"state": "cancelled", "due": stored}, item(planned)).isoformat() == stored
    # past its due time and not sent: the first opening from now (engine.sendtime's rule)
    late = dt.datetime(2027, 1, 28, 23, tzinfo=dt.UTC)  # Thu 18:00 EST, the window closed
    assert at(waiting, None, late) == dt.datetime(2027, 1, 29, 14, tzinfo=dt.UTC)


# -- --now in the project's zone, global options anywhere ------------------------------------

def test_a_bare_now_is_in_the_project_zone_and_an_offset_wins():
    ny = load_zone("America/New_York")
    assert resolve_now("2026-12-30T10:30", ny) == dt.datetime(2026, 12, 30, 15, 30,
                                                               tzinfo=dt.UTC)
    asked = []
    assert resolve_now("2026-12-30T10:30Z", lambda: asked.append(1) or ny) == \
        dt.datetime(2026, 12, 30, 10, 30, tzinfo=dt.UTC)
    assert asked == []  # an explicit offset never needs the project
    assert resolve_now("2026-12-30T10:30", lambda: ny).hour == 15


def test_global_options_move_in_front_of_the_subcommand():
    assert hoist_global_options(["run", "--dry-run", "-v"]) == ["-v", "run", "--dry-run"]
    assert hoist_global_options(["plan", "--now", "2026-12-01T09:00", "x"]) == \
        ["--now", "2026-12-01T09:00", "plan", "x"]
    assert hoist_global_options(["drafts", "approve", "--project=/p", "-q", "k"]) == \
        ["--project=/p", "-q", "drafts", "approve", "k"]
    assert hoist_global_options(["--json", "engagement", "list"]) == \
        ["engagement", "list", "--json"]
    assert hoist_global_options(["status", "--json"]) == ["status", "--json"]
    # after `--` everything is an argument
    assert hoist_global_options(["drafts", "reject", "--", "-v"]) == \
        ["drafts", "reject", "--", "-v"]
