"""Sending in groups (issue 18): one fsync for a group's `sending` marks, one for its outcomes;
a draft's MIME message built once when rendered, and built afresh whenever it changed."""

from __future__ import annotations

import pytest

from mailflow import faults
from mailflow.config.loading import load_project
from mailflow.desk.actions import apply_edit
from mailflow.errors import ConfigError
from tests.helpers import SeamProject

DRAFT, SEND = "2026-12-28T10:00", "2026-12-30T09:30"


def five_approved(tmp_path, batch: int) -> SeamProject:  # noqa: ANN001
    p = SeamProject(tmp_path, imap=False)
    p.proj.set_config(r"^per_minute = .*$", f"per_minute = 100\nsend_batch = {batch}")
    p.add_clients(5)
    p.tick(DRAFT)
    assert len(p.approve_all(DRAFT)) == 5
    return p


def journal_fsyncs_of_the_send_tick(p: SeamProject) -> int:
    faults.arm(0, "count")
    try:
        report = p.tick(SEND)
        names = faults.names()
    finally:
        faults.arm(0)
    assert len(report.sent) == 5, report.problems
    return names.count("journal fsync")


def test_a_group_of_k_messages_shares_one_fsync_before_and_one_after_its_transactions(tmp_path):
    one = journal_fsyncs_of_the_send_tick(five_approved(tmp_path / "k1", 1))
    five = journal_fsyncs_of_the_send_tick(five_approved(tmp_path / "k5", 5))
    two = journal_fsyncs_of_the_send_tick(five_approved(tmp_path / "k2", 2))
    # 5 groups of 1, 3 groups (2, 2, 1), 1 group of 5: two fsyncs a group, the rest alike
    assert one - five == 2 * (5 - 1)
    assert two - five == 2 * (3 - 1)


def test_a_connection_lost_inside_a_group_leaves_the_rest_of_the_group_untouched(tmp_path):
    p = five_approved(tmp_path, 5)
    p.transport.answer_message("delivered")
    p.transport.answer_message("drop")
    report = p.tick(SEND)
    states = sorted(m["state"] for k, m in p.messages.items() if "timeline_notice/0" in k)
    # the first went out, the second's connection was lost before DATA (reopened once by
    # SMTP, not by the memory transport): it and the three after it wait, none in doubt
    assert states == ["approved"] * 4 + ["sent"], states
    assert len(report.sent) == 1 and report.deferred >= 3
    assert sum(p.transport.received_by(f"to{i}@client{i}.example") for i in range(5)) == 1


def test_an_edited_draft_goes_out_with_its_new_words_not_the_copy_built_before(tmp_path):
    p = five_approved(tmp_path, 16)
    key = "c0/timeline_notice/0"
    assert p.messages[key]["prebuilt"]["ref"]
    with p.store.writer() as w:
        msg = w.state.messages[key]
        apply_edit(w, msg, msg["subject"], "<p>Edited by hand: see you Friday.</p>",
                   "Edited by hand: see you Friday.\n", "test", p.at(DRAFT))
        w.save()
    p.approve_all(DRAFT)
    p.tick(SEND)
    [sent] = [a for a in p.transport.accepted if "to0@client0.example" in a.recipients]
    assert b"Edited by hand: see you Friday." in sent.raw


def test_a_lost_prebuilt_copy_is_built_again_and_the_message_still_goes_out(tmp_path):
    p = five_approved(tmp_path, 16)
    for msg in p.messages.values():
        if msg.get("prebuilt"):
            p.store.wire_copy_path(msg["prebuilt"]["ref"]).unlink(missing_ok=True)
    report = p.tick(SEND)
    assert len(report.sent) == 5 and not report.problems
    assert all(b"Date: Sat, 01 Jan 2000" not in a.raw for a in p.transport.accepted)


@pytest.mark.parametrize("value", ["0", "-1", '"16"', "true"])
def test_send_batch_must_be_a_whole_number_of_at_least_one(tmp_path, value):
    p = SeamProject(tmp_path, imap=False)
    p.proj.set_config(r"^per_minute = .*$", f"per_minute = 20\nsend_batch = {value}")
    with pytest.raises(ConfigError, match=r"mailflow\.toml: schedule\.send_batch: expected a "
                                          r"whole number >= 1"):
        load_project(p.proj.project)


# -- a group left `sending` by a process that died (Tick.settle_interrupted) ----------------

def left_in_the_middle_of_a_group(p: SeamProject, boot: str) -> list[str]:
    """What a run killed during the first SMTP transaction of a group of five leaves: five
    `sending` marks made in `boot`, no outcome. Returns the keys in the group's order."""
    from mailflow.engine.sending import sending_mark
    keys = sorted(k for k in p.messages if "timeline_notice/0" in k)
    with p.store.writer() as w:
        for i, key in enumerate(keys):
            msg = w.state.messages[key]
            w.update_message(msg, "message.sending", at=p.at(SEND), state="sending",
                             attempt_to=[f"to{key[1]}@client{key[1]}.example"],
                             sending=sending_mark(boot, "g-test", i, "approved"),
                             append={"attempts_at": p.at(SEND).isoformat()})
        w.save()
    return keys


def test_after_a_kill_only_the_message_in_flight_is_in_doubt_the_others_go_out(
        tmp_path, monkeypatch):
    monkeypatch.setenv("MAILFLOW_BOOT_ID", "this-boot")
    p = five_approved(tmp_path, 5)
    first, *rest = left_in_the_middle_of_a_group(p, "this-boot")
    report = p.tick(SEND)
    assert p.messages[first]["state"] == "in_doubt"
    assert p.messages[first]["recipients"]["to0@client0.example"]["outcome"] == "in_doubt"
    assert sorted(report.sent) == rest  # put back, then sent in the same run
    assert all(p.messages[k]["state"] == "sent" for k in rest)
    # the attempt that never happened is not counted by the throttle
    assert all(len(p.messages[k]["attempts_at"]) == 1 for k in rest)
    kinds = [e["kind"] for e in p.store.events() if e.get("messages", {}).get("key") in rest]
    assert kinds.count("message.not_attempted") == len(rest)
    assert any("not offered to the server" in n for n in report.notes)


def test_after_a_reboot_or_with_an_unknown_boot_every_message_of_the_group_is_in_doubt(
        tmp_path, monkeypatch):
    for name, now_boot in (("reboot", "next-boot"), ("unknown", "")):
        monkeypatch.setenv("MAILFLOW_BOOT_ID", now_boot)
        p = five_approved(tmp_path / name, 5)
        keys = left_in_the_middle_of_a_group(p, "the-boot-before")
        report = p.tick(SEND)
        assert [p.messages[k]["state"] for k in keys] == ["in_doubt"] * 5, name
        assert report.sent == []  # nothing went to a client (the consultant's digest may)
        assert sum(p.transport.received_by(f"to{i}@client{i}.example") for i in range(5)) == 0
        assert sum("in doubt (interrupted while sending)" in x for x in report.problems) == 5
