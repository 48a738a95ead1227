"""The checkpoint's layout (one record per line, meta first) and its lazily loaded records."""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle

import orjson
import pytest

from mailflow.engine.records import MessageState as S
from mailflow.errors import StoreError
from mailflow.store import Store, apply_event
from mailflow.store.journal import Position, replay
from mailflow.store.lazy import LazyRecord, decode, encode
from mailflow.store.state import State

NOW = dt.datetime(2026, 12, 28, 15, 0, tzinfo=dt.UTC)
ENG = {"id": "acme", "client": "Acme", "status": "active", "time_zone": "UTC",
       "contacts": {"to": [{"name": "A", "email": "a@acme.example"}]},
       "dates": {"contract_end": "2027-01-29"}, "invoices": [], "source": None}
SENT = {"key": "acme/x/0", "engagement": "acme", "stage": "x", "step": 0, "state": "sent",
        "due": "2027-01-02T09:00:00+00:00", "sent_at": "2027-01-02T09:00:00+00:00",
        "history": [{"at": "2027-01-01T09:00:00+00:00", "state": "planned"}],
        "to": [{"email": "a@acme.example"}], "subject": "Hello", "after": None}


def lazy(doc: dict, table: str = "messages") -> LazyRecord:
    body, cut = encode(table, doc)
    record = decode(table, body, cut)
    assert isinstance(record, LazyRecord) and record.frozen() is not None
    return record


def a_project(tmp_path) -> Store:  # noqa: ANN001
    store = Store(tmp_path / ".mailflow")
    with store.writer() as w:
        w.record("engagement.added", at=NOW, engagement="acme",
                 engagements={"key": "acme", "set": ENG})
        for n in range(3):
            msg = w.create_message({"key": f"acme/s{n}/0", "engagement": "acme",
                                    "stage": f"s{n}", "step": 0, "template": f"s{n}",
                                    "approval": True, "due": "2026-12-30T14:00:00+00:00",
                                    "reasons": ["r"], "after": None, "thread_root": None},
                                   at=NOW)
            if n:
                w.update_message(msg, "message.cancelled", at=NOW, state=S.CANCELLED,
                                 note="not needed")
    return store


def test_a_lazy_record_reads_its_hot_fields_without_parsing_the_rest():
    record = lazy(SENT)
    assert record["state"] == "sent" and record.get("sent_at") == SENT["sent_at"]
    assert record.get("due") == SENT["due"] and record.get("attempts_at") is None
    assert bool(record) and record.frozen() is not None  # (`record or {}` parses nothing)
    with pytest.raises(KeyError):
        lazy({**SENT})["no_such_hot_or_cold_field"]


@pytest.mark.parametrize("use", [  # a plain dict on the left: its == must ask the record
    lambda r: r == SENT, lambda r: SENT == r, lambda r: {**r} == SENT,  # noqa: SIM300
    lambda r: dict(r) == SENT,
    lambda r: json.loads(json.dumps(r)) == SENT, lambda r: copy.deepcopy(r) == SENT,
    lambda r: pickle.loads(pickle.dumps(r)) == SENT, lambda r: sorted(r) == sorted(SENT),
    lambda r: len(r) == len(SENT), lambda r: r["subject"] == "Hello",
    lambda r: r.get("after", 1) is None, lambda r: "history" in r and "nope" not in r,
    lambda r: dict(r.items()) == SENT, lambda r: r.copy() == SENT,
])
def test_a_lazy_record_is_the_whole_record_to_every_reader(use):
    assert use(lazy(SENT))


def test_changing_a_lazy_record_keeps_its_other_fields():
    record = lazy(SENT)
    record.setdefault("told", []).append("x")
    assert record["told"] == ["x"] and record["subject"] == "Hello" and record.frozen() is None
    record = lazy(SENT)
    record.update({"state": "bounced"})
    assert {**SENT, "state": "bounced"} == record  # noqa: SIM300 - plain dict first


def test_an_unchanged_lazy_record_is_written_back_as_it_was_read():
    body, cut = encode("messages", SENT)
    assert encode("messages", decode("messages", body, cut)) == (body, cut)
    assert orjson.loads(body) == SENT and orjson.loads(body[:cut] + b"}")["state"] == "sent"


def test_the_checkpoint_is_one_json_document_with_the_meta_first(tmp_path):
    store = a_project(tmp_path)
    raw = store.db_path.read_bytes()
    lines = raw.splitlines()
    assert lines[0] == b"{" and lines[1] == b'"meta":{'
    data = json.loads(raw)  # any JSON reader, TinyDB's shape
    assert set(data) == {"meta", "engagements", "messages", "replies", "cursors", "digests"}
    assert sorted(d["key"] for d in data["messages"].values()) == [
        "acme/s0/0", "acme/s1/0", "acme/s2/0"]
    # the opening, two lines per table, a line per record (meta, engagement, 3 messages), the end
    assert len(lines) == 1 + 6 * 2 + 1 + 1 + 3 + 1


def test_the_loaded_checkpoint_equals_the_journal_folded_from_empty(tmp_path):
    store = a_project(tmp_path)
    loaded = Store(store.dir).load()
    assert any(isinstance(m, LazyRecord) for m in loaded.messages.values())
    folded = State()
    replay(store.journal_path, Position(), lambda e: apply_event(folded, e))
    for table in ("engagements", "messages", "replies", "cursors", "digests"):
        assert getattr(loaded, table) == getattr(folded, table), table


def test_a_compact_checkpoint_of_an_older_mailflow_still_loads(tmp_path):
    store = a_project(tmp_path)
    before = Store(store.dir).load()
    compact = orjson.dumps(json.loads(store.db_path.read_bytes()))
    assert b"\n" not in compact
    store.db_path.write_bytes(compact)
    again = Store(store.dir)
    state = again.load()
    assert not again.notes and state.messages == before.messages
    assert state.engagements == before.engagements


def test_a_checkpoint_cut_short_is_named_as_damaged(tmp_path):
    store = a_project(tmp_path)
    raw = store.db_path.read_bytes()
    store.db_path.write_bytes(raw[: len(raw) // 2].rsplit(b"\n", 1)[0] + b"\n")
    with pytest.raises(StoreError, match="state.json: the database is damaged"):
        Store(store.dir).load()


def test_a_change_to_a_lazily_loaded_record_is_kept_and_the_others_written_as_read(tmp_path):
    store = a_project(tmp_path)
    before = store.db_path.read_bytes().splitlines()
    with Store(store.dir).writer() as w:
        w.record("note.added", at=NOW, engagement="acme", engagements={
            "key": "acme", "set": {"flagged": "look"}})
    state = Store(store.dir).load()
    assert state.engagements["acme"]["flagged"] == "look"
    assert state.engagements["acme"]["rev"] == 6  # each event of the engagement counted once
    after = store.db_path.read_bytes().splitlines()
    messages = [n for n, line in enumerate(before) if b'"acme/s' in line]
    assert [after[n] for n in messages] == [before[n] for n in messages]
    assert [line for line in after if b'"acme/s' not in line] != [
        line for line in before if b'"acme/s' not in line]
