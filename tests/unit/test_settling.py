"""Messages left `sending` by a process that died (engine/sending.py::settle_interrupted):
within one boot the kernel kept every outcome written, so only the first of a group without
one can have been in flight; after a reboot, or when a boot is unknown, all of them may have.
"""

from __future__ import annotations

import datetime as dt

from mailflow.engine import sending

BOOT, OTHER = "boot-a", "boot-b"


def left(key: str, index: int, *, boot: str | None = BOOT, group: str = "g1",
         before: str = "approved") -> dict:
    return {"key": key, "state": "sending", "attempts_at": ["t0", "t1"],
            "sending": sending.sending_mark(boot, group, index, before)}


def keys(msgs: list) -> list[str]:
    return sorted(m["key"] for m in msgs)


def test_same_boot_only_the_first_without_an_outcome_is_in_doubt_the_rest_go_back():
    # index 0 has its outcome (no longer `sending`): 1 was in flight, 2 and 3 never offered
    doubt, never = sending.settle_interrupted([left("c", 3), left("a", 1), left("b", 2)], BOOT)
    assert keys(doubt) == ["a"]
    assert keys(never) == ["b", "c"]


def test_same_boot_each_group_has_its_own_message_in_flight():
    doubt, never = sending.settle_interrupted(
        [left("a", 0, group="g1"), left("b", 1, group="g1"), left("x", 4, group="g2"),
         left("y", 5, group="g2")], BOOT)
    assert keys(doubt) == ["a", "x"]
    assert keys(never) == ["b", "y"]


def test_another_boot_leaves_every_message_of_the_group_in_doubt():
    doubt, never = sending.settle_interrupted([left("a", 0), left("b", 1), left("c", 2)], OTHER)
    assert keys(doubt) == ["a", "b", "c"] and never == []


def test_an_unknown_boot_on_either_side_leaves_every_message_in_doubt():
    marks = [left("a", 0, boot=None), left("b", 1, boot=None)]
    assert keys(sending.settle_interrupted(marks, BOOT)[0]) == ["a", "b"]
    assert keys(sending.settle_interrupted(marks, None)[0]) == ["a", "b"]
    known = [left("a", 0), left("b", 1)]
    doubt, never = sending.settle_interrupted(known, None)
    assert keys(doubt) == ["a", "b"] and never == []


def test_marks_made_before_groups_were_recorded_are_all_in_doubt():
    legacy = [{"key": "a", "state": "sending"}, {"key": "b", "state": "sending"}]
    doubt, never = sending.settle_interrupted(legacy, BOOT)
    assert keys(doubt) == ["a", "b"] and never == []


def test_a_message_never_offered_goes_back_to_its_state_before_without_that_attempt():
    assert sending.not_attempted(left("a", 1, before="retry")) == {
        "state": "retry", "sending": None, "attempts_at": ["t0"]}
    assert sending.not_attempted(left("b", 2))["state"] == "approved"


def test_an_interrupted_message_in_doubt_drops_its_sending_mark():
    msg = {**left("a", 0), "attempt_to": ["x@example.com"]}
    changes = sending.interrupted(msg, dt.datetime(2026, 12, 30, tzinfo=dt.UTC))
    assert changes["state"] == "in_doubt" and changes["sending"] is None


# -- which boot a process runs in (mailflow/boot.py) ---------------------------------------

def test_the_boot_is_the_kernels_boot_id_or_unknown_when_it_cannot_be_read(tmp_path,
                                                                            monkeypatch):
    from mailflow import boot
    monkeypatch.delenv("MAILFLOW_BOOT_ID", raising=False)
    monkeypatch.setattr(boot, "BOOT_ID_FILE", tmp_path / "boot_id")
    assert boot.boot_id() is None  # not Linux, or /proc unreadable: unknown
    (tmp_path / "boot_id").write_text("3f1c0a2e-1111-2222-3333-444455556666\n")
    assert boot.boot_id() == "3f1c0a2e-1111-2222-3333-444455556666"
    monkeypatch.setenv("MAILFLOW_BOOT_ID", "another")
    assert boot.boot_id() == "another"
    monkeypatch.setenv("MAILFLOW_BOOT_ID", "")
    assert boot.boot_id() is None


def test_a_process_armed_for_a_power_cut_is_a_boot_of_its_own_and_a_kill_keeps_the_boot(
        monkeypatch):
    from mailflow import boot, faults
    monkeypatch.setenv("MAILFLOW_BOOT_ID", "this-boot")
    try:
        faults.arm(10**6, "kill")
        assert boot.boot_id() == "this-boot"
        faults.arm(10**6, "powercut")
        assert boot.boot_id() not in ("this-boot", None)
    finally:
        faults.arm(0)
    assert boot.boot_id() == "this-boot"
