"""The consultant's desk: the drafts table, show/--html/--open, edit in $EDITOR, approve."""

from __future__ import annotations

import json
import re
import sys
import webbrowser
from pathlib import Path

import pytest

from mailflow.store import Store
from tests.helpers import DRAFTED, KEY, add, told_only


def drafted(proj) -> None:
    add(proj)
    r = proj.cli("run", now=DRAFTED)
    assert told_only(r), r.output + r.stderr


def body(proj, msg) -> tuple[str, str]:
    """A message's (html, text), from the project's body store."""
    return Store(proj.project.state_dir).body(msg["body"])


def state(proj):
    return Store(proj.project.state_dir).load()


def editor(tmp_path, script: str) -> str:
    """An $EDITOR: a small Python script that rewrites the file it is given."""
    path = tmp_path / "editor.py"
    path.write_text("import re, sys\np = sys.argv[1]\ns = open(p, encoding='utf-8').read()\n"
                    f"{script}\nopen(p, 'w', encoding='utf-8').write(s)\n")
    return f"{sys.executable} {path}"


# -- the table ---------------------------------------------------------------------------------

def test_drafts_table_and_json(proj):
    drafted(proj)
    r = proj.cli("drafts", now=DRAFTED)
    assert r.exit_code == 0
    header, rule, row = r.output.splitlines()[:3]
    # issue 17: the table gained the subject (the rest, and its order, as before)
    assert re.split(r"\s{2,}", header) == ["id", "engagement", "stage", "subject", "to",
                                           "due (local)", "waits for"]
    subject = state(proj).messages[KEY]["subject"]
    assert re.split(r"\s{2,}", row) == [KEY, "northwind-2026", "timeline_notice", subject,
                                        "mj.alvarez@northwind.example",
                                        "Wed 2026-12-30 09:00 EST", "approval"]
    rows = json.loads(proj.cli("drafts", "--json", now=DRAFTED).output)
    assert len(rows) == 1
    assert rows[0]["id"] == KEY and rows[0]["why"] == "approval"
    assert rows[0]["due_local"] == "Wed 2026-12-30 09:00 EST"
    assert rows[0]["to"] == ["mj.alvarez@northwind.example"]
    assert rows[0]["cc"] == ["tom.becker@northwind.example"]


def test_nothing_waiting(proj):
    assert proj.cli("drafts").output.strip() == "No drafts wait for you."
    assert json.loads(proj.cli("drafts", "--json").output) == []


def test_why_it_waits_overdue_in_doubt_blocked(proj, smtp_server):
    drafted(proj)
    # approved but cron was down for a week: held for the consultant, "overdue"
    assert proj.cli("drafts", "approve", KEY, now=DRAFTED).exit_code == 0
    r = proj.cli("run", now="2027-01-07T10:00")
    assert r.exit_code == 1 and "overdue" in r.stderr
    why = {row["id"]: row["why"] for row in json.loads(proj.cli("drafts", "--json").output)}
    assert why[KEY] == "overdue"
    # approve it again; the server takes it and drops the line: in doubt
    assert proj.cli("drafts", "approve", KEY, now="2027-01-07T10:05").exit_code == 0
    smtp_server.behave(drop_after_data=True)
    r = proj.cli("run", now="2027-01-07T10:10")
    assert r.exit_code == 1 and "in doubt" in r.stderr
    why = {row["id"]: row["why"] for row in json.loads(proj.cli("drafts", "--json").output)}
    assert why[KEY] == "in doubt"
    # a template that cannot render for this engagement: blocked, with the variable named
    tpl = proj.root / "templates/emails/en/deliverables_recap/subject.txt"
    tpl.write_text("Recap for {{ clent }}\n")
    r = proj.cli("run", now="2027-01-15T10:00")
    # issue 17: a draft that cannot be rendered is 7, the README's code (was 1)
    assert r.exit_code == 7
    rows = {row["id"]: row for row in json.loads(proj.cli("drafts", "--json").output)}
    blocked = rows["northwind-2026/deliverables_recap/0"]
    assert blocked["state"] == "blocked" and "clent" in blocked["why"]
    table = proj.cli("drafts").output
    assert "in doubt" in table and "blocked" in table


# -- show ----------------------------------------------------------------------------------------

