"""Timing scenarios with --now: holidays, DST, date changes, downtime, throttling, bad input."""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import dates, messages_by_step, told_only, walk

NY = ZoneInfo("America/New_York")


def add_example(proj, **replace):
    path = proj.write_engagement("eng", proj.example(**replace))
    r = proj.cli("engagement", "add", str(path))
    assert r.exit_code == 0, r.output


messages = messages_by_step


def local_sent(msg, zone=NY) -> dt.datetime:
    return dt.datetime.fromisoformat(msg["sent_at"]).astimezone(zone)


def plan_rows(proj, now):
    r = proj.cli("plan", "--json", now=now)
    assert r.exit_code == 0, r.output
    return {row["stage"] + f"/{row['step']}": row for row in json.loads(r.output)[0]["messages"]}


def test_holiday_week_moves_the_email_past_christmas_and_a_closure(proj, smtp_server):
    # 30 days before 2027-01-24 is Fri 25 Dec 2026 (Christmas)
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text().replace(
        "# [holidays]", '[holidays]\ncountry = "US"\nextra = ["2026-12-28"]\n# '))
    add_example(proj, **{r"^contract_end = .*$": "contract_end = 2027-01-24"})
    row = plan_rows(proj, "2026-12-01T10:00")["timeline_notice/0"]
    assert row["when_local"].startswith("Tue 2026-12-29 09:00")
    why = " ".join(row["reasons"])
    assert "Christmas Day" in why and "closure" in why
    walk(proj, dates("2026-12-20", "2026-12-30"))
    sent = local_sent(messages(proj)["timeline_notice/0"])
    assert sent.date() == dt.date(2026, 12, 29)


def test_business_day_offsets_skip_weekends_and_holidays(proj, smtp_server):
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text().replace("# [holidays]", '[holidays]\ncountry = "US"\n# '))
    # 7 business days before Fri 2027-01-22 skips MLK day (Mon 2027-01-18): Tue 2027-01-12
    add_example(proj, **{r"^contract_end = .*$": "contract_end = 2027-01-22"})
    row = plan_rows(proj, "2026-12-01T10:00")["deliverables_recap/0"]
    assert row["when_local"].startswith("Tue 2027-01-12")


@pytest.mark.parametrize("zone,end", [("America/New_York", "2027-04-13"),
                                      ("Europe/Berlin", "2027-04-27"),
                                      ("Australia/Adelaide", "2027-05-03")])
def test_dst_change_never_moves_a_send_outside_the_window(proj, smtp_server, zone, end):
    add_example(proj, **{r"^time_zone = .*$": f'time_zone = "{zone}"',
                         r"^contract_end = .*$": f"contract_end = {end}"})
    tz = ZoneInfo(zone)
    start = dt.date.fromisoformat(end) - dt.timedelta(days=36)
    for day in dates(start.isoformat(), (dt.date.fromisoformat(end) + dt.timedelta(days=14))
                     .isoformat()):
        for hour in range(0, 24, 3):
            now = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), tz)
            r = proj.cli("run", now=now.isoformat())
            assert told_only(r), r.output
            proj.cli("drafts", "approve", "--all", "-y", now=now.isoformat())
    sent = [m for m in messages(proj).values() if m.get("sent_at")]
    assert len(sent) >= 5
    for m in sent:
        local = local_sent(m, tz)
        assert local.weekday() < 5 and 9 <= local.hour < 17, (m["key"], local)
    assert len(smtp_server.client_mail) == len(sent)  # exactly once each


def test_moved_contract_end_replans_and_never_resends(proj, smtp_server):
    add_example(proj)
    walk(proj, dates("2026-12-26", "2027-01-16"))
    before = messages(proj)
    assert before["timeline_notice/0"]["state"] == "sent"
    assert before["deliverables_recap/0"]["state"] == "approved"
    r = proj.cli("engagement", "set", "northwind-2026", "contract_end=2027-02-26",
                 now="2027-01-16T12:00")
    assert r.exit_code == 0, r.output
    after = messages(proj)
    # the sent notice stays sent, once, even though 30 days before the new end is in the future
    assert after["timeline_notice/0"]["state"] == "sent"
    assert after["deliverables_recap/0"]["due"][:10] == "2027-02-17"
    rows = plan_rows(proj, "2027-01-16T12:00")
    assert rows["feedback_request/0"]["when_local"].startswith("Tue 2027-03-02")
    walk(proj, dates("2027-01-17", "2027-03-20"))
    subjects = [str(m.msg["Subject"]) for m in smtp_server.client_mail]
    assert len(subjects) == len(set(subjects)) == 6
    recap = local_sent(messages(proj)["deliverables_recap/0"])
    assert recap.date() == dt.date(2027, 2, 17)


