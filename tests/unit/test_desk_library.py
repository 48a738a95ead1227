"""The desk's use cases as library functions (issue 10 item 5, issue 17), called directly.

No CLI and no servers: a project folder, its store, and the functions the CLI calls.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from mailflow.clock import resolve_now
from mailflow.config.loading import load_project
from mailflow.desk import views
from mailflow.desk.actions import (
    add_engagement,
    archive,
    find_message,
    mark_reply_handled,
    replan,
    set_engagement_fields,
    set_status,
)
from mailflow.desk.drafts import draft_rows
from mailflow.desk.editing import begin_edit, save_edit
from mailflow.desk.engagement_files import sync_from_files
from mailflow.desk.run import run_tick
from mailflow.desk.status import needs_you_now, status_grid
from mailflow.errors import ConfigError, NotFoundError, StateError
from mailflow.store import Store
from tests.helpers import make_project

ZONE = "America/New_York"
DRAFT_AT = "2026-12-28T10:00"
KEY = "northwind-2026/timeline_notice/0"


def at(text: str) -> dt.datetime:
    from mailflow.timing import load_zone
    return resolve_now(text, load_zone(ZONE))


@pytest.fixture
def desk(tmp_path):
    """A project with the example engagement added and its first draft made."""
    proj = make_project(tmp_path)
    loaded = load_project(proj.project)
    store = Store(proj.project.state_dir)
    with store.writer() as w:
        add_engagement(w, loaded, proj.root / "engagements" / "example.toml", at(DRAFT_AT))
        w.save()
    report = run_tick(loaded, store, at(DRAFT_AT))
    assert report.drafted == [KEY], report
    return proj, loaded, store


def test_status_grid_and_needs_you_now(desk):
    proj, loaded, store = desk
    grid = status_grid(store.load(), loaded, at(DRAFT_AT))
    assert grid.stages[0] == "timeline_notice"
    (row,) = grid.rows
    assert row.id == "northwind-2026" and row.error is None
    assert row.cells["timeline_notice"] == "to approve 12-30"
    assert row.data["stages"]["timeline_notice"]["state"] == "awaiting_approval"
    assert needs_you_now(store.load()) == ["1 draft(s) to approve: mailflow drafts"]


def test_a_broken_engagement_is_a_row_with_its_error(desk):
    proj, loaded, store = desk
    with store.writer() as w:
        w.record("engagement.changed", at=at(DRAFT_AT), engagement="northwind-2026",
                 engagements={"key": "northwind-2026", "set": {"sequence": "nope"}})
        w.save()
    grid = status_grid(store.load(), loaded, at(DRAFT_AT))
    (row,) = grid.rows
    assert row.error and "nope" in row.error
    assert row.data["error"] == row.error


def test_every_view_gives_the_same_next_time(desk):
    proj, loaded, store = desk
    now = at("2026-12-29T08:00")
    state = store.load()
    plan = views.preview(state, loaded, now)
    from_plan = {r["id"]: r["when_local"] for r in views.plan_rows(
        plan.items["northwind-2026"], {m["key"]: m for m in state.messages_of("northwind-2026")},
        ZONE, plan.when)}
    from_drafts = {r["id"]: r["due_local"] for r in draft_rows(state, loaded, now)}
    from_show = {r["id"]: r["when_local"] for r in views.message_rows(
        state, state.engagements["northwind-2026"], plan)}
    grid = status_grid(state, loaded, now)
    assert from_plan[KEY] == from_drafts[KEY] == from_show[KEY] == "Wed 2026-12-30 09:00 EST"
    assert grid.rows[0].cells["timeline_notice"] == "to approve 12-30"
    for key, when in from_show.items():
        assert from_plan[key] == when
    # two days late and never approved: every view says the same next opening
    late = at("2027-01-04T12:00")
    state = store.load()
    plan = views.preview(state, loaded, late)
    shown = {r["id"]: r["due_local"] for r in draft_rows(state, loaded, late)}
    grid = status_grid(state, loaded, late)
    assert shown[KEY] == views.message_rows(state, state.engagements["northwind-2026"],
                                            plan)[0]["when_local"]
    assert grid.rows[0].cells["timeline_notice"] == "to approve " + shown[KEY][9:14]


def test_replan_follows_a_changed_date(desk):
    proj, loaded, store = desk
    with store.writer() as w:
        set_engagement_fields(w, loaded, "northwind-2026", ["contract_end=2027-02-12"],
                              at(DRAFT_AT))
        assert replan(w, loaded, at(DRAFT_AT)) == []
        w.save()
    due = store.load().messages["northwind-2026/access_revocation/0"]["due"]
    assert due.startswith("2027-02-09")


def test_marking_a_reply_handled(desk):
    proj, loaded, store = desk
    with store.writer() as w:
        w.record("reply.human", at=at(DRAFT_AT), engagement="northwind-2026", replies={
            "key": "1", "set": {"engagement": "northwind-2026", "needs_action": True,
                                "message": KEY, "stage": "timeline_notice"}})
        reply = mark_reply_handled(w, "1", "dana", at(DRAFT_AT))
        assert reply["handled_by"] == "dana"
        with pytest.raises(NotFoundError):
            mark_reply_handled(w, "2", "dana", at(DRAFT_AT))
        w.save()
    assert needs_you_now(store.load()) == ["1 draft(s) to approve: mailflow drafts"]


def test_editing_a_draft_and_a_broken_edit_kept_for_recovery(desk):
    proj, loaded, store = desk
    session = begin_edit(store, KEY, "text")
    edited = session.document.replace("Hi María José,", "Dear María José,")
    notes = save_edit(store, loaded, session, edited, "dana", at(DRAFT_AT))
    assert notes[0] == f"edited {KEY}"
    html, text = store.body(store.load().messages[KEY]["body"])
    assert "Dear María José," in text
    # a removed marker line: nothing saved, and what was typed is in a recovery file
    session = begin_edit(store, KEY, "both")
    typed = session.document.replace("Dear María José,", "Hello again,").replace(
        "=" * 20 + " text part", "text part")
    with pytest.raises(ConfigError) as err:
        save_edit(store, loaded, session, typed, "dana", at("2026-12-28T10:05"))
    kept = re.search(r"kept in (\S+)$", str(err.value)).group(1)
    from pathlib import Path
    assert Path(kept).read_text(encoding="utf-8") == typed
    assert "Dear María José," in store.body(store.load().messages[KEY]["body"])[1]
    # nothing to edit in a message that is not a draft
    with pytest.raises(StateError):
        begin_edit(store, "northwind-2026/feedback_request/0")


def test_set_edits_the_file_in_place_keeping_comments(desk):
    proj, loaded, store = desk
    path = proj.root / "engagements" / "example.toml"
    before = path.read_text()
    with store.writer() as w:
        set_engagement_fields(w, loaded, "northwind-2026",
                              ["contract_end=2027-02-12", "invoices.0.status=paid"],
                              at(DRAFT_AT))
        w.save()
    after = path.read_text()
    assert "contract_end = 2027-02-12" in after and 'status = "paid"' in after
    # every comment line is still there, and only the two values changed
    assert [ln for ln in before.splitlines() if "#" in ln] == \
        [ln for ln in after.splitlines() if "#" in ln]
    assert len(before.splitlines()) == len(after.splitlines())
    stored = store.load().engagements["northwind-2026"]
    assert stored["dates"]["contract_end"] == "2027-02-12"
    assert stored["invoices"][0]["status"] == "paid"
    with store.writer() as w, pytest.raises(ConfigError, match="invoices.*not an item"):
        set_engagement_fields(w, loaded, "northwind-2026", ["invoices.7.status=paid"],
                              at(DRAFT_AT))
    assert path.read_text() == after


def test_a_file_edited_by_hand_is_read_again_and_journaled(desk):
    proj, loaded, store = desk
    path = proj.root / "engagements" / "example.toml"
    path.write_text(path.read_text().replace('client = "Northwind Traders"',
                                             'client = "Northwind Traders Inc."'))
    with store.writer() as w:
        assert sync_from_files(w, loaded, at(DRAFT_AT)) == []
        w.save()
    assert store.load().engagements["northwind-2026"]["client"] == "Northwind Traders Inc."
    event = list(store.events())[-1]
    assert event["kind"] == "engagement.reloaded" and event["fields"] == ["client"]
    # a file made invalid changes nothing and says so, on every run until fixed
    path.write_text(path.read_text().replace("contract_end = 2027-01-29", "contract_end = 1"))
    with store.writer() as w:
        problems = sync_from_files(w, loaded, at(DRAFT_AT))
        w.save()
    assert len(problems) == 1 and "dates.contract_end" in problems[0]
    assert "keeps its stored data" in problems[0]
    assert store.load().engagements["northwind-2026"]["dates"]["contract_end"] == "2027-01-29"


def test_archive_and_a_cancelled_engagement_explains_why_it_cannot_resume(desk):
    proj, loaded, store = desk
    with store.writer() as w:
        set_status(w, "northwind-2026", "cancelled", at(DRAFT_AT))
        with pytest.raises(StateError, match="final.*new id"):
            set_status(w, "northwind-2026", "active", at(DRAFT_AT))
        archive(w, "northwind-2026", at(DRAFT_AT))
        w.save()
    state = store.load()
    assert state.messages[KEY]["state"] == "cancelled"
    assert status_grid(state, loaded, at(DRAFT_AT)).rows == []
    assert [r.id for r in status_grid(state, loaded, at(DRAFT_AT), archived=True).rows] == \
        ["northwind-2026"]
    assert find_message(state, KEY)["state"] == "cancelled"


def test_a_moved_project_still_finds_its_engagement_files(desk, tmp_path):
    import shutil

    from mailflow.project import Project
    proj, loaded, store = desk
    assert store.load().engagements["northwind-2026"]["source"] == "engagements/example.toml"
    from pathlib import Path
    moved = Project(Path(shutil.move(str(proj.root), str(tmp_path / "moved"))))
    loaded = load_project(moved)
    with Store(moved.state_dir).writer() as w:
        assert sync_from_files(w, loaded, at(DRAFT_AT)) == []
