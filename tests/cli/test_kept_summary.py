"""Issue 18: `status` shows the summaries the last run kept while they hold, reads only the
engagements and replies when every one holds, and `doctor` finds a kept summary that making it
now contradicts."""

from __future__ import annotations

import datetime as dt
import shutil

from mailflow.config.loading import load_project
from mailflow.desk.status import kept_summary
from mailflow.store import Store
from tests.helpers import DRAFTED, KEY, add, load, make_project, told_only

LOOK = "2026-12-28T16:00"  # the same afternoon: the draft waits, nothing is overdue


def _held(proj, now: str = LOOK) -> bool:  # noqa: ANN001 - tests.helpers.ProjectUnderTest
    loaded, state = load_project(proj.project), load(proj)
    at = dt.datetime.fromisoformat(now).replace(tzinfo=loaded.zone)
    return all(kept_summary(loaded, e, at) is not None for e in state.engagements.values())


def test_status_reads_only_the_small_tables_when_every_kept_summary_holds(tmp_path,
                                                                          monkeypatch):
    proj = make_project(tmp_path)
    add(proj)
    assert told_only(proj.cli("run", now=DRAFTED))
    assert _held(proj)
    fresh = proj.cli("status", now=LOOK)
    assert fresh.exit_code == 0
    assert "1 draft(s) to approve: mailflow drafts" in fresh.output

    def no_whole_load(self):  # noqa: ANN001, ANN202
        raise AssertionError("status loaded the whole state")

    monkeypatch.setattr(Store, "load", no_whole_load)
    assert proj.cli("status", now=LOOK).output == fresh.output


def test_events_after_the_checkpoint_make_status_read_the_whole_state(tmp_path):
    """A command cut short after its events were committed left the checkpoint behind the
    journal: the small tables of the checkpoint would miss them."""
    proj = make_project(tmp_path)
    add(proj)
    assert told_only(proj.cli("run", now=DRAFTED))
    db = proj.project.state_dir / "state.json"
    behind = db.with_name("behind.json")
    shutil.copyfile(db, behind)
    assert proj.cli("drafts", "approve", KEY, now=DRAFTED).exit_code == 0
    after = proj.cli("status", now=LOOK).output
    shutil.copyfile(behind, db)  # the checkpoint of before the approval, the journal after it
    assert Store(proj.project.state_dir).load_tables(("engagements", "replies")) is None
    shown = proj.cli("status", now=LOOK).output
    assert shown == after
    assert "draft(s) to approve" not in shown


def test_doctor_finds_a_kept_summary_that_making_it_now_contradicts_and_drops_it(tmp_path):
    proj = make_project(tmp_path)
    add(proj)
    assert told_only(proj.cli("run", now=DRAFTED))
    assert proj.cli("doctor", now=DRAFTED).exit_code == 0
    right = proj.cli("status", now=LOOK).output
    # a kept row that says the notice went out, under the signature and span that hold
    eng = load(proj).engagements["northwind-2026"]
    text = eng["shown"].replace('"timeline_notice":"to approve', '"timeline_notice":"sent')
    assert text != eng["shown"]
    with Store(proj.project.state_dir).writer() as w:
        w.record("engagement.summarized", at=dt.datetime(2026, 12, 28, tzinfo=dt.UTC),
                 engagements={"key": "northwind-2026", "set": {"shown": text}})
    wrong = proj.cli("status", now=LOOK).output
    assert wrong != right  # (status shows what was kept: the doctor is the check)
    r = proj.cli("doctor", now=DRAFTED)
    assert r.exit_code == 5
    assert "engagement northwind-2026: the status summary kept by the last run differs" \
        in r.output
    r = proj.cli("doctor", "--repair", now=DRAFTED)
    assert r.exit_code == 0, r.output
    assert "1 kept status summary(ies) dropped" in r.output
    assert proj.cli("status", now=LOOK).output == right
    assert told_only(proj.cli("run", now=DRAFTED))
    assert _held(proj)
    assert proj.cli("status", now=LOOK).output == right
    assert proj.cli("doctor", now=DRAFTED).exit_code == 0