def test_moved_date_keeps_an_approval_when_the_words_do_not_change(proj, smtp_server):
    add_example(proj)
    walk(proj, dates("2026-12-26", "2027-01-16"))
    assert messages(proj)["deliverables_recap/0"]["state"] == "approved"
    # start date: not in the recap's words, so the approval stands and only the date moves
    assert proj.cli("engagement", "set", "northwind-2026", "start=2025-04-01",
                    now="2027-01-16T12:00").exit_code == 0
    assert messages(proj)["deliverables_recap/0"]["state"] == "approved"
    # the contract end is in its words: it must be approved again
    assert proj.cli("engagement", "set", "northwind-2026", "contract_end=2027-02-05",
                    now="2027-01-16T12:00").exit_code == 0
    assert messages(proj)["deliverables_recap/0"]["state"] == "awaiting_approval"


def test_a_week_of_cron_downtime_holds_overdue_mail_and_keeps_spacing(proj, smtp_server):
    add_example(proj)
    walk(proj, dates("2026-12-26", "2027-01-18"))
    assert messages(proj)["deliverables_recap/0"]["state"] == "approved"  # due Wed 2027-01-20
    # cron is down from 19 to 27 January
    r = proj.cli("run", now="2027-01-28T10:30")
    assert r.exit_code == 1 and "overdue" in r.output
    assert smtp_server.client_mail and len(smtp_server.client_mail) == 1  # nothing fired blindly
    drafts = json.loads(proj.cli("drafts", "--json", now="2027-01-28T10:31").output)
    assert {d["id"]: d["why"] for d in drafts}["northwind-2026/deliverables_recap/0"] == "overdue"
    walk(proj, dates("2027-01-29", "2027-02-26"))
    sent = {k: local_sent(m) for k, m in messages(proj).items() if m.get("sent_at")}
    days = sorted(s.date() for s in sent.values())
    assert len(days) == len(set(days)), "two emails on one day after the catch-up"
    assert sent["support_offer/0"] > sent["deliverables_recap/0"]
    assert sent["access_revocation/0"] > sent["support_offer/0"]


def test_late_send_stage_goes_out_after_downtime(proj, smtp_server):
    rules = proj.root / "rules" / "offboarding.toml"
    rules.write_text(rules.read_text().replace('template = "deliverables_recap"',
                                               'template = "deliverables_recap"\nlate = "send"'))
    add_example(proj)
    walk(proj, dates("2026-12-26", "2027-01-18"))
    r = proj.cli("run", now="2027-01-28T10:30")
    assert told_only(r), r.output
    assert len(smtp_server.client_mail) == 2


def test_throttle_spreads_a_large_batch_over_later_ticks(proj, smtp_server):
    proj.set_config(r"^per_minute = 20", "per_minute = 4")
    proj.set_config(r"^per_day = 400", "per_day = 10")
    text = proj.example()
    for i in range(12):
        path = proj.write_engagement(f"e{i}", re.sub(r'^id = ".*"', f'id = "client-{i}"',
                                                     text, flags=re.M))
        assert proj.cli("engagement", "add", str(path)).exit_code == 0
    proj.cli("run", now="2026-12-28T10:00")
    proj.cli("drafts", "approve", "--all", "-y", now="2026-12-28T10:00")
    counts = []
    for minute in range(5):
        assert told_only(proj.cli("run", now=f"2026-12-30T09:0{minute}"))
        counts.append(len(smtp_server.client_mail))
    assert counts == [4, 8, 10, 10, 10]  # 4 a minute, 10 a day
    assert told_only(proj.cli("run", now="2026-12-31T09:30"))
    assert len(smtp_server.client_mail) == 12


@pytest.mark.parametrize("where,old,new,expect", [
    ("eng", r'^time_zone = .*$', 'time_zone = "Mars/Olympus"', "time_zone"),
    ("config", r'^time_zone = .*$', 'time_zone = "Nowhere/City"', "time_zone"),
    ("config", r"^# \[holidays\]", '[holidays]\ncountry = "XX"\n#', "holidays"),
    ("config", r'^end = "17:00"', 'end = "08:00"', "window"),
    ("rules", r'^due = "30 days before contract_end"', 'due = "in a while"', "stage[0].due"),
    ("rules", r'^due = "30 days before contract_end"', 'due = "30 days before kickoff"',
     "dates.kickoff"),
])
def test_bad_timing_input_is_one_clear_error_and_plans_nothing(proj, smtp_server, where, old,
                                                               new, expect):
    target = {"config": proj.project.config_path,
              "rules": proj.root / "rules" / "offboarding.toml",
              "eng": proj.root / "engagements" / "example.toml"}[where]
    text, n = re.subn(old, new, target.read_text(), flags=re.M)
    assert n
    target.write_text(text)
    r = proj.cli("engagement", "add", str(proj.root / "engagements" / "example.toml"))
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert "\n" not in line and expect in line and str(target.name) in line
    assert not (proj.root / ".mailflow" / "state.json").exists()
    assert proj.cli("run", now="2026-12-30T10:00").exit_code in (0, 2)
    assert smtp_server.client_mail == []
