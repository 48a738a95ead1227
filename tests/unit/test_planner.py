"""The planner as a pure function: engagement + rules + history -> what is due when."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest

from mailflow import timing
from mailflow.config.engagements import hydrate, validate_engagement
from mailflow.config.rules import load_sequence
from mailflow.engine.planner import Context, message_key, plan_engagement
from mailflow.project import playbook_dir

NY = timing.load_zone("America/New_York")
CTX = Context(NY, timing.make_calendar(None))


def sequence(tmp_path: Path, text: str):
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return load_sequence(path, timing.DEFAULT_WINDOW)


def engagement(**changes) -> dict:
    data = tomllib.loads((playbook_dir() / "engagements" / "example.toml").read_text())
    data.update(changes)
    return hydrate(validate_engagement(data, Path("example.toml"), "UTC"))


RULES = """
[[stage]]
id = "a"
template = "a"
due = "10 days before contract_end"
[[stage]]
id = "b"
template = "b"
when = "support_offer"
due = "2 days after a"
[[stage]]
id = "c"
template = "c"
due = "1 business day after b"
[[stage]]
id = "d"
template = "d"
due = "on contract_end"
  [[stage.reminder]]
  template = "d_nudge"
  after = "3 business days"
  max = 2
"""


def by_stage(items):
    return {(i.stage, i.step): i for i in items}


def test_order_and_projection_before_anything_was_sent(tmp_path):
    items = by_stage(plan_engagement(engagement(), sequence(tmp_path, RULES), {}, [], CTX))
    a, b, c, d = (items[(s, 0)] for s in "abcd")
    assert a.status == b.status == c.status == d.status == "scheduled"
    assert a.due.astimezone(NY).date() == dt.date(2027, 1, 19)  # 10 days before Fri 29 Jan
    assert b.due > a.due and c.due > b.due  # projected from the earlier stages' due times
    assert (b.after, c.after, d.after) == (a.key, b.key, c.key)  # never ahead of them
    assert items[("d", 1)].status == "waiting"  # reminders wait for the first email


def test_a_stage_timed_from_a_skipped_stage_is_skipped_too(tmp_path):
    items = by_stage(plan_engagement(engagement(support_offer=False),
                                     sequence(tmp_path, RULES), {}, [], CTX))
    assert items[("b", 0)].status == "skipped"
    assert items[("c", 0)].status == "skipped"
    assert "timed from b" in items[("c", 0)].reasons[0]
    assert items[("d", 0)].status == "scheduled" and items[("d", 0)].after == items[("a", 0)].key


def test_a_date_the_engagement_lacks_is_an_error_not_a_wait(tmp_path):
    rules = RULES.replace('due = "on contract_end"', 'due = "on handover_date"')
    eng = engagement()
    del eng["dates"]["handover_date"]
    items = by_stage(plan_engagement(eng, sequence(tmp_path, rules), {}, [], CTX))
    assert items[("d", 0)].status == "error"
    assert "no date 'handover_date'" in items[("d", 0)].reasons[0]


@pytest.mark.parametrize("kind,stopped", [("human", True), ("auto_reply", False)])
def test_a_human_reply_stops_reminders_an_auto_reply_does_not(tmp_path, kind, stopped):
    seq = sequence(tmp_path, RULES)
    eng = engagement()
    sent = "2027-01-29T15:00:00+00:00"
    msgs = {message_key(eng["id"], s, 0): {"key": message_key(eng["id"], s, 0),
                                           "state": "sent", "sent_at": sent, "due": sent}
            for s in "abcd"}
    replies = [{"stage": "d", "kind": kind, "received_at": "2027-01-30T10:00:00+00:00"}]
    items = by_stage(plan_engagement(eng, seq, msgs, replies, CTX))
    assert items[("d", 1)].status == ("stopped" if stopped else "scheduled")
    if not stopped:
        # 3 business days after Fri 29 Jan: Wed 3 Feb, in the window
        assert items[("d", 1)].due.astimezone(NY).date() == dt.date(2027, 2, 3)
        assert items[("d", 1)].thread_root == message_key(eng["id"], "d", 0)
        assert items[("d", 2)].status == "waiting"
