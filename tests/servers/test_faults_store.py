"""The durable store: private files, a damaged database is named (with the way out) and never
reset, a torn journal line is ignored and never swallows the next event, replay is exact."""

from __future__ import annotations

import datetime as dt
import json
import stat

import pytest

from mailflow.errors import StoreError
from mailflow.store import Store
from tests.helpers import SEND_AT, fill_batch, firsts, told_only

NOW = dt.datetime(2026, 12, 30, 14, 30, tzinfo=dt.UTC)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def sent(proj, smtp_server):
    fill_batch(proj, 2)
    r = proj.cli("run", now=SEND_AT)
    assert told_only(r), r.output
    return proj


def test_state_files_are_private(sent):
    folder = sent.root / ".mailflow"
    assert mode(folder) == 0o700
    assert mode(folder / "state.json") == 0o600
    assert mode(folder / "events.jsonl") == 0o600
    assert mode(folder / "lock") == 0o600
    assert mode(folder / "state.json.bak") == 0o600
    assert not (folder / "state.json.tmp").exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "array"])
def test_a_damaged_database_is_named_with_the_way_out_and_never_reset(sent, smtp_server, damage):
    db = sent.root / ".mailflow" / "state.json"
    good = db.read_bytes()
    bad = {"truncate": good[: len(good) // 2], "garbage": b"\x00\xff{{{", "empty": b"",
           "array": b"[1, 2]"}[damage]
    db.write_bytes(bad)
    for args in (("run",), ("status",), ("drafts",), ("engagement", "pause", "client-00")):
        r = sent.cli(*args, now=SEND_AT)
        assert r.exit_code == StoreError.exit_code, (args, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1, r.output
        assert str(db) in lines[0] and "damaged" in lines[0]
        # issue 11: the way out is doctor (a rebuild from the journal), not copying a backup
        assert "`mailflow doctor --repair` rebuilds it from the journal" in lines[0]
        assert db.read_bytes() == bad  # nothing was reset to empty, nothing overwritten
    assert len(smtp_server.client_mail) == 2
    # the consultant copies the backup over it: everything is back
    db.write_bytes((db.parent / "state.json.bak").read_bytes())
    assert sent.cli("status", now=SEND_AT).exit_code == 0
    # or, as the error says, lets doctor rebuild it from the journal: the same state
    before = Store(sent.project.state_dir).load()
    db.write_bytes(bad)
    r = sent.cli("doctor", "--repair", now=SEND_AT)
    assert r.exit_code == 0, r.output
    after = Store(sent.project.state_dir).load()
    assert after.messages == before.messages and after.engagements == before.engagements
    assert sent.cli("run", now=SEND_AT).exit_code == 0
    assert len(smtp_server.client_mail) == 2  # nothing went out again


def test_a_damaged_database_without_backup_names_the_way_out(sent):
    db = sent.root / ".mailflow" / "state.json"
    (db.parent / "state.json.bak").unlink()
    db.write_bytes(b'{"messages": ')
    r = sent.cli("status", now=SEND_AT)
    assert r.exit_code == StoreError.exit_code
    assert "mailflow doctor --repair" in r.output and str(db) in r.output


def test_a_torn_last_journal_line_is_ignored(sent):
    store = Store(sent.project.state_dir)
    before = store.load()
    with open(store.journal_path, "ab") as f:
        f.write(b'{"seq": 999, "kind": "message.sent", "messages": {"key": "client-00/tim')
    after = store.load()
    assert after.messages == before.messages and after.engagements == before.engagements


def test_an_event_written_after_a_torn_line_is_not_lost(sent):
    """A crash mid-append leaves a torn tail; the next process's events must still replay."""
    store = Store(sent.project.state_dir)
    with open(store.journal_path, "ab") as f:
        f.write(b'{"seq": 999, "kind": "message.sen')  # the process died here
    key = "client-01/timeline_notice/0"
    with store.writer() as w:
        # a durable mark, and then this process dies too: no checkpoint
        w.record("message.sending", at=NOW, durable=True, engagement="client-01",
                 messages={"key": key, "set": {"state": "sending"}})
    assert store.load().messages[key]["state"] == "sending"
    for line in store.journal_path.read_bytes().splitlines():
        json.loads(line)  # every line whole


def test_replay_after_a_crash_before_the_checkpoint_gives_the_same_state(sent, smtp_server):
    store = Store(sent.project.state_dir)
    db = store.db_path
    checkpoint = db.read_bytes()
    # a whole run's events reach the journal, but the process dies before the checkpoint
    sent.cli("engagement", "pause", "client-00", now=SEND_AT)
    sent.cli("drafts", "approve", "--all", "-y", now="2027-01-15T10:00")
    sent.cli("run", now="2027-01-20T10:00")
    final = store.load()
    last_checkpoint = db.read_bytes()
    db.write_bytes(checkpoint)  # as if none of those commands had saved
    replayed = store.load()
    for table in ("engagements", "messages", "replies", "cursors"):
        if table == "engagements":  # but the plan signature: derived, checkpointed, re-planned
            for e in (*replayed.engagements.values(), *final.engagements.values()):
                e.pop("planned", None)
        assert getattr(replayed, table) == getattr(final, table), table
    # and replaying on top of the real checkpoint applies nothing twice
    db.write_bytes(last_checkpoint)
    again = store.load()
    assert again.messages == final.messages
    # and a run on the replayed state plans the same and sends nothing twice
    db.write_bytes(checkpoint)
    sent_before = len(smtp_server.client_mail)
    assert sent.cli("run", now="2027-01-20T10:05").exit_code == 0
    assert len(smtp_server.client_mail) == sent_before
    mids = [str(r.msg["Message-ID"]) for r in smtp_server.client_mail]
    assert len(mids) == len(set(mids))


def test_a_kill_between_journal_and_checkpoint_keeps_sent_messages_sent(sent, smtp_server):
    store = Store(sent.project.state_dir)
    db = store.db_path
    # the run that sent the two was checkpointed; simulate losing that checkpoint
    backup = db.parent / "state.json.bak"
    db.write_bytes(backup.read_bytes())
    assert {m["state"] for m in firsts(sent)} == {"sent"}
    assert sent.cli("run", now=SEND_AT).exit_code == 0
    assert len(smtp_server.client_mail) == 2
