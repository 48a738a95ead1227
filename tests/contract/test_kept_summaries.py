"""Issue 18: a run keeps each engagement's `status` summary (its row and its part of "needs you
now") with the span of time it holds for, and `status` shows a kept one instead of making it.
As a property: whatever happened (ticks, late or missing approvals, rejections, pauses,
checklist items done, servers refusing) and whenever the consultant looks (now, or hours to
weeks ahead without a run), a kept summary that holds is the one made afresh, and the grid and
"needs you now" are the ones made without any kept summary.
"""

from __future__ import annotations

import datetime as dt
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from mailflow.desk.drafts import draft_rows, drafts_view
from mailflow.desk.status import (
    Shared,
    kept_summary,
    needs_you_now,
    status_grid,
    summaries,
    summarize,
)
from tests.helpers import MACHINE_ENGAGEMENTS as ENGAGEMENTS
from tests.helpers import SeamProject, dates, two_engagements_machine

AHEAD = (dt.timedelta(0), dt.timedelta(minutes=59), dt.timedelta(hours=7), dt.timedelta(days=1),
         dt.timedelta(days=3), dt.timedelta(days=9), dt.timedelta(days=30))


def agree(p: SeamProject, now: dt.datetime) -> int:
    """Check every kept summary that holds at `now` against a fresh one, and the grid, "needs
    you now" and the drafts listed against those made without kept summaries; how many kept
    ones held."""
    state, loaded = p.state(), p.loaded
    held = 0
    for eid, eng in state.engagements.items():
        kept = kept_summary(loaded, eng, now)
        if kept is not None:
            held += 1
            fresh = summarize(state, loaded, eng, now, Shared(state)).summary
            assert kept == fresh, (eid, now, kept, fresh)
    fresh_grid = status_grid(state, loaded, now, with_data=True)  # makes every summary
    grid = status_grid(state, loaded, now, with_data=False)  # kept ones where they hold
    assert [(r.id, r.status, r.cells, r.next_at, r.error, r.checklist) for r in grid.rows] == [
        (r.id, r.status, r.cells, r.next_at, r.error, r.checklist) for r in fresh_grid.rows], now
    store = p.store
    assert drafts_view(store, loaded, now) == draft_rows(store.load(), loaded, now)
    assert needs_you_now(state, loaded, now, grid.summaries) == needs_you_now(
        state, loaded, now, summaries(state, loaded, now, list(state.engagements.values()),
                                      with_data=True))
    return held


class KeptSummaries(two_engagements_machine()):
    """Ticks, approvals, rejections, pauses, checklist marks and refusals; kept summaries
    checked after each, now and ahead."""

    @rule(eid=st.sampled_from(sorted(ENGAGEMENTS)),
          status=st.sampled_from(["completed", "cancelled"]))
    def the_consultant_ends_one_early(self, eid: str, status: str) -> None:
        """Completed (as with --force) or cancelled with checklist items still open: its row
        stays until it is archived, and its items turn late as the days pass."""
        from mailflow.desk.actions import set_status
        if self.status(eid) not in ("active", "paused"):
            return
        with self.p.store.writer() as w:
            set_status(w, eid, status, self.p.at(self.when))
            w.save()

    @rule(data=st.data(), eid=st.sampled_from(sorted(ENGAGEMENTS)))
    def the_consultant_ticks_off_a_checklist_item(self, data, eid: str) -> None:  # noqa: ANN001
        from mailflow.desk.checklist import mark_done
        from mailflow.engine.checklist_of import items_of
        loaded, state = self.p.loaded, self.p.state()
        if eid not in state.engagements:
            return  # moved out a month after it ended
        open_items = [i.id for i in items_of(state, loaded, state.engagements[eid])
                      if not i.done]
        if not open_items:
            return
        ref = data.draw(st.sampled_from(open_items))
        with self.p.store.writer() as w:
            mark_done(w, loaded, w.state.engagements[eid], ref, "test", self.p.at(self.when))
            w.save()

    @invariant()
    def kept_summaries_are_fresh_ones(self) -> None:
        now = self.p.at(self.when).astimezone(dt.UTC)
        for ahead in AHEAD:
            agree(self.p, now + ahead)


# KEPT_SUMMARIES_EXAMPLES=200 for a longer hunt than the suite's
EXAMPLES = int(os.environ.get("KEPT_SUMMARIES_EXAMPLES", "10"))

KeptSummaries.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_kept_summaries_are_fresh_ones = KeptSummaries.TestCase


def test_whole_sequences_keep_summaries_that_hold(tmp_path):
    """Three clients from the first notice to the feedback request, cron three times a day
    and the consultant approving each morning: most looks find every summary kept, and each
    kept one is the fresh one."""
    p = SeamProject(tmp_path, imap=False)
    p.add_clients(3)
    looks = held = 0
    for day in dates("2026-12-28", "2027-03-05"):
        for time in ("08:00", "10:30", "15:00"):
            p.tick(f"{day}T{time}")
            now = p.at(f"{day}T{time}").astimezone(dt.UTC)
            for ahead in (dt.timedelta(minutes=1), dt.timedelta(hours=5)):
                looks += 3
                held += agree(p, now + ahead)
            if time == "08:00":
                p.approve_all(f"{day}T{time}")
    assert len(p.client_accepted) >= 12  # whole sequences went out
    assert held >= looks * 0.7, (held, looks)


def _summarized(p: SeamProject) -> list[str]:
    return [e["engagements"]["key"] for e in p.store.events()
            if e["kind"] == "engagement.summarized"]


def test_a_run_makes_only_the_summaries_that_no_longer_hold(tmp_path):
    p = SeamProject(tmp_path, imap=False)
    p.add_clients(3)
    p.tick("2026-12-28T10:00")  # drafts the timeline notices
    assert sorted(_summarized(p)) == ["c0", "c1", "c2"]
    p.tick("2026-12-28T10:05")  # an idle run: each kept summary holds
    assert len(_summarized(p)) == 3
    p.approve_all("2026-12-28T10:10")  # the engagements changed: made again by the next run
    p.tick("2026-12-28T10:15")
    assert sorted(_summarized(p)[3:]) == ["c0", "c1", "c2"]
    state, loaded = p.state(), p.loaded
    now = p.at("2026-12-28T10:20").astimezone(dt.UTC)
    assert all(kept_summary(loaded, e, now) is not None for e in state.engagements.values())


def test_a_summary_that_moves_with_now_is_not_kept_nor_made_on_every_run(tmp_path):
    """An overdue draft goes out at the next opening after `now`: its row moves with the
    clock, so its summary is made by each view, and runs do not make it again and again."""
    p = SeamProject(tmp_path, imap=False)
    p.add_clients(1)
    p.tick("2026-12-28T10:00")  # the timeline notice waits for approval from now on
    before = len(_summarized(p))
    for day in ("2027-01-08", "2027-01-09", "2027-01-10"):  # overdue: never approved
        p.tick(f"{day}T10:00")
    state, loaded = p.state(), p.loaded
    eng = state.engagements["c0"]
    now = p.at("2027-01-10T10:30").astimezone(dt.UTC)
    assert kept_summary(loaded, eng, now) is None
    assert agree(p, now) == 0
    assert len(_summarized(p)) <= before + 1
