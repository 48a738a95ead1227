"""The digest's pure decisions: reply commands, number binding, when a digest is due, authres."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from mailflow import timing
from mailflow.config.settings import DigestConfig
from mailflow.engine.attention import Need
from mailflow.engine.digest import (
    content_digest,
    digest_due,
    entries,
    is_stale,
    last_slot,
    outbox_empty,
)
from mailflow.engine.digest_commands import decide, find_digest, parse_commands
from mailflow.inbound.authresults import passed_dkim_or_dmarc
from mailflow.store import State

NY = timing.load_zone("America/New_York")
CFG = DigestConfig()


def test_commands_are_read_until_the_quoted_digest_or_a_signature():
    parsed = parse_commands("approve 1 3\nApprove: 4\nreject 2 not needed\n\nhandled 5\n"
                            "pause northwind-2026\napprove all\nthanks!\n> approve 9\n"
                            "-- \napprove 7\n")
    verbs = [(c.verb, c.numbers, c.everything, c.engagement, c.reason)
             for c in parsed.commands]
    assert verbs == [("approve", (1, 3), False, None, ""), ("approve", (4,), False, None, ""),
                     ("reject", (2,), False, None, "not needed"),
                     ("handled", (5,), False, None, ""),
                     ("pause", (), False, "northwind-2026", ""), ("approve", (), True, None, "")]
    assert parsed.unknown == ["thanks!"]  # reported back, never guessed
    quoted = parse_commands("approve 1\n-- mailflow digest\napprove all\n")
    assert [c.numbers for c in quoted.commands] == [(1,)]
    # a phone that quotes without ">": the digest below the reply is never read as commands
    for quote in ("Sent from my iPhone\n\nWhat waits for you, Mon ...",
                  "-----Original Message-----\nFrom: mailflow",
                  "On Mon, Jan 18, 2027 at 8:30 AM mailflow <dana@w.example> wrote:"):
        unquoted = parse_commands(f"approve 2\n\n{quote}\n    approve all  |  reject 1\n")
        assert [(c.verb, c.numbers) for c in unquoted.commands] == [("approve", (2,))]
        assert unquoted.unknown == []


def state_with_drafts() -> State:
    state = State()
    state.engagements["e"] = {"id": "e", "status": "active"}
    for i, stage in enumerate(("a", "b"), 1):
        key = f"e/{stage}/0"
        state.messages[key] = {"key": key, "engagement": "e", "stage": stage, "step": 0,
                               "state": "awaiting_approval", "subject": f"S{i}", "body": f"b{i}",
                               "to": [{"email": "c@client.example"}],
                               "due": f"2027-01-2{i}T14:00:00+00:00"}
    state.replies["7"] = {"id": "7", "needs_action": True, "received_at": "2027-01-18T10:00"}
    return state


def test_each_number_binds_to_the_content_listed_and_a_changed_draft_is_refused():
    state = state_with_drafts()
    listed = entries(state, {"e/a/0", "e/b/0", "7"})
    assert [(e.n, e.kind, e.key) for e in listed] == [(1, "draft", "e/a/0"),
                                                      (2, "draft", "e/b/0"), (3, "reply", "7")]
    digest = {"id": "d1", "entries": [e.__dict__ for e in listed]}
    state.messages["e/b/0"]["body"] = "edited"  # changed after the digest went out
    state.messages["e/b/0"]["edited"] = {"by": "dana"}
    decision = decide(parse_commands("approve all\nhandled 3\nhandled 1\napprove 9"), digest,
                      state)
    assert decision.approve == [(1, "e/a/0")]
    assert decision.handled == [(3, "7")]
    assert any(r.startswith("2: it changed since the digest (edited)") for r in decision.refused)
    assert "1: the digest lists no reply 1" in decision.refused
    assert "9: the digest lists no draft 9" in decision.refused


def test_content_digest_changes_with_words_recipients_and_date():
    msg = state_with_drafts().messages["e/a/0"]
    base = content_digest(msg)
    for change in ({"subject": "x"}, {"body": "y"}, {"to": [{"email": "z@z.example"}]},
                   {"due": "2027-02-01T14:00:00+00:00"}):
        assert content_digest({**msg, **change}) != base


def test_a_reply_counts_only_when_it_threads_to_a_digest_with_its_token():
    digests = {"d1": {"id": "d1", "token": "ab12", "sent_at": "2027-01-18T13:30:00+00:00",
                      "message_id": "<mailflow-digest.ab12@w.example>"}}
    found, why = find_digest(digests, ("<mailflow-digest.ab12@w.example>",), ())
    assert found is digests["d1"] and why == ""
    assert find_digest(digests, ("<mailflow-digest.guess@w.example>",), ())[0] is None
    assert find_digest(digests, (), ("dana+digest-ab12@w.example",))[0] is None  # no thread
    found, why = find_digest(digests, ("<mailflow-digest.ab12@w.example>",),
                             ("dana+digest-ffff@w.example",))
    assert found is None and "token" in why
    now = dt.datetime(2027, 1, 25, 13, 31, tzinfo=dt.UTC)
    assert is_stale(digests["d1"], now, CFG)
    assert not is_stale(digests["d1"], now - dt.timedelta(minutes=2), CFG)


def test_a_digest_goes_out_once_a_day_at_its_time_and_at_once_when_urgent():
    waiting = [Need("messages", "e/a/0", "approval:due:2", "...")]
    at_8 = dt.datetime(2027, 1, 18, 8, 0, tzinfo=NY)
    at_9 = dt.datetime(2027, 1, 18, 9, 0, tzinfo=NY)
    assert last_slot(at_9, CFG, NY) == dt.datetime(2027, 1, 18, 8, 30, tzinfo=NY)
    assert last_slot(at_8, CFG, NY) == dt.datetime(2027, 1, 17, 8, 30, tzinfo=NY)
    assert digest_due(at_9, CFG, NY, None, waiting, set()) == "regular"
    assert digest_due(at_9, CFG, NY, None, [], set()) is None  # nothing waits: no digest
    sent = {"sent_at": at_9.astimezone(dt.UTC).isoformat(), "urgent": []}
    later = at_9 + dt.timedelta(hours=5)
    assert digest_due(later, CFG, NY, sent, waiting, set()) is None  # once a day
    assert digest_due(later, CFG, NY, sent, waiting, {"7"}) == "urgent"
    assert digest_due(later, CFG, NY, {**sent, "urgent": ["7"]}, waiting, {"7"}) is None
    next_day = at_9 + dt.timedelta(days=1)
    assert digest_due(next_day, CFG, NY, sent, waiting, set()) == "regular"
    weekly = replace(CFG, every=(168, True))
    assert digest_due(next_day, weekly, NY, sent, waiting, set()) is None
    assert not digest_due(at_9, replace(CFG, enabled=False), NY, None, waiting, set())


def test_only_the_trusted_servers_authentication_results_count():
    raw = (b"Authentication-Results: evil.example; dkim=pass; dmarc=pass\r\n"
           b"Authentication-Results: mx.w.example; dkim=pass header.d=w.example; dmarc=pass\r\n"
           b"From: dana@w.example\r\n\r\napprove 1\r\n")
    assert passed_dkim_or_dmarc(raw, "mx.w.example") == (True, "")
    assert passed_dkim_or_dmarc(raw, None) == (True, "")
    forged = raw.split(b"\r\n", 1)[0] + b"\r\nFrom: dana@w.example\r\n\r\nx\r\n"
    ok, why = passed_dkim_or_dmarc(forged, "mx.w.example")
    assert not ok and "no Authentication-Results from mx.w.example" in why
    # a DKIM pass for the forger's own domain proves nothing about dana@w.example
    other = raw.replace(b"header.d=w.example; dmarc=pass", b"header.d=evil.example; dmarc=none")
    ok, why = passed_dkim_or_dmarc(other, "mx.w.example", "w.example")
    assert not ok and "evil.example" in why
    assert passed_dkim_or_dmarc(raw, "mx.w.example", "w.example") == (True, "")
    failed = raw.replace(b"dmarc=pass\r\nFrom", b"dmarc=fail\r\nFrom")
    ok, why = passed_dkim_or_dmarc(failed, "mx.w.example")
    assert not ok and "dmarc=fail" in why


def test_the_outbox_is_empty_only_when_no_digest_and_no_confirmation_can_go():
    # (issue 18: an idle run then does not load the digest writer and the email package)
    off, on = DigestConfig(enabled=False), DigestConfig()
    waiting = [Need("messages", "e/a/0", "approval:due:1", "", urgent=False)]
    state = State()
    assert outbox_empty(state, off, waiting) and outbox_empty(state, on, [])
    assert not outbox_empty(state, on, waiting)
    state.digests["r1"] = {"id": "r1", "kind": "reply", "confirmation": {"lines": ["ok"]}}
    assert not outbox_empty(state, off, [])  # a reply to an older digest still gets its answer
    state.digests["r1"]["confirming_at"] = "2027-01-04T08:31:00+00:00"
    assert outbox_empty(state, off, [])
