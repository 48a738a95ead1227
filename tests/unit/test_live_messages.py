"""Issue 18: the tick's steps walk State.live_messages; it must always be what a full walk gives."""

from __future__ import annotations

from mailflow.store.state import AT_REST, State, apply_event


def _walk(state: State) -> list[str]:
    """What a walk over every message would choose, in order."""
    return [k for k, m in state.messages.items() if m.get("state") not in AT_REST]


def _event(key: str, **changes: object) -> dict:
    return {"kind": "message.x", "engagement": "e", "messages": {"key": key, "set": changes}}


def _live(state: State) -> list[str]:
    return [m["key"] for m in state.live_messages()]


def test_live_messages_follow_every_change_in_the_order_of_the_store():
    state = State(engagements={"e": {"id": "e"}})
    for n in range(5):
        apply_event(state, _event(f"e/s{n}/0", engagement="e", state="planned"))
    assert _live(state) == _walk(state)  # built on first use
    apply_event(state, _event("e/s1/0", state="sent"))  # at rest: leaves
    apply_event(state, _event("e/s2/0", state="failed"))  # still waits for someone: stays
    apply_event(state, _event("e/s5/0", engagement="e", state="planned"))  # new: at the end
    assert _live(state) == _walk(state) == ["e/s0/0", "e/s2/0", "e/s3/0", "e/s4/0", "e/s5/0"]
    # back from rest (a bounce resolved, say): it takes its place among the others again
    apply_event(state, _event("e/s1/0", state="approved"))
    assert _live(state) == _walk(state)
    assert _live(state).index("e/s1/0") == 1
    apply_event(state, {"kind": "engagement.moved_out", "drop": {"messages": ["e/s3/0"]}})
    assert _live(state) == _walk(state)
    assert "e/s3/0" not in _live(state)


def test_live_messages_see_a_message_added_without_an_event():
    state = State()
    apply_event(state, _event("e/a/0", engagement="e", state="planned"))
    assert _live(state) == ["e/a/0"]
    # an archive brought back writes records in directly (store/archive.py)
    state.messages["e/b/0"] = {"key": "e/b/0", "engagement": "e", "state": "approved"}
    assert _live(state) == _walk(state) == ["e/a/0", "e/b/0"]
    apply_event(state, _event("e/c/0", engagement="e", state="planned"))
    assert _live(state) == _walk(state)


def test_a_replayed_state_and_one_kept_as_it_went_agree():
    events = [_event(f"e/s{n % 4}/{n // 4}", engagement="e",
                     state=("planned", "sent", "cancelled", "approved", "in_doubt")[n % 5])
              for n in range(40)]
    kept = State(engagements={"e": {"id": "e"}})
    kept.live_messages()  # the index exists from the start and is kept event by event
    for event in events:
        apply_event(kept, event)
    replayed = State(engagements={"e": {"id": "e"}})
    for event in events:
        apply_event(replayed, event)
    assert _live(kept) == _live(replayed) == _walk(replayed)