def test_show_prints_headers_and_text(proj):
    drafted(proj)
    r = proj.cli("drafts", "show", "northwind-2026/timeline_notice")
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0] == f"Id:      {KEY} (awaiting approval)"
    assert lines[1] == "From:    Dana Whitfield <dana@whitfield-consulting.example>"
    assert lines[2] == "To:      María José Álvarez <mj.alvarez@northwind.example>"
    assert "Due:     Wed 2026-12-30 09:00 EST" in lines
    assert "María José" in r.output and "<html" not in r.output


def test_show_html_writes_the_inlined_html(proj, tmp_path):
    drafted(proj)
    out = tmp_path / "preview.html"
    r = proj.cli("drafts", "show", KEY, "--html", str(out))
    assert r.exit_code == 0
    html = out.read_text(encoding="utf-8")
    assert html == body(proj, state(proj).messages[KEY])[0]
    assert 'style="' in html and "<style" not in html.split("<body", 1)[1]
    assert f"HTML written to {out}" in r.stderr


def test_show_open_opens_the_browser(proj, monkeypatch):
    drafted(proj)
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    r = proj.cli("drafts", "show", KEY, "--open")
    assert r.exit_code == 0
    assert len(opened) == 1 and opened[0].startswith("file:///")
    from urllib.parse import unquote, urlparse
    path = Path(unquote(urlparse(opened[0]).path))
    try:
        assert "Northwind" in path.read_text(encoding="utf-8")
    finally:
        path.unlink()


def test_show_with_browser_env(proj, tmp_path):
    drafted(proj)
    out = tmp_path / "p.html"
    r = proj.cli("drafts", "show", KEY, "--html", str(out), "--open", env={"BROWSER": "true"})
    assert r.exit_code == 0 and out.is_file()


def test_show_unknown_id(proj):
    r = proj.cli("drafts", "show", "nope")
    assert r.exit_code == 3
    assert r.stderr.startswith("mailflow: no draft or message 'nope'")


# -- edit ----------------------------------------------------------------------------------------

def test_edit_subject_and_text_keeps_who_and_when(proj, tmp_path):
    drafted(proj)
    before = state(proj).messages[KEY]
    ed = editor(tmp_path, "s = re.sub(r'(?m)^Subject: .*', 'Subject: Our wrap-up plan', s)\n"
                          "s = s.replace('María José', 'Majo', 1)")
    r = proj.cli("drafts", "edit", KEY, now="2026-12-28T11:00",
                 env={"EDITOR": ed, "USER": "dana"})
    assert r.exit_code == 0, r.output + r.stderr
    msg = state(proj).messages[KEY]
    assert msg["subject"] == "Our wrap-up plan"
    assert "Majo" in body(proj, msg)[1] and body(proj, msg)[1] != body(proj, before)[1]
    assert msg["edited"] == {"by": "dana", "at": "2026-12-28T16:00:00+00:00"}
    assert msg["state"] == "awaiting_approval"
    # the HTML had the name too: both parts were in the file, only the first hit changed
    shown = proj.cli("drafts", "show", KEY).output
    assert "Edited:  by dana at 2026-12-28T16:00:00+00:00" in shown
    # a later run does not draw the edited draft again from the template
    assert told_only(proj.cli("run", now="2026-12-28T12:00"))
    assert state(proj).messages[KEY]["subject"] == "Our wrap-up plan"
    # and the log has it
    kinds = [e["kind"] for e in json.loads(proj.cli("log", "--json").output)]
    assert "message.edited" in kinds


def test_edit_html_is_inlined_again(proj, tmp_path):
    drafted(proj)
    ed = editor(tmp_path, "s = s.replace('</body>', '<style>p.x{color:#123456}</style>"
                          "<p class=\"x\">Added line</p></body>')")
    r = proj.cli("drafts", "edit", KEY, "--part", "html", env={"EDITOR": ed})
    assert r.exit_code == 0, r.output + r.stderr
    msg = state(proj).messages[KEY]
    html = body(proj, msg)[0]
    assert "Added line" in html and "color:#123456" in html.replace(" ", "")
    assert "only the HTML part changed" in r.stderr


def test_edit_text_only_warns_that_html_is_unchanged(proj, tmp_path):
    drafted(proj)
    ed = editor(tmp_path, "s = s.rstrip() + '\\nPS: one more thing.\\n'")
    r = proj.cli("drafts", "edit", KEY, "--part", "text", env={"EDITOR": ed})
    assert r.exit_code == 0, r.stderr
    assert body(proj, state(proj).messages[KEY])[1].rstrip().endswith("PS: one more thing.")
    assert "only the text part changed" in r.stderr


