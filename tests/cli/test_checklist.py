"""`mailflow checklist`, `done`, `undo` and `doc`: the wrap-up besides the emails."""

from __future__ import annotations

import datetime as dt
import json
import os
from zoneinfo import ZoneInfo

import pytest

from mailflow.render.locale import shortdate
from mailflow.store import Store
from tests.helpers import make_project

NOW = "2027-01-25T10:00"


@pytest.fixture
def wp(tmp_path):
    """A project with the example engagement added (no SMTP server needed)."""
    proj = make_project(tmp_path)
    r = proj.cli("engagement", "add", str(proj.root / "engagements" / "example.toml"), now=NOW)
    assert r.exit_code == 0, r.output
    return proj


def items(proj, eid="northwind-2026"):
    r = proj.cli("checklist", eid, "--json", now=NOW)
    assert r.exit_code == 0, r.output
    (entry,) = json.loads(r.output)
    return {i["id"]: i for i in entry["items"]}


def events(proj):
    journal = proj.root / ".mailflow" / "events.jsonl"
    return [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]


def test_the_checklist_lists_open_items_first_with_owner_and_due_date(wp):
    r = wp.cli("checklist", "northwind-2026", now=NOW)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("northwind-2026 (Northwind Traders): 11 open, 1 overdue")
    assert "[ ] invoice-wc-2026-118" in lines[1] and "OVERDUE" in lines[1]
    assert lines[-1].startswith("  [x] invoice-wc-2026-104")  # paid in the file: done, last
    got = items(wp)
    assert got["access-1"]["owner"] == "Tom Becker (Northwind IT)"
    assert got["access-1"]["due"] == "2027-01-29"
    assert got["invoice-wc-2026-118"]["overdue"] is True


def test_done_is_journaled_with_who_when_and_note_and_survives_a_replay(wp):
    r = wp.cli("done", "northwind-2026", "access-1", "--note", "Tom confirmed by phone",
               "--on", "2027-01-24", now=NOW, env={"USER": "dana"})
    assert r.exit_code == 0, r.output
    assert "removed on 2027-01-24 by dana" in r.output
    (event,) = [e for e in events(wp) if e["kind"] == "checklist.done"]
    assert event["item"] == "access-1" and event["by"] == "dana"
    mark = event["engagements"]["set"]["checklist_marks"]["access-1"]
    assert mark["note"] == "Tom confirmed by phone" and mark["on"] == "2027-01-24"
    # the journal alone rebuilds the mark (the checkpoint is only a cache)
    (wp.root / ".mailflow" / "state.json").unlink()
    state = Store(wp.project.state_dir).load()
    assert state.engagements["northwind-2026"]["checklist_marks"]["access-1"]["done"] is True
    assert items(wp)["access-1"]["done_by"] == "dana"


def test_done_twice_is_exit_4_naming_when_and_by_whom_and_undo_reopens(wp):
    assert wp.cli("done", "northwind-2026", "meeting", "--outcome", "held", now=NOW,
                  env={"USER": "dana"}).exit_code == 0
    r = wp.cli("done", "northwind-2026", "meeting", now=NOW)
    assert r.exit_code == 4
    assert "already done on 2027-01-25 by dana" in r.output
    r = wp.cli("undo", "northwind-2026", "meeting", now=NOW)
    assert r.exit_code == 0 and "open again" in r.output
    assert items(wp)["meeting"]["done"] is False
    assert wp.cli("undo", "northwind-2026", "meeting", now=NOW).exit_code == 4


def test_unknown_items_and_engagements_are_exit_3_with_the_known_ids(wp):
    r = wp.cli("done", "northwind-2026", "nope", now=NOW)
    assert r.exit_code == 3
    assert "known: access-1, access-2" in r.output and "feedback" in r.output
    r = wp.cli("done", "nobody", "meeting", now=NOW)
    assert r.exit_code == 3 and "northwind-2026" in r.output
    r = wp.cli("done", "northwind-2026", "support", "--outcome", "maybe", now=NOW)
    assert r.exit_code == 2 and "accepted, declined" in r.output


def test_a_unique_prefix_names_an_item_and_the_outcome_is_kept(wp):
    r = wp.cli("done", "northwind-2026", "supp", "--outcome", "declined", now=NOW)
    assert r.exit_code == 0, r.output
    assert items(wp)["support"]["outcome"] == "declined"


def test_custom_items_come_from_the_engagement_file(wp):
    text = wp.example() + '\n[[checklist]]\nname = "Laptop returned"\nowner = "Sam Lee"\n' \
        'due = 2027-01-29\n'
    path = wp.write_engagement("example", text)
    assert wp.cli("engagement", "add", "--replace", str(path), now=NOW).exit_code == 0
    assert items(wp)["laptop-returned"]["owner"] == "Sam Lee"
    bad = wp.write_engagement("bad", wp.example(**{r'^id = "northwind-2026"': 'id = "b"'})
                              + '\n[[checklist]]\nid = "meeting"\nname = "Again"\n')
    r = wp.cli("engagement", "add", str(bad), now=NOW)
    assert r.exit_code == 2 and "checklist[1].id" in r.output  # [0] is the laptop


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_the_offboarding_document_gives_the_whole_plan(wp, fmt):
    r = wp.cli("doc", "northwind-2026", "--format", fmt, now="2027-01-05T10:00")
    assert r.exit_code == 0, r.output
    doc = r.output
    # dates and money in the engagement's locale (en_US by default), as in the emails
    for fact in ("Dana Whitfield", "dana@whitfield-consulting.example", "Jan 29, 2027",
                 "Timeline notice (email)", "Feedback request (email)", "Handover",
                 "Northwind AWS production account", "Tom Becker (Northwind IT)",
                 "WC-2026-118", "14,250.00", "https://cal.example/dana/offboarding-30min",
                 "https://drive.example/northwind/client-deliverables"):
        assert fact in doc, fact
    assert "WC-2026-104" not in doc  # paid: not an open invoice


