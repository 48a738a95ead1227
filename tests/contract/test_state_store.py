"""The state-store contract: every implementation (on disk, in memory) passes the same tests."""

from __future__ import annotations

import datetime as dt

import pytest

from mailflow.engine.records import MessageState as S
from mailflow.errors import LockedError, StateError, StoreError
from mailflow.store import Store
from mailflow.store.seam import MemoryStore, StateStore

NOW = dt.datetime(2026, 12, 28, 15, 0, tzinfo=dt.UTC)
ENG = {"id": "acme", "client": "Acme", "status": "active", "time_zone": "UTC",
       "contacts": {"to": [{"name": "A", "email": "a@acme.example"}]},
       "dates": {"contract_end": "2027-01-29"}}


@pytest.fixture(params=["file", "memory"])
def store(request, tmp_path) -> StateStore:
    return Store(tmp_path / ".mailflow") if request.param == "file" else MemoryStore()


def reopen(store: StateStore) -> StateStore:
    """The same store as the next process would open it."""
    return Store(store.dir) if isinstance(store, Store) else store


def plan(w, key: str = "acme/timeline_notice/0") -> dict:  # noqa: ANN001
    return w.create_message({"key": key, "engagement": "acme", "stage": "timeline_notice",
                             "step": 0, "template": "timeline_notice", "approval": True,
                             "due": "2026-12-30T14:00:00+00:00", "reasons": [], "after": None,
                             "thread_root": None}, at=NOW)


def test_every_implementation_declares_the_protocol(store):
    assert isinstance(store, StateStore)


def test_an_empty_store_loads_empty(store):
    state = store.load()
    assert state.engagements == {} and state.messages == {} and state.replies == {}


def test_a_command_s_changes_are_there_after_it_ends(store):
    with store.writer() as w:
        w.record("engagement.added", at=NOW, engagement="acme",
                 engagements={"key": "acme", "set": ENG})
        msg = plan(w)
        w.update_message(msg, "message.drafted", at=NOW, state=S.AWAITING_APPROVAL, subject="Hi")
    state = reopen(store).load()
    assert state.engagements["acme"]["client"] == "Acme"
    msg = state.messages["acme/timeline_notice/0"]
    assert msg["state"] == "awaiting_approval" and msg["subject"] == "Hi"
    assert [h["state"] for h in msg["history"]] == ["planned", "awaiting_approval"]


def test_a_command_that_fails_changes_nothing(store):
    with store.writer() as w:
        w.record("engagement.added", at=NOW, engagement="acme",
                 engagements={"key": "acme", "set": ENG})
    with pytest.raises(RuntimeError), store.writer() as w:
        for i in range(3):
            plan(w, f"acme/timeline_notice/{i}")
        raise RuntimeError("premailer fell over")  # any exception, not only ours
    state = reopen(store).load()
    assert state.messages == {} and list(state.engagements) == ["acme"]
    with store.writer() as w:  # and the store goes on as before
        plan(w)
    assert list(reopen(store).load().messages) == ["acme/timeline_notice/0"]


def test_a_durable_change_stays_when_the_command_fails_later(store):
    with store.writer() as w:
        w.record("engagement.added", at=NOW, engagement="acme",
                 engagements={"key": "acme", "set": ENG})
        msg = plan(w)
        w.update_message(msg, "message.drafted", at=NOW, state=S.APPROVED)
    with pytest.raises(KeyboardInterrupt), store.writer() as w:
        msg = w.state.messages["acme/timeline_notice/0"]
        w.update_message(msg, "message.sending", at=NOW, durable=True, state=S.SENDING)
        w.update_message(msg, "message.redated", at=NOW, due="2027-01-01T00:00:00+00:00")
        raise KeyboardInterrupt
    msg = reopen(store).load().messages["acme/timeline_notice/0"]
    assert msg["state"] == "sending" and msg["due"] == "2026-12-30T14:00:00+00:00"


def test_an_illegal_transition_names_the_message_its_state_and_the_one_asked_for(store):
    with store.writer() as w:
        msg = plan(w)
        with pytest.raises(StateError, match=r"acme/timeline_notice/0 is planned; it cannot "
                                             r"become sent"):
            w.update_message(msg, "message.sent", at=NOW, state=S.SENT)
    assert reopen(store).load().messages["acme/timeline_notice/0"]["state"] == "planned"


