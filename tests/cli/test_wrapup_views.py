"""The checklist in the views: status counts open items, "needs you now" lists overdue ones,
and `engagement complete` is refused while anything is open (issue 15)."""

from __future__ import annotations

import json

import pytest

from mailflow.store import Store
from tests.helpers import make_project

LATE = "2027-02-10T10:00"  # after the contract end: the access items are overdue


@pytest.fixture
def wp(tmp_path):
    proj = make_project(tmp_path)
    r = proj.cli("engagement", "add", str(proj.root / "engagements" / "example.toml"),
                 now="2026-12-01T10:00")
    assert r.exit_code == 0, r.output
    return proj


def open_ids(proj, now=LATE):
    (entry,) = json.loads(proj.cli("checklist", "northwind-2026", "--json", now=now).output)
    return [i["id"] for i in entry["items"] if not i["done"]]


def test_status_counts_open_items_and_needs_you_now_lists_the_overdue_ones(wp):
    r = wp.cli("status", "--json", now=LATE)
    (row,) = json.loads(r.output)["engagements"]
    opened = open_ids(wp)
    assert row["checklist"]["open"] == len(opened) > 0
    assert row["checklist"]["open_items"] == sorted(opened, key=row["checklist"][
        "open_items"].index)
    assert row["checklist"]["overdue"] >= 1 and row["ready_to_complete"] is False
    attention = json.loads(r.output)["needs_attention"]
    assert ("northwind-2026: checklist item access-1 (" in "\n".join(attention))
    assert any(line.endswith("mailflow done northwind-2026 access-1") for line in attention)
    text = wp.cli("status", now=LATE, env={"COLUMNS": "200"}).output
    assert "checklist" in text and f"{len(opened)} open, " in text
    # before anything is due nothing is overdue
    early = json.loads(wp.cli("status", "--json", now="2026-12-02T10:00").output)
    assert early["engagements"][0]["checklist"]["overdue"] == 0
    assert not any("overdue since" in line for line in early["needs_attention"])


def test_complete_is_refused_while_anything_is_open_and_forced_with_force(wp):
    r = wp.cli("engagement", "complete", "northwind-2026", now=LATE)
    assert r.exit_code == 4
    assert "not wrapped up" in r.output and "email(s) not done" in r.output
    assert "access-1" in r.output and "--force" in r.output
    assert Store(wp.project.state_dir).load().engagements["northwind-2026"]["status"] == "active"
    r = wp.cli("engagement", "complete", "northwind-2026", "--force", now=LATE)
    assert r.exit_code == 0, r.output
    state = Store(wp.project.state_dir).load()
    assert state.engagements["northwind-2026"]["status"] == "completed"
    assert all(m["state"] in ("cancelled", "sent") for m in state.messages_of("northwind-2026"))
    # completed: nothing more is offered
    attention = json.loads(wp.cli("status", "--json", now=LATE).output)["needs_attention"]
    assert not any("northwind-2026" in line for line in attention)
