"""Issue 18: a tick keeps the plan it made when its own later changes are ones the planner does
not read (drafts, approvals, holds), so the next tick does not plan those engagements again; a
send, or any change made elsewhere, still makes the next tick plan again. Through whole
sequences, every plan a tick keeps is the plan planning afresh gives."""

from __future__ import annotations

from mailflow.engine import checklist, stored_plan
from mailflow.engine import tick as runner
from mailflow.engine.checklist_of import items_of
from mailflow.engine.planner import plan_stored
from tests.helpers import SeamProject, dates


def _kept(seam: SeamProject) -> dict[str, bool]:
    """Engagement id -> whether its stored plan is current; each one current must be what
    planning afresh gives, and the open checklist kept beside it what the checklist derives."""
    loaded, state = seam.loaded, seam.state()
    replies = state.replies_by_engagement()
    out = {}
    for eid, eng in state.engagements.items():
        items = stored_plan.kept(loaded, eng)
        out[eid] = items is not None
        if items is not None:
            msgs = {m["key"]: m for m in state.messages_of(eid)}
            assert items == plan_stored(loaded, eng, msgs, replies.get(eid, [])), eid
            assert stored_plan.kept_checklist(loaded, eng) == checklist.open_items(
                items_of(state, loaded, eng)), eid
    return out


def _planned_in(seam: SeamProject, when: str, monkeypatch) -> list[str]:  # noqa: ANN001
    """The engagements the tick at `when` planned (afresh)."""
    planned: list[str] = []
    plan_one = runner.Tick.plan_one

    def counting(tick, eng, msgs, replies):  # noqa: ANN001, ANN202
        planned.append(eng["id"])
        return plan_one(tick, eng, msgs, replies)

    monkeypatch.setattr(runner.Tick, "plan_one", counting)
    seam.tick(when)
    monkeypatch.setattr(runner.Tick, "plan_one", plan_one)
    return planned


def test_a_tick_that_only_drafts_keeps_its_plan_for_the_next(tmp_path, monkeypatch):
    seam = SeamProject(tmp_path, imap=False)
    seam.add_clients(3)
    assert sorted(_planned_in(seam, "2026-12-28T10:00", monkeypatch)) == ["c0", "c1", "c2"]
    assert any(m["state"] == "awaiting_approval" for m in seam.messages.values())
    assert _kept(seam) == {"c0": True, "c1": True, "c2": True}
    assert _planned_in(seam, "2026-12-28T15:00", monkeypatch) == []


def test_a_send_or_a_change_from_elsewhere_is_planned_again(tmp_path, monkeypatch):
    seam = SeamProject(tmp_path, imap=False)
    seam.add_clients(2)
    seam.tick("2026-12-28T10:00")
    seam.approve_all("2026-12-28T11:00")  # an approval from the CLI: not the tick's own change
    assert _kept(seam) == {"c0": False, "c1": False}
    assert sorted(_planned_in(seam, "2026-12-29T10:00", monkeypatch)) == ["c0", "c1"]
    assert _kept(seam) == {"c0": True, "c1": True}
    report = seam.tick("2026-12-30T10:00")  # the timeline notices go out
    assert sorted(report.sent) == ["c0/timeline_notice/0", "c1/timeline_notice/0"]
    # a send time anchors the reminders: the run planned them again at its end (status2,
    # issue 18), so the kept plans are the fresh ones and the next tick plans nothing
    assert _kept(seam) == {"c0": True, "c1": True}
    assert _planned_in(seam, "2026-12-30T15:00", monkeypatch) == []


def test_every_kept_plan_is_the_fresh_plan_through_whole_sequences(tmp_path):
    seam = SeamProject(tmp_path, imap=False)
    seam.add_clients(3)
    kept_after_drafting = 0
    for day in dates("2026-12-28", "2027-03-05"):
        for time in ("08:00", "10:30", "15:00"):
            report = seam.tick(f"{day}T{time}")
            kept = _kept(seam)  # asserts each kept plan is the fresh one
            for key in report.sent:  # planned again at the run's end: kept, and fresh
                assert kept[key.split("/")[0]], key
            kept_after_drafting += sum(kept[k.split("/")[0]] for k in report.drafted)
            if time == "08:00":
                seam.approve_all(f"{day}T{time}")
    assert len(seam.client_accepted) >= 12  # whole sequences went out
    assert kept_after_drafting >= 6
