"""Issue 13: plan, status, drafts and the approval say one date for one message at one `now`."""

from __future__ import annotations

import json

from tests.helpers import DRAFTED, KEY, add, told_only


def test_one_send_time_everywhere_for_an_overdue_draft(proj):
    add(proj)
    assert told_only(proj.cli("run", now=DRAFTED))
    now = "2027-01-02T18:00"  # a Saturday evening; the notice was due Wed 30 Dec
    drafts = {d["id"]: d for d in json.loads(proj.cli("drafts", "--json", now=now).output)}
    plan = json.loads(proj.cli("plan", "--json", now=now).output)[0]["messages"]
    plan_when = next(r["when"] for r in plan if r["id"] == KEY)
    status = json.loads(proj.cli("status", "--json", now=now).output)
    status_when = status["engagements"][0]["stages"]["timeline_notice"]["goes_out"]
    assert drafts[KEY]["goes_out"] == plan_when == status_when
    assert drafts[KEY]["due_local"] == "Mon 2027-01-04 09:00 EST"  # not the past due date
    r = proj.cli("drafts", "approve", KEY, now=now)
    assert r.exit_code == 0, r.output
    assert "goes out Mon 2027-01-04 09:00 EST" in r.output


def test_a_bad_digest_setting_is_one_line_naming_the_file_and_key(proj):
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text() + '\n[digest]\nevery = "sometimes"\n')
    r = proj.cli("run", now=DRAFTED)
    assert r.exit_code == 2
    (line,) = r.stderr.splitlines()
    assert line.startswith(f"mailflow: {cfg}: digest.every: expected daily")