def test_the_document_and_the_plan_give_the_same_dates(wp):
    now = "2027-01-05T10:00"
    (plan,) = json.loads(wp.cli("plan", "northwind-2026", "--json", now=now).output)
    doc = wp.cli("doc", "northwind-2026", "--format", "md", now=now).output
    zone = ZoneInfo("America/New_York")
    checked = 0
    for row in plan["messages"]:
        if row["step"] == 0 and row["when"]:
            local = dt.datetime.fromisoformat(row["when"]).astimezone(zone)
            stage = row["stage"].replace("_", " ").capitalize()
            line = f"| {shortdate(local.date())} | "  # en_US, as in the emails
            assert any(line in text and stage.split()[0] in text for text in doc.splitlines()
                       ), (row, stage)
            checked += 1
    assert checked == 5


def test_the_deliverables_review_groups_delivered_and_still_to_come(wp):
    wp.cli("done", "northwind-2026", "deliverable-1", "--on", "2027-01-20", now=NOW)
    r = wp.cli("doc", "northwind-2026", "--kind", "deliverables", "--format", "md", now=NOW)
    assert r.exit_code == 0, r.output
    delivered, to_come = r.output.split("## Still to come")
    assert "Data platform architecture and runbook" in delivered
    assert "Yes, Jan 20, 2027" in delivered
    assert "Handover workshop recording and slides" in to_come


MINIMAL = """
id = "northwind-2026"
client = "Bücher & Söhne 北京"
time_zone = "Europe/Berlin"
[dates]
contract_end = 2027-02-26
[consultant]
name = "Zoë Åkesson"
email = "zoe@akesson.example"
[contacts]
to = [{ name = "Jürgen Groß", email = "j.gross@buecher.example" }]
"""


def test_edge_engagement_with_none_of_anything_and_non_ascii_names(wp):
    path = wp.write_engagement("example", MINIMAL)
    r = wp.cli("engagement", "add", "--replace", str(path), now=NOW)
    assert r.exit_code == 0, r.output
    for fmt in ("html", "md"):
        r = wp.cli("doc", "northwind-2026", "--format", fmt, now=NOW)
        assert r.exit_code == 0, r.output
        assert "no separate deliverables" in r.output and "Every invoice is settled" in r.output
        assert "No shared access needs removing" in r.output
        assert "Zoë Åkesson" in r.output
        assert ("Bücher &amp; Söhne 北京" if fmt == "html" else "Bücher & Söhne 北京") in r.output


def test_ten_of_everything(wp):
    extra = "".join(f"""
[[deliverables]]
name = "Deliverable {n} with a rather long name to wrap across the table column ✓"
status = "{'delivered' if n % 2 else 'scheduled'}"
date = 2027-01-{n + 10:02d}
[[shared_access]]
system = "System {n}"
owner = "Owner {n}"
revoke_date = 2027-01-{n + 10:02d}
[[invoices]]
number = "INV-{n}"
amount = {n}000.5
currency = "EUR"
due = 2027-02-{n + 10:02d}
status = "outstanding"
""" for n in range(1, 11))
    path = wp.write_engagement("example", MINIMAL + extra)
    assert wp.cli("engagement", "add", "--replace", str(path), now=NOW).exit_code == 0
    r = wp.cli("doc", "northwind-2026", "--format", "md", now=NOW)
    assert r.exit_code == 0, r.output
    for n in range(1, 11):
        assert f"System {n} |" in r.output and f"INV-{n} |" in r.output
    r = wp.cli("checklist", "northwind-2026", "--json", now=NOW)
    (entry,) = json.loads(r.output)
    assert sum(1 for i in entry["items"] if i["kind"] == "access") == 10


def test_a_template_error_names_file_and_line_exit_7_and_writes_nothing(wp, tmp_path):
    docs = wp.root / "templates" / "docs" / "offboarding.html"
    docs.write_text(docs.read_text().replace("<h2>Timeline</h2>",
                                             "<h2>Timeline</h2>\n{{ no_such_thing.x }}"))
    out = tmp_path / "out.html"
    r = wp.cli("doc", "northwind-2026", "--out", str(out), now=NOW)
    assert r.exit_code == 7
    assert "offboarding.html" in r.output and "line" in r.output
    assert not out.exists() and not list(tmp_path.glob(".out.html.*"))


def test_pdf_is_written_through_weasyprint(wp, tmp_path):
    pytest.importorskip("weasyprint", reason="WeasyPrint is the optional mailflow[pdf] extra") \
        if not os.environ.get("CI") else None
    out = tmp_path / "plan.pdf"
    r = wp.cli("doc", "northwind-2026", "--out", str(out), now=NOW)
    assert r.exit_code == 0, r.output
    assert out.read_bytes().startswith(b"%PDF")
    # issue 17: a usage error (no --out for a PDF) is 64, apart from a bad config file's 2
    assert wp.cli("doc", "northwind-2026", "--format", "pdf", now=NOW).exit_code == 64
