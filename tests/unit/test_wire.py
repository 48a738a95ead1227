"""A message as it goes on the wire: threading headers, the same Date, who still gets it."""

from __future__ import annotations

import datetime as dt
import email
from email.policy import default

from mailflow.engine.wire import wire_message

NOW = dt.datetime(2026, 12, 30, 15, 0, tzinfo=dt.UTC)
SENDER = {"name": "Dana", "email": "dana@whitfield.example"}


def record(step: int = 0, **extra) -> dict:
    return {"key": f"e/s/{step}", "engagement": "e", "step": step,
            "thread_root": "e/s/0" if step else None,
            "subject": "Plan", "to": [{"name": "MJ", "email": "mj@client.example"}],
            "cc": [{"name": "Tom", "email": "tom@client.example"}],
            "message_id": f"<m{step}@whitfield.example>", "reply_token": "tok", **extra}


def parse(raw: bytes):  # noqa: ANN201
    return email.message_from_bytes(raw, policy=default)


def test_a_follow_up_threads_under_what_was_sent_before_it():
    root = record(0, sent_at="x")
    siblings = [root, record(1, sent_at="x"), record(2), record(3, sent_at="x")]
    raw, rcpts = wire_message(record(2), root, siblings, ("<p>h</p>", "t"), SENDER, True, NOW)
    got = parse(raw)
    assert got["In-Reply-To"] == "<m1@whitfield.example>"
    assert got["References"] == "<m0@whitfield.example> <m1@whitfield.example>"
    assert got["Reply-To"].addresses[0].addr_spec == "dana+tok@whitfield.example"
    assert rcpts == ["mj@client.example", "tom@client.example"]


def test_a_retry_is_the_same_message_to_those_who_have_not_got_it():
    first = "2026-12-29T14:00:00+00:00"
    msg = record(0, attempts_at=[first, "2026-12-29T15:00:00+00:00"],
                 recipients={"mj@client.example": {"outcome": "delivered"},
                             "tom@client.example": {"outcome": "temporary"}})
    raw, rcpts = wire_message(msg, None, [], ("<p>h</p>", "t"), SENDER, False, NOW)
    got = parse(raw)
    assert rcpts == ["tom@client.example"]
    assert got["Date"].datetime == dt.datetime.fromisoformat(first)
    assert got["Message-ID"] == "<m0@whitfield.example>" and got["Reply-To"] is None
