"""Every crash point tried, not sampled (issue 11 item 5).

Each scenario runs once in a forked child that only counts its durability points (journal
appends and fsyncs, checkpoint writes and renames, body writes, each SMTP and IMAP command):
K of them. Then for every N in 1..K a fresh copy of the project is handed to a forked child
that ends itself at point N, as a kill (`os._exit`) or a power cut (also dropping every write
not yet fsynced; tried at the points where it would drop one, as elsewhere it leaves the very
files a kill leaves). A plain `mailflow run` recovers, and the invariants must hold: the state
loads and every command works; no recipient receives a message twice (counted by the test
SMTP server, with what it got before the scenario); every message is sent and recorded,
pending, or in doubt and shown in `drafts` and `status`; a command's changes are all there or
none; no reply is lost. The harness is `crash_everywhere` in tests/helpers.py; the Sent-folder
scenarios are in test_crash_points_sent.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailflow.engine.records import MessageState as S
from tests.helpers import (
    DRAFT_AT,
    SEND_AT,
    check_invariants,
    copy_project,
    crash_everywhere,
    imap_toml,
    in_child,
    invoke,
    reply,
    state_of,
    two_engagements,
)
from tests.imap_server import dovecot_fixture, imap_account_fixture  # noqa: F401


def test_crash_points_of_a_first_tick_that_plans_drafts_and_sends(tmp_path, smtp_server):
    template, files = two_engagements(tmp_path, smtp_server.port, approval=False)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    crash_everywhere(tmp_path, smtp_server, template,
                     lambda root: invoke(root, "run", now=SEND_AT), "first tick sends",
                     recover_at=SEND_AT)


def test_crash_points_of_drafts_approve_all(tmp_path, smtp_server):
    template, files = two_engagements(tmp_path, smtp_server.port, approval=True)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    assert invoke(template, "run", now=DRAFT_AT)[0] == 1  # drafts that need you (issue 13)

    def all_or_none(state) -> list[str]:  # noqa: ANN001
        firsts = [m for m in state.messages.values() if m["step"] == 0
                  and m["stage"] == "timeline_notice"]
        approved = {m["state"] == S.APPROVED for m in firsts}
        return [] if len(approved) == 1 else [f"approve --all half done: {firsts}"]

    crash_everywhere(tmp_path, smtp_server, template,
                     lambda root: invoke(root, "drafts", "approve", "--all", "-y", now=DRAFT_AT),
                     "drafts approve --all", recover_at=DRAFT_AT, check=all_or_none)


@pytest.mark.parametrize("n", [2, 8])
def test_crash_points_of_engagement_add_of_several_files(tmp_path, smtp_server, n):
    """The issue's killed add of 40 files left 3 added and the retry failed: 8 files take the
    same paths (one group of every file's events, then the checkpoint) at a sane cost. Added
    a month before anything is due, so recovering drafts nothing (cheap) but still runs."""
    template, files = two_engagements(tmp_path, smtp_server.port, approval=True, n=n)
    rel = [os.path.relpath(f, template) for f in files]
    early = "2026-12-01T09:00"

    def add(root: Path) -> object:
        return invoke(root, "engagement", "add", *(str(root / f) for f in rel), now=early)

    def all_or_none(state) -> list[str]:  # noqa: ANN001
        if len(state.engagements) not in (0, n):
            return [f"engagement add half done: {sorted(state.engagements)}"]
        if not state.engagements:  # the consultant adds them again: it works
            code, out = add(tmp_path / "run")
            if code != 0 or len(state_of(tmp_path / "run").engagements) != n:
                return [f"adding again after the crash: exit {code}: {out.strip()[:300]}"]
        return []

    crash_everywhere(tmp_path, smtp_server, template, add, f"engagement add ({n} files)",
                     recover_at=early if n > 2 else DRAFT_AT, check=all_or_none)


def test_crash_points_of_the_checkpoint_save_alone(tmp_path, smtp_server):
    """`doctor --repair` over a checkpoint that is sound but behind its journal: its only
    durable work is the checkpoint (temp file, fsync, the .bak link, rename, folder fsync)."""
    template, files = two_engagements(tmp_path, smtp_server.port, approval=True)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    db = template / ".mailflow" / "state.json"
    older = db.read_bytes()
    assert invoke(template, "run", now=DRAFT_AT)[0] == 1  # drafts that need you (issue 13)
    db.write_bytes(older)  # the checkpoint of the add: it matches, and the run follows it
    expected = {k: m["state"] for k, m in state_of(template).messages.items()}
    assert list(expected.values()).count(S.AWAITING_APPROVAL) == 2

    def same_state(state) -> list[str]:  # noqa: ANN001
        from mailflow.desk.doctor import check
        from mailflow.store import Store
        got = {k: m["state"] for k, m in state.messages.items()}
        found = check(Store(tmp_path / "run" / ".mailflow"))
        return ([] if got == expected else [f"states after recovery: {got}"]) + [
            f"doctor: {p}" for p in found.problems]

    figures = crash_everywhere(
        tmp_path, smtp_server, template,
        lambda root: invoke(root, "doctor", "--repair", now=DRAFT_AT),
        "checkpoint save alone (doctor --repair)", recover_at=DRAFT_AT, check=same_state)
    assert figures["points"] >= 4  # write, fsync, rename, folder fsync: nothing else


def test_crash_points_of_engagement_set_moving_a_date(tmp_path, smtp_server):
    template, files = two_engagements(tmp_path, smtp_server.port, approval=True)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    assert invoke(template, "run", now=DRAFT_AT)[0] == 1  # drafts that need you (issue 13)

    before = str(state_of(template).engagements["client-00"]["dates"]["contract_end"])

    def moved_or_not(state) -> list[str]:  # noqa: ANN001
        end = str(state.engagements["client-00"]["dates"]["contract_end"])
        return [] if end in (before, "2027-02-10") else [f"contract_end {end}"]

    crash_everywhere(tmp_path, smtp_server, template,
                     lambda root: invoke(root, "engagement", "set", "client-00",
                                         "contract_end=2027-02-10", now=DRAFT_AT),
                     "engagement set (re-plan)", recover_at=DRAFT_AT, check=moved_or_not)


@pytest.fixture
def polled(tmp_path, smtp_server, imap_account):  # noqa: F811
    """A project whose timeline notice went out, with two replies waiting in the INBOX."""
    template, files = two_engagements(tmp_path, smtp_server.port, approval=False)
    cfg = template / "mailflow.toml"
    cfg.write_text(cfg.read_text() + imap_toml(imap_account))
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    assert invoke(template, "run", now=SEND_AT)[0] == 0
    for i, msg in enumerate(m for m in state_of(template).messages.values() if m.get("sent_at")):
        imap_account.append("INBOX", reply(msg, f"Question {i} about the handover.",
                                           sender=f"contact{i:02d}@client{i:02d}.example",
                                           mid=f"<r{i}@client.example>"))
    return template


def test_crash_points_of_a_poll_with_replies_arriving(tmp_path, smtp_server, polled):
    def no_reply_lost(state) -> list[str]:  # noqa: ANN001
        texts = sorted(r["text"] for r in state.replies.values())
        ok = texts == ["Question 0 about the handover.", "Question 1 about the handover."]
        return [] if ok else [f"replies after recovery: {texts}"]

    crash_everywhere(tmp_path, smtp_server, polled,
                     lambda root: invoke(root, "poll", now="2026-12-31T11:00"),
                     "poll with 2 replies", recover_at="2026-12-31T11:05", check=no_reply_lost)


def test_crash_points_of_the_checkpoint_save(tmp_path, smtp_server):
    template, files = two_engagements(tmp_path, smtp_server.port, approval=True)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0

    def paused_or_not(state) -> list[str]:  # noqa: ANN001
        return [] if state.engagements["client-00"]["status"] in ("active", "paused") else [
            "status changed"]

    crash_everywhere(tmp_path, smtp_server, template,
                     lambda root: invoke(root, "engagement", "pause", "client-00", now=DRAFT_AT),
                     "checkpoint save (pause)", recover_at=DRAFT_AT, check=paused_or_not)


@pytest.mark.parametrize(("mode", "every"), [("enospc", 1), ("erofs", 3), ("eacces", 3),
                                             ("enoent", 3)])
def test_a_storage_fault_at_any_write_is_one_line_exit_5_and_leaves_no_temp_file(
        tmp_path, smtp_server, mode, every):
    """Disk full, read-only folder, another user's file, a vanished file: at each write."""
    template, files = two_engagements(tmp_path, smtp_server.port, approval=False)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    invoke(copy_project(template, tmp_path / "warm"), "run", now=SEND_AT)  # imports, before forking
    work = copy_project(template, tmp_path / "count")
    status, data = in_child(lambda: invoke(work, "run", now=SEND_AT), arm=(0, "count"))
    assert status == 0, data
    io_points = [n for n in data["names"]
                 if not n.startswith(("journal append", "smtp", "imap", "body write"))]
    failures = []
    for n in range(1, len(io_points) + 1, every):
        root = copy_project(template, tmp_path / "run")
        smtp_server.handler.received.clear()
        status, data = in_child(lambda root=root: invoke(root, "run", now=SEND_AT),
                                arm=(n, mode))
        code, output = data.get("result") or (None, data.get("error"))
        lines = output.strip().splitlines()
        if code != 5 or len(lines) != 1 or str(root) not in lines[0] or "Traceback" in output:
            failures.append(f"{mode} at {n} ({io_points[n - 1]}): exit {code}: {output}")
        strays = list((root / ".mailflow").rglob("*.tmp"))
        if strays:
            failures.append(f"{mode} at {n}: stray {strays}")
        failures.extend(f"{mode} at {n}: {p}" for p in check_invariants(
            root, smtp_server, SEND_AT, {}))
    assert not failures, "\n".join(failures[:10])


def test_crash_points_of_a_retry_after_a_per_recipient_4xx(tmp_path, smtp_server):
    """The Cc of each first email was refused for now (451); the retry goes to the Cc alone.
    Killed anywhere in that retry, the To never gets it again and the Cc gets it at most once."""
    template, files = two_engagements(tmp_path, smtp_server.port, approval=False)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    ccs = [f"it{i:02d}@client{i:02d}.example" for i in range(2)]
    smtp_server.handler.behaviour.rcpt_replies = {cc: "451 4.3.0 try again later" for cc in ccs}
    invoke(template, "run", now=SEND_AT)
    smtp_server.handler.behaviour.rcpt_replies = {}
    firsts = [m for m in state_of(template).messages.values() if m["stage"] == "timeline_notice"]
    assert firsts and all(m["state"] == S.RETRY for m in firsts), [m["state"] for m in firsts]
    retry_at = "2026-12-30T10:30"  # past the first retry delay, inside the send window

    def only_the_cc(state) -> list[str]:  # noqa: ANN001
        problems = []
        for received in smtp_server.client_mail:  # (the digest goes to the consultant)
            if set(received.rcpt_tos) - set(ccs):
                problems.append(f"the retry went to {received.rcpt_tos}, not only the Cc")
        return problems

    crash_everywhere(tmp_path, smtp_server, template,
                     lambda root: invoke(root, "run", now=retry_at), "retry after a 4xx",
                     recover_at=retry_at, check=only_the_cc)


# -- archive lane (issue 18): a run that moves engagements out and folds journal segments ------

def test_crash_points_of_a_run_that_archives_engagements_and_folds_a_segment(
        tmp_path, smtp_server, monkeypatch):
    """Both engagements' first emails went out and both were completed 31 days before; the
    run moves them into archives, deletes their bodies, rotates the journal and folds the
    older segments into base.json. Cut anywhere, a plain run finishes the job: each
    engagement is in the hot state or in its archive (with every event and the sent text),
    the global log loses none of their events, and the journal folded from its base gives
    the checkpoint's state."""
    from mailflow.store import Store
    from mailflow.store import segments as segs
    monkeypatch.setattr(segs, "SEGMENT_BYTES", 1)  # every run that saves rotates the journal
    template, files = two_engagements(tmp_path, smtp_server.port, approval=False)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    assert invoke(template, "run", now=SEND_AT)[0] == 0
    for eid in ("client-00", "client-01"):
        assert invoke(template, "engagement", "complete", eid, "--force", now=SEND_AT)[0] == 0
    assert segs.segments(template / ".mailflow"), "the run that sent rotated the journal"
    store = Store(template / ".mailflow")
    audit = {e["seq"] for e in store.events() if e.get("engagement")}
    keys = set(store.load().messages)
    later = "2027-02-01T10:00"

    def moved_whole(state) -> list[str]:  # noqa: ANN001
        problems = []
        root_store = Store(state.shelf.dir.parent)
        for eid in ("client-00", "client-01"):
            data = root_store.shelf.read(eid)
            if eid in state.engagements:
                problems.append(f"{eid} still in the hot state after a full run")
            elif data is None:
                problems.append(f"{eid} is neither in the hot state nor archived")
            elif not any(m.get("sent_at") and data["bodies"].get(m["body"], {}).get("text")
                         for m in data["messages"]):
                problems.append(f"{eid}: the archive lacks the sent text")
        got = {m["key"] for eid in ("client-00", "client-01")
               for m in (root_store.shelf.read(eid) or {}).get("messages", ())}
        if got | set(state.messages) != keys:
            problems.append(f"messages lost: {sorted(keys - got - set(state.messages))}")
        seen = {e["seq"] for e in root_store.events(hot=set(state.engagements))}
        if audit - seen:
            problems.append(f"the audit log lost events {sorted(audit - seen)[:5]}")
        rebuilt, _ = root_store.load_at(trust_checkpoint=False)
        for table in ("engagements", "messages", "replies", "cursors", "digests"):
            if getattr(rebuilt, table) != getattr(state, table):
                problems.append(f"the journal folded from its base differs in {table}")
        return problems

    crash_everywhere(tmp_path, smtp_server, template,
                     lambda root: invoke(root, "run", now=later),
                     "run that archives and folds", recover_at=later, check=moved_whole)


# -- batched sending (issue 18): `sending` marks fsynced once per group of k ------------------

@pytest.mark.parametrize("k", [2, None])
def test_crash_points_of_a_batched_send_leave_one_in_doubt_after_a_kill(tmp_path, smtp_server,
                                                                        k):
    """Three first emails sent in groups of k (`[schedule] send_batch` = 2: a group of two,
    then one; None: the default, one group of three): a group's `sending` marks share one
    fsync before its SMTP transactions, its outcomes one after, and each outcome reaches the
    kernel before the next transaction starts. Crashed at any point, nobody gets a message
    twice; after a kill (same boot) at most the message in flight is in doubt and the
    group's later ones go out; after a power cut (another boot) at most the k messages of one
    group are (a lost `sent` mark only ever means in doubt, never a resend)."""
    template, files = two_engagements(tmp_path, smtp_server.port, approval=False, n=3)
    if k is not None:
        cfg = template / "mailflow.toml"
        cfg.write_text(cfg.read_text().replace("per_minute = 1000",
                                               f"per_minute = 1000\nsend_batch = {k}"))
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    group = k or 3

    def in_doubt_by_mode(state, mode: str) -> list[str]:  # noqa: ANN001
        doubt = sorted(m["key"] for m in state.messages.values() if m["state"] == S.IN_DOUBT)
        limit = 1 if mode == "kill" else group
        return [] if len(doubt) <= limit else [f"{len(doubt)} in doubt after a {mode} "
                                               f"(k = {group}): {doubt}"]

    crash_everywhere(tmp_path, smtp_server, template,
                     lambda root: invoke(root, "run", now=SEND_AT), f"batched send (k={group})",
                     recover_at=SEND_AT, mode_check=in_doubt_by_mode)
