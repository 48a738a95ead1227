"""Moving engagements out of the hot state, as folds of journal events (issue 18)."""

from __future__ import annotations

import datetime as dt

from mailflow.store.archive import due_to_move, ended_at, merge_into, subject
from mailflow.store.seam import MemoryStore
from mailflow.store.state import State, apply_event

NOW = dt.datetime(2027, 3, 1, 12, tzinfo=dt.UTC)


def _engagement(w, eid: str, status: str = "active", **extra) -> None:  # noqa: ANN001
    w.record("engagement.added", at=NOW, engagement=eid, engagements={"key": eid, "set": {
        "status": status, "dates": {"contract_end": "2027-01-29"}, **extra}})
    w.create_message({"key": f"{eid}/notice/0", "engagement": eid, "stage": "notice",
                      "step": 0, "due": "2027-01-01T09:00:00+00:00"}, at=NOW)
    w.record("reply.recorded", at=NOW, engagement=eid, replies={"key": f"{len(eid)}{eid[-1]}",
                                                                "set": {"engagement": eid}})


def test_a_drop_event_removes_the_records_and_replay_from_nothing_gives_the_same_state():
    store = MemoryStore()
    with store.writer() as w:
        for eid in ("a-1", "b-2", "c-3"):
            _engagement(w, eid)
        assert [m["key"] for m in w.state.messages_of("b-2")] == ["b-2/notice/0"]
        w.record("engagement.moved_out", at=NOW, engagement="b-2", reply_floor=7, drop={
            "engagements": ["b-2"], "messages": ["b-2/notice/0"], "replies": ["32"]})
        # the per-engagement index follows the removal (it is not rebuilt from scratch)
        assert w.state.messages_of("b-2") == []
        assert [m["key"] for m in w.state.messages_of("c-3")] == ["c-3/notice/0"]
        live = w.state
    again = store.load()
    for table in ("engagements", "messages", "replies"):
        assert getattr(again, table) == getattr(live, table)
    assert set(again.engagements) == {"a-1", "c-3"} and "32" not in again.replies
    assert again.meta["reply_floor"] == live.meta["reply_floor"] == 7


def test_the_reply_floor_only_rises():
    state = State()
    apply_event(state, {"seq": 1, "drop": {}, "reply_floor": 9})
    apply_event(state, {"seq": 2, "drop": {}, "reply_floor": 4})
    assert state.meta["reply_floor"] == 9


def test_what_moves_out_and_when():
    state = State()
    day = dt.timedelta(days=1)

    def add(eid: str, **record) -> None:  # noqa: ANN003
        state.engagements[eid] = {"id": eid, "dates": {"contract_end": "2027-01-29"}, **record}

    add("active", status="active")
    add("paused", status="paused", archived=None)
    add("done-40", status="completed", ended_at=(NOW - 40 * day).isoformat())
    add("done-20", status="completed", ended_at=(NOW - 20 * day).isoformat())
    add("cancelled-31", status="cancelled", ended_at=(NOW - 31 * day).isoformat())
    add("archived-35", status="cancelled", archived=(NOW - 35 * day).isoformat())
    add("old-completed", status="completed")  # stored before ended_at: its contract end
    assert sorted(due_to_move(state, NOW, 30)) == ["archived-35", "cancelled-31", "done-40",
                                                   "old-completed"]
    assert due_to_move(state, NOW, 0).count("done-20") == 1
    assert "active" not in due_to_move(state, NOW + 9999 * day, 0)
    assert ended_at(state.engagements["active"], []) is None
    history = [{"history": [{"at": "2027-02-20T10:00:00+00:00"}]}]
    assert ended_at(state.engagements["old-completed"], history) == "2027-02-20T10:00:00+00:00"


def test_an_event_is_about_its_engagement_or_the_engagement_record_it_changes():
    assert subject({"engagement": "a"}) == "a"
    assert subject({"kind": "engagement.planned", "engagements": {"key": "b"}}) == "b"
    assert subject({"kind": "cursor.moved", "cursors": {"key": "INBOX"}}) is None


def test_an_archive_read_back_is_marked_moved_out_and_indexed():
    state = State()
    record = merge_into(state, {"engagement": {"id": "x"}, "moved_at": "2027-03-01",
                                "messages": [{"key": "x/n/0", "engagement": "x"}],
                                "replies": [{"id": "5", "engagement": "x"}]})
    assert record["moved_out"] == "2027-03-01"
    assert [m["key"] for m in state.messages_of("x")] == ["x/n/0"]
    assert state.replies["5"]["engagement"] == "x"
