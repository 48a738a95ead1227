"""At a glance: the status grid, what needs you now, plan, log, replies, and their --json."""

from __future__ import annotations

import datetime as dt
import json

from mailflow.desk import views
from mailflow.store import Store
from tests.helpers import DRAFTED, KEY, add, told_only

SENT_AT = "2026-12-30T09:30"


def record_reply(proj, rid: str, key: str, kind: str, needs_action: bool = False) -> None:
    store = Store(proj.project.state_dir)
    with store.writer() as w:
        msg = w.state.messages[key]
        w.record(f"reply.{kind}", at=dt.datetime(2026, 12, 31, 15, tzinfo=dt.UTC),
                 engagement=msg["engagement"], replies={"key": rid, "set": {
                     "from": "mj.alvarez@northwind.example", "engagement": msg["engagement"],
                     "message": key, "stage": msg["stage"], "kind": kind, "how": "in-reply-to",
                     "received_at": "2026-12-31T15:00:00+00:00", "needs_action": needs_action,
                     "text": "Thanks Dana, the dates work for us.", "subject": "Re: plan"}})
        w.save()


def desk(proj, smtp_server) -> None:
    """Three engagements: one sent and replied to, one awaiting approval, one failed."""
    add(proj)
    add(proj, "acme", **{r'^id = .*': 'id = "acme-2026"', r'^client = .*': 'client = "Acme"',
                         r'^support_offer = true': 'support_offer = false'})
    add(proj, "gamma", **{r'^id = .*': 'id = "gamma-2026"', r'^client = .*': 'client = "Gamma"',
                          r'^contract_end = .*': 'contract_end = 2027-01-28'})
    assert told_only(proj.cli("run", now=DRAFTED))
    assert proj.cli("drafts", "approve", KEY, now=DRAFTED).exit_code == 0
    assert told_only(proj.cli("run", now=SENT_AT))
    assert len(smtp_server.client_mail) == 1
    record_reply(proj, "1", KEY, "human", needs_action=True)
    assert proj.cli("drafts", "approve", "gamma-2026/timeline_notice", now=SENT_AT
                    ).exit_code == 0
    smtp_server.behave(data_reply="550 5.7.1 not today")
    assert proj.cli("run", now="2026-12-30T10:00").exit_code == 1


def grid(output: str) -> dict[str, dict[str, str]]:
    """The status table as {engagement: {column: cell}}, using the header's column starts."""
    lines = output.splitlines()
    header, rule = lines[0], lines[1]
    starts = [i for i, c in enumerate(rule) if c == "-" and (i == 0 or rule[i - 1] == " ")]
    names = [header[a:b].strip() for a, b in zip(starts, starts[1:] + [None], strict=True)]
    out = {}
    for line in lines[2:]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None], strict=True)]
        out[cells[0]] = dict(zip(names, cells, strict=True))
    return out


def test_status_grid_marks_each_state(proj, smtp_server):
    desk(proj, smtp_server)
    r = proj.cli("status", now="2026-12-30T10:05")
    assert r.exit_code == 0
    g = grid(r.output)
    assert g["northwind-2026"]["timeline_notice"] == "sent 12-30 replied"
    assert g["northwind-2026"]["deliverables_recap"] == "due 01-20"
    assert g["acme-2026"]["timeline_notice"] == "to approve 12-30"
    assert g["acme-2026"]["support_offer"] == "skipped"
    assert g["gamma-2026"]["timeline_notice"] == "FAILED"
    assert g["gamma-2026"]["status"] == "active"
    tail = r.output.split("Needs you now:", 1)[1]
    assert "1 draft(s) to approve: mailflow drafts" in tail
    assert "gamma-2026/timeline_notice/0: failed: 550 5.7.1 not today" in tail
    assert "reply 1 from mj.alvarez@northwind.example (timeline_notice): mailflow replies " \
           "show 1" in tail


def test_status_json(proj, smtp_server):
    desk(proj, smtp_server)
    data = json.loads(proj.cli("status", "--json", now="2026-12-30T10:05").output)
    by_id = {e["id"]: e for e in data["engagements"]}
    assert set(by_id) == {"northwind-2026", "acme-2026", "gamma-2026"}
    tn = by_id["northwind-2026"]["stages"]["timeline_notice"]
    assert tn["state"] == "sent" and tn["replies"] == ["human"]
    assert tn["sent_at"].startswith("2026-12-30T14:30")
    assert by_id["acme-2026"]["stages"]["support_offer"]["state"] == "skipped"
    assert by_id["gamma-2026"]["stages"]["timeline_notice"]["state"] == "failed"
    assert len(data["needs_attention"]) == 3