def test_edit_without_saving_changes_nothing(proj):
    drafted(proj)
    r = proj.cli("drafts", "edit", KEY, env={"EDITOR": "true"})
    assert r.exit_code == 0 and r.output.strip() == "no change"
    assert "edited" not in state(proj).messages[KEY]


@pytest.mark.parametrize("script, error", [
    ("s = s.replace('=' * 20 + ' HTML part', 'HTML part')", "the HTML marker line was removed"),
    ("s = re.sub(r'(?m)^Subject: .*', 'Subject:', s)", "the subject must be one non-empty line"),
    ("s = re.sub(r'(?m)^Subject: ', 'Sbject: ', s)", "expected one 'Subject: ...' line"),
])
def test_a_broken_edit_saves_nothing(proj, tmp_path, script, error):
    drafted(proj)
    before = state(proj).messages[KEY]
    r = proj.cli("drafts", "edit", KEY, env={"EDITOR": editor(tmp_path, script)})
    assert r.exit_code == 2
    assert error in r.stderr
    assert state(proj).messages[KEY] == before


def test_edit_of_a_sent_message_is_refused(proj, smtp_server):
    drafted(proj)
    proj.cli("drafts", "approve", KEY, now=DRAFTED)
    assert told_only(proj.cli("run", now="2026-12-30T09:30"))
    r = proj.cli("drafts", "edit", KEY, env={"EDITOR": "true"})
    assert r.exit_code == 4 and "only unsent drafts can be edited" in r.stderr


# -- approve ---------------------------------------------------------------------------------------

def two_engagements(proj) -> None:
    add(proj)
    add(proj, "acme", **{r'^id = .*': 'id = "acme-2026"', r'^client = .*': 'client = "Acme"'})
    assert told_only(proj.cli("run", now=DRAFTED))


def awaiting(proj) -> list[str]:
    return sorted(k for k, m in state(proj).messages.items()
                  if m["state"] == "awaiting_approval")


def test_approve_engagement_asks_first_and_no_approves_nothing(proj):
    two_engagements(proj)
    assert len(awaiting(proj)) == 2
    r = proj.cli("drafts", "approve", "--engagement", "acme-2026", input="n\n", now=DRAFTED)
    assert r.exit_code == 1 and "Aborted" in r.output + r.stderr
    assert "acme-2026/timeline_notice/0" in r.output
    assert len(awaiting(proj)) == 2
    r = proj.cli("drafts", "approve", "--engagement", "acme-2026", input="y\n", now=DRAFTED,
                 env={"USER": "dana"})
    assert r.exit_code == 0, r.output
    assert awaiting(proj) == [KEY]
    msg = state(proj).messages["acme-2026/timeline_notice/0"]
    assert msg["state"] == "approved" and msg["approved_by"] == "dana"
    assert msg["approved_at"] == "2026-12-28T15:00:00+00:00"


def test_approve_all_with_yes_and_the_configured_approver(proj):
    two_engagements(proj)
    proj.set_config(r'^# approver = .*', 'approver = "Dana W."')
    r = proj.cli("drafts", "approve", "--all", "-y", now=DRAFTED, env={"USER": "someone"})
    assert r.exit_code == 0
    assert awaiting(proj) == []
    assert {m["approved_by"] for m in state(proj).messages.values()
            if m["state"] == "approved"} == {"Dana W."}
    assert "approved northwind-2026/timeline_notice/0 (goes out Wed 2026-12-30 09:00 EST)" \
        in r.output
    r = proj.cli("drafts", "approve", "--all", "-y", now=DRAFTED)
    assert r.output.strip() == "No drafts await approval."


def test_approve_needs_something_to_approve(proj):
    r = proj.cli("drafts", "approve")
    # issue 17: a usage error is 64 (EX_USAGE), no longer 2 like a bad config file
    assert r.exit_code == 64 and "--engagement ID or --all" in r.output + r.stderr
    r = proj.cli("drafts", "approve", "--engagement", "nobody")
    assert r.exit_code == 3 and "no engagement 'nobody'" in r.stderr


def test_approving_twice_is_refused_with_the_state(proj):
    drafted(proj)
    assert proj.cli("drafts", "approve", KEY, now=DRAFTED).exit_code == 0
    r = proj.cli("drafts", "approve", KEY, now=DRAFTED)
    assert r.exit_code == 4
    assert r.stderr == f"mailflow: {KEY} is approved; only drafts awaiting approval can be " \
                       "approved\n"