def test_one_writer_at_a_time(store):
    with store.writer(), pytest.raises(LockedError), store.writer():
        pass


def test_bodies_are_kept_by_content_and_a_missing_one_is_named(store):
    ref = store.put_body("<p>Hi</p>", "Hi")
    assert store.put_body("<p>Hi</p>", "Hi") == ref
    assert reopen(store).body(ref) == ("<p>Hi</p>", "Hi")
    with pytest.raises(StoreError, match="0123456789abcdef0123456789abcdef"):
        store.body("0123456789abcdef0123456789abcdef")


def test_attachments_are_kept_byte_for_byte_by_content_and_a_missing_one_is_named(store):
    pdf = b"%PDF-1.7\n\x00\xff\r\n%%EOF\n"
    ref = store.put_attachment(pdf)
    assert store.put_attachment(pdf) == ref != store.put_body("<p>Hi</p>", "Hi")
    assert reopen(store).attachment(ref) == pdf
    with store.writer() as w:
        assert w.attachment(ref) == pdf
    with pytest.raises(StoreError, match="0123456789abcdef0123456789abcdef"):
        store.attachment("0123456789abcdef0123456789abcdef")


def test_prebuilt_messages_are_kept_by_content_and_a_missing_one_is_none(store):
    raw = b"From: a@b.example\r\nSubject: Hi\r\n\r\nHi\r\n"
    ref = store.put_wire_copy(raw)
    assert store.put_wire_copy(raw) == ref
    assert reopen(store).wire_copy(ref) == raw
    with store.writer() as w:
        assert w.wire_copy(ref) == raw
    assert store.wire_copy("0123456789abcdef0123456789abcdef") is None


def test_a_damaged_prebuilt_message_on_disk_is_none_never_its_torn_bytes(tmp_path):
    store = Store(tmp_path / ".mailflow")
    ref = store.put_wire_copy(b"From: a@b.example\r\n\r\nHi\r\n")
    store.wire_copy_path(ref).write_bytes(b"From: a@b.exa")  # a power cut tore it
    assert store.wire_copy(ref) is None


def test_folding_the_journal_from_empty_gives_the_same_state(store):
    with store.writer() as w:
        w.record("engagement.added", at=NOW, engagement="acme",
                 engagements={"key": "acme", "set": ENG})
        msg = plan(w)
    with store.writer() as w:
        msg = w.state.messages[msg["key"]]
        w.update_message(msg, "message.drafted", at=NOW, state=S.AWAITING_APPROVAL)
        w.record("cursor.moved", at=NOW, cursors={"key": "INBOX", "set": {"last_uid": 7}})
    loaded = reopen(store).load()
    if isinstance(store, Store):
        folded, _ = store.load_at(trust_checkpoint=False)
    else:
        folded = store.load()
    for table in ("engagements", "messages", "replies", "cursors"):
        assert getattr(folded, table) == getattr(loaded, table), table


def test_the_engine_plans_and_drafts_over_any_store(store, tmp_path):
    """A tick needs nothing of a store but the seam: plans and drafts land in its journal."""
    from mailflow.config.loading import load_project
    from mailflow.desk.actions import add_engagement
    from mailflow.engine.tick import Tick
    from tests.helpers import make_project

    proj = make_project(tmp_path / "p")
    loaded = load_project(proj.project)
    now = dt.datetime(2026, 12, 28, 15, 0, tzinfo=dt.UTC)
    with store.writer() as w:
        add_engagement(w, loaded, proj.root / "engagements" / "example.toml", now)
    with store.writer() as w:
        report = Tick(loaded, w, now).run()
    assert report.drafted == ["northwind-2026/timeline_notice/0"] and not report.problems
    state = reopen(store).load()
    msg = state.messages["northwind-2026/timeline_notice/0"]
    assert msg["state"] == "awaiting_approval"
    html, text = reopen(store).body(msg["body"])
    assert "María José" in html and text.startswith("Hi María José,")
    assert {m["state"] for k, m in state.messages.items() if k != msg["key"]} == {"planned"}
