"""The journal is the only truth: checkpoints that do not match it, damage named by line,
commands that did not finish, missing bodies, and `mailflow doctor` (issue 11 items 1, 2, 4)."""

from __future__ import annotations

import datetime as dt
import json

import orjson
import pytest

from mailflow.errors import StoreError
from mailflow.store import Store
from tests.helpers import DRAFT_AT, SEND_AT, fill_batch, firsts

NOW = dt.datetime(2026, 12, 28, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def sent(proj, smtp_server):
    fill_batch(proj, 2)
    assert proj.cli("run", now=SEND_AT).exit_code == 0
    return proj


def store_of(proj) -> Store:  # noqa: ANN001
    return Store(proj.project.state_dir)


def lines(store: Store) -> list[bytes]:
    return store.journal_path.read_bytes().splitlines(keepends=True)


def test_every_change_is_an_event_and_the_fold_from_empty_is_the_state(sent):
    store = store_of(sent)
    with_checkpoint = store.load()
    folded, _ = store.load_at(trust_checkpoint=False)
    for table in ("engagements", "messages", "replies", "cursors"):
        assert getattr(folded, table) == getattr(with_checkpoint, table), table
    kinds = {json.loads(line)["kind"] for line in lines(store)}
    assert {"message.planned", "engagement.planned", "commit"} <= kinds


def test_a_checkpoint_ahead_of_its_journal_is_rebuilt_with_a_note(sent, smtp_server):
    store = store_of(sent)
    before = store.load()
    journal = store.journal_path.read_bytes()
    # the journal lost its tail (restored from an older copy): the checkpoint points past it;
    # cut at the commit mark of the last `sent` outcome (the run's closing plan came after it)
    rows = journal.splitlines(keepends=True)
    last_sent = max(i for i, line in enumerate(rows)
                    if json.loads(line)["kind"] == "message.sent")
    mark = next(i for i in range(last_sent, len(rows))
                if json.loads(rows[i])["kind"] == "commit")
    store.journal_path.write_bytes(b"".join(rows[:mark]))
    r = sent.cli("status", now=SEND_AT)
    assert r.exit_code == 0, r.output
    assert "does not match events.jsonl" in r.output and "rebuilt" in r.output
    # the lost line was the commit mark of the last `sent` outcome: that group is now one
    # that did not finish, said once, and the message is back to its durable `sending` mark
    notes = [line for line in r.output.splitlines() if "note:" in line]
    assert len(notes) == 2 and "did not finish" in notes[1], r.output
    changed = {k for k, m in store_of(sent).load().messages.items()
               if m["state"] != before.messages[k]["state"]}
    assert len(changed) == 1
    r = sent.cli("run", now=SEND_AT)
    assert r.exit_code == 1 and "in doubt" in r.output  # asked about, never sent again
    assert len(smtp_server.client_mail) == 2


def test_a_checkpoint_from_another_journal_is_not_trusted(sent):
    store = store_of(sent)
    data = orjson.loads(store.db_path.read_bytes())
    data["meta"]["1"]["hash"] = "0" * 16
    store.db_path.write_bytes(orjson.dumps(data))
    state = store.load()
    assert store.notes and "does not match" in store.notes[0]
    assert {m["state"] for m in state.messages.values()
            if m["stage"] == "timeline_notice"} == {"sent"}


def test_a_damaged_line_in_the_middle_is_named_and_never_skipped(sent):
    store = store_of(sent)
    journal = lines(store)
    journal[5] = b'{"seq": 6, "kind": "message.appr\x00\n'
    store.journal_path.write_bytes(b"".join(journal))
    store.db_path.unlink()  # the checkpoint would hide it until the next rebuild
    for args in (("status",), ("run",), ("drafts",)):
        r = sent.cli(*args, now=SEND_AT)
        assert r.exit_code == StoreError.exit_code, r.output
        out = r.output.strip().splitlines()
        assert len(out) == 1 and f"{store.journal_path}: line 6 is damaged" in out[0]
        assert "mailflow doctor" in out[0]
    r = sent.cli("doctor", now=SEND_AT)
    assert r.exit_code == StoreError.exit_code and "line 6 is damaged" in r.output
    r = sent.cli("doctor", "--repair", now=SEND_AT)
    assert r.exit_code == StoreError.exit_code and "add --quarantine" in r.output
    assert len(lines(store)) == len(journal)  # nothing set aside unasked
    r = sent.cli("doctor", "--repair", "--quarantine", now=SEND_AT)
    assert r.exit_code == 0, r.output
    side = (store.dir / "events.damaged.jsonl").read_bytes()
    assert side.startswith(b"6\t") and b"message.appr" in side
    assert sent.cli("status", now=SEND_AT).exit_code == 0


def test_a_command_that_did_not_finish_is_ignored_and_reported(sent):
    store = store_of(sent)
    before = store.load()
    last_seq = json.loads(lines(store)[-1])["seq"]
    with open(store.journal_path, "ab") as f:  # a killed `engagement pause`: no commit mark
        f.write(json.dumps({"seq": last_seq + 1, "g": last_seq + 1, "kind": "engagement.paused",
                            "engagement": "client-00", "engagements": {
                                "key": "client-00", "set": {"status": "paused"}}}).encode()
                + b"\n")
    state = store_of(sent).load()
    assert state.engagements["client-00"]["status"] == "active"
    # nor does the audit log show what never happened
    assert not [e for e in store.events() if e["kind"] == "engagement.paused"]
    r = sent.cli("engagement", "pause", "client-01", now=SEND_AT)
    assert r.exit_code == 0
    assert "did not finish were ignored" in r.output
    state = store_of(sent).load()
    assert state.engagements["client-00"]["status"] == "active"
    assert state.engagements["client-01"]["status"] == "paused"
    assert before.messages.keys() == state.messages.keys()


def test_an_exception_of_any_type_leaves_the_state_as_before(sent, monkeypatch):
    store = store_of(sent)
    before = store.load()
    size = store.journal_path.stat().st_size
    import mailflow.engine.tick as tick_mod

    def broken(self):  # noqa: ANN001, ANN202
        raise NotADirectoryError(20, "Not a directory", "templates/emails")
    monkeypatch.setattr(tick_mod.Tick, "hold_overdue", broken)
    with pytest.raises(NotADirectoryError):
        sent.cli("run", now="2027-01-20T10:00")
    after = store_of(sent).load()
    assert after.messages == before.messages and after.engagements == before.engagements
    assert store.journal_path.stat().st_size >= size  # appended to (an abort mark), never cut
    assert not list(store.dir.glob("*.tmp"))


def test_a_missing_body_blocks_only_its_message_and_doctor_renders_it_again(proj, smtp_server):
    fill_batch(proj, 2)
    store = store_of(proj)
    one = next(m for m in firsts(proj) if m["engagement"] == "client-00")
    # both drafts share one body file (same words): give client-00's its own, then lose it
    with store.writer() as w:
        html, text = w.body(one["body"])
        ref = w.put_body(html + "<!-- 00 -->", text)
        w.update_message(w.state.messages[one["key"]], "message.edited", at=NOW, body=ref)
    store.body_path(ref).unlink()
    one["body"] = ref
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 1
    line = next(x for x in r.output.splitlines() if "client-00/timeline_notice/0" in x)
    assert str(store.body_path(one["body"])) in line
    assert "doctor --repair" in r.output
    assert len(smtp_server.client_mail) == 1  # the other engagement's email went out
    assert "client-00/timeline_notice/0" in proj.cli("status", now=SEND_AT).output
    assert "client-00/timeline_notice/0" in proj.cli("drafts", now=SEND_AT).output
    r = proj.cli("doctor", now=SEND_AT)
    assert r.exit_code == StoreError.exit_code and "client-00/timeline_notice/0" in r.output
    r = proj.cli("doctor", "--repair", now=SEND_AT)
    assert r.exit_code == 0, r.output
    assert "rendered again" in r.output
    msg = store_of(proj).load().messages["client-00/timeline_notice/0"]
    assert msg["state"] == "approved"  # this stage needs no approval (fill_batch's rules)
    assert proj.cli("run", now=SEND_AT).exit_code == 0
    assert len(smtp_server.client_mail) == 2


def test_a_missing_body_of_a_draft_needs_approving_again(proj, smtp_server):
    assert proj.cli("engagement", "add", str(proj.root / "engagements/example.toml")
                    ).exit_code == 0
    assert proj.cli("run", now=DRAFT_AT).exit_code == 1  # a draft that needs you (issue 13)
    key = "northwind-2026/timeline_notice/0"
    assert proj.cli("drafts", "approve", key, now=DRAFT_AT).exit_code == 0
    store = store_of(proj)
    store.body_path(store.load().messages[key]["body"]).unlink()
    r = proj.cli("doctor", "--repair", now=DRAFT_AT)
    assert r.exit_code == 0, r.output
    assert f"mailflow drafts approve {key}" in r.output
    assert store_of(proj).load().messages[key]["state"] == "awaiting_approval"


def test_doctor_says_a_sound_project_is_sound(sent):
    r = sent.cli("doctor", now=SEND_AT)
    assert r.exit_code == 0, r.output
    assert "sound" in r.output


def test_the_recoveries_people_try_never_send_again(sent, smtp_server):
    store = store_of(sent)
    aside = store.dir / "events.jsonl.moved"
    # moving the journal aside: refused by name, nothing reset or sent
    store.journal_path.rename(aside)
    r = sent.cli("run", now=SEND_AT)
    assert r.exit_code == StoreError.exit_code and "the journal is missing" in r.output
    assert not store.journal_path.exists()
    r = sent.cli("doctor", "--repair", now=SEND_AT)
    assert r.exit_code == StoreError.exit_code and "the journal is missing" in r.output
    aside.rename(store.journal_path)
    # copying the backup over the checkpoint, or deleting it: rebuilt from the journal
    store.db_path.write_bytes((store.dir / "state.json.bak").read_bytes())
    assert sent.cli("run", now=SEND_AT).exit_code == 0
    store.db_path.unlink()
    assert sent.cli("run", now=SEND_AT).exit_code == 0
    assert len(smtp_server.client_mail) == 2
    assert {m["state"] for m in firsts(sent)} == {"sent"}