def test_status_with_nothing(proj):
    assert "no engagements yet" in proj.cli("status").output
    assert json.loads(proj.cli("status", "--json").output) == {"engagements": [],
                                                              "needs_attention": []}


def test_stage_marks_for_auto_replies_and_bounces():
    sent = {"key": "e/s/0", "step": 0, "state": "sent", "sent_at": "2026-12-30T14:30:00+00:00"}
    zone = "America/New_York"
    assert views.stage_mark([sent], None, [{"kind": "auto_reply"}], zone) == \
        "sent 12-30 auto-reply"
    assert views.stage_mark([{**sent, "state": "bounced"}], None, [{"kind": "bounce"}], zone) == \
        "BOUNCED"
    assert views.stage_mark([sent], None, [{"kind": "bounce"}], zone) == "sent 12-30 bounced"
    reminder = {"key": "e/s/1", "step": 1, "state": "sent"}
    assert views.stage_mark([sent, reminder], None, [], zone) == "sent 12-30 +1"
    assert views.stage_mark([], None, [], zone) == ""


def test_engagement_list_json(proj):
    add(proj)
    rows = json.loads(proj.cli("engagement", "list", "--json").output)
    assert rows == [{"id": "northwind-2026", "client": "Northwind Traders", "status": "active",
                     "contract_end": "2027-01-29", "time_zone": "America/New_York",
                     "sequence": "offboarding", "flagged": None, "feedback": None}]
    assert json.loads(proj.cli("engagement", "show", "northwind-2026", "--json").output
                      )["client"] == "Northwind Traders"


def test_plan_json(proj):
    add(proj)
    plans = json.loads(proj.cli("plan", "--json", now=DRAFTED).output)
    assert [p["engagement"] for p in plans] == ["northwind-2026"]
    rows = {r["id"]: r for r in plans[0]["messages"]}
    tn = rows[KEY]
    assert tn["when_local"] == "Wed 2026-12-30 09:00 EST" and tn["status"] == "scheduled"
    assert any("30 days before contract_end" in reason for reason in tn["reasons"])
    assert rows["northwind-2026/feedback_request/0"]["when_local"].startswith("Tue 2027-02-02")
    single = json.loads(proj.cli("plan", "northwind-2026", "--json", now=DRAFTED).output)
    assert single == plans


def test_log_json_and_engagement_filter(proj, smtp_server):
    desk(proj, smtp_server)
    events = json.loads(proj.cli("log", "--json").output)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    kinds = [e["kind"] for e in events]
    assert kinds[:3] == ["engagement.added"] * 3
    assert "message.sent" in kinds and "message.failed" in kinds
    gamma = json.loads(proj.cli("log", "--engagement", "gamma-2026", "--json").output)
    assert gamma and {e["engagement"] for e in gamma} == {"gamma-2026"}
    last = json.loads(proj.cli("log", "-n", "2", "--json").output)
    assert last == events[-2:]
    text = proj.cli("log", "--engagement", "gamma-2026").output.splitlines()
    # line for line as the JSON (after the failure, the tick planned again what its sends
    # changed, then kept the status summary of what changed: issue 18's fresh plans and rows)
    failed = max(i for i, e in enumerate(gamma) if e["kind"] == "message.failed")
    assert len(text) == len(gamma) and "message.failed" in text[failed]
    assert gamma[-2]["kind"] == "engagement.planned" and "engagement.planned" in text[-2]
    assert gamma[-1]["kind"] == "engagement.summarized" and "engagement.summarized" in text[-1]


def test_replies_json_and_filters(proj, smtp_server):
    desk(proj, smtp_server)
    record_reply(proj, "2", KEY, "auto_reply")
    rows = json.loads(proj.cli("replies", "--json").output)
    assert [r["id"] for r in rows] == ["1"]  # auto-replies only with --all-kinds
    assert rows[0]["kind"] == "human" and rows[0]["needs_action"] is True
    every = json.loads(proj.cli("replies", "--all-kinds", "--json").output)
    assert {r["id"] for r in every} == {"1", "2"}
    assert [r["id"] for r in json.loads(proj.cli("replies", "--needs-action", "--json").output)
            ] == ["1"]
    assert proj.cli("replies", "show", "1", "--done").exit_code == 0
    assert json.loads(proj.cli("replies", "--needs-action", "--json").output) == []
