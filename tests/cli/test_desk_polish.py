"""Issue 17 as a new consultant meets it: options where typed, tables that fit, one home for
engagement data, confirmations, init, check, and the small things."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mailflow.desk import tables
from mailflow.store import Store
from tests.helpers import DRAFTED, KEY, add, make_project, told_only


def drafted(proj) -> None:
    add(proj)
    r = proj.cli("run", now=DRAFTED)
    assert told_only(r), r.output + r.stderr


def state(proj):
    return Store(proj.project.state_dir).load()


# -- options where people type them ------------------------------------------------------------

def test_global_options_after_the_subcommand(proj):
    drafted(proj)
    r = proj.cli("run", "--dry-run", "-v", now=DRAFTED)
    assert r.exit_code == 0 and "nothing is due" in r.output
    before = proj.cli("plan", "--json", now="2026-12-01T09:00").output
    argv = ["plan", "--now", "2026-12-01T09:00", "--json"]
    from click.testing import CliRunner

    from mailflow.cli import cli
    after = CliRunner().invoke(cli, ["--project", str(proj.root), *argv]).output
    assert json.loads(after) == json.loads(before)
    r = CliRunner().invoke(cli, ["status", "--project", str(proj.root), "-q", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["engagements"][0]["id"] == "northwind-2026"


def test_a_bare_now_means_the_project_zone_however_the_project_is_found(tmp_path, monkeypatch):
    proj = make_project(tmp_path)  # America/New_York
    add(proj)
    from click.testing import CliRunner

    from mailflow.cli import cli
    monkeypatch.chdir(proj.root)
    by_cwd = CliRunner().invoke(cli, ["log", "--json", "-n", "1"])
    r = CliRunner().invoke(cli, ["engagement", "pause", "northwind-2026", "--now",
                                 "2026-12-30T10:30"], env={"MAILFLOW_PROJECT": ""})
    assert r.exit_code == 0, r.output
    r2 = CliRunner().invoke(cli, ["--project", str(proj.root), "--now", "2026-12-30T10:31",
                                  "engagement", "resume", "northwind-2026"])
    assert r2.exit_code == 0, r2.output
    events = json.loads(CliRunner().invoke(cli, ["log", "--json"]).output)
    assert [e["at"] for e in events if e["kind"] in ("engagement.paused", "engagement.active")
            ] == ["2026-12-30T15:30:00+00:00", "2026-12-30T15:31:00+00:00"]
    assert by_cwd.exit_code == 0


# -- tables that fit, sorted, in local time ------------------------------------------------------

@pytest.mark.parametrize("width", [80, 120])
def test_tables_fit_the_terminal_and_keep_the_id(proj, monkeypatch, width):
    drafted(proj)
    monkeypatch.setattr(tables, "terminal_width", lambda: width)
    for args in (("status",), ("drafts", "--all-states"), ("engagement", "list")):
        out = proj.cli(*args, now=DRAFTED).output
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert all(len(ln) <= width for ln in lines), (args, out)
    drafts = proj.cli("drafts", now=DRAFTED).output
    assert KEY in drafts and "Wed 2026-12-30 09:00 EST" in drafts


def test_rows_sort_by_due_time_then_ids_naturally(proj):
    for n in (10, 2, 1):
        add(proj, f"client-{n}", **{r'^id = .*': f'id = "client-{n}"'})
    assert told_only(proj.cli("run", now=DRAFTED))
    rows = json.loads(proj.cli("drafts", "--json", now=DRAFTED).output)
    assert [r["id"].split("/")[0] for r in rows] == ["client-1", "client-2", "client-10"]
    listed = json.loads(proj.cli("engagement", "list", "--json").output)
    assert [e["id"] for e in listed] == ["client-1", "client-2", "client-10"]


def test_log_and_replies_show_local_times_on_one_line(proj):
    drafted(proj)
    with Store(proj.project.state_dir).writer() as w:
        import datetime as dt
        w.record("reply.human", at=dt.datetime(2026, 12, 31, 15, tzinfo=dt.UTC),
                 engagement="northwind-2026", replies={"key": "1", "set": {
                     "engagement": "northwind-2026", "message": KEY, "kind": "human",
                     "stage": "timeline_notice", "from": "mj@northwind.example",
                     "received_at": "2026-12-31T15:00:00+00:00", "needs_action": True,
                     "handled": "2026-12-31T16:00:00+00:00",
                     "text": "Line one\nLine two\r\nBcc: sneaky"}})
        w.save()
    log = proj.cli("log").output.splitlines()
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d EST  ?engagement\.added", log[0]), log[0]
    assert len(log) == len([e for e in Store(proj.project.state_dir).events()])
    row = [ln for ln in proj.cli("replies").output.splitlines() if ln.startswith("1 ")][0]
    assert "Thu 2026-12-31 10:00 EST" in row and "Line one Line two Bcc: sneaky" in row
    (reply,) = json.loads(proj.cli("replies", "--json").output)
    assert reply["needs_action"] is False  # handled: it no longer needs you


# -- one home for engagement data -----------------------------------------------------------------

def test_set_edits_the_file_and_a_replace_reverts_nothing(proj):
    drafted(proj)
    path = proj.root / "engagements" / "example.toml"
    r = proj.cli("engagement", "set", "northwind-2026", "contract_end=2027-02-12",
                 "time_zone=America/Chicago", now=DRAFTED)
    assert r.exit_code == 0, r.output
    assert "contract_end = 2027-02-12" in path.read_text()
    assert "# the client's IANA time zone" in path.read_text()  # comments kept
    r = proj.cli("engagement", "add", "--replace", str(path), now=DRAFTED)
    assert r.exit_code == 0 and "changed: nothing" in r.output
    stored = state(proj).engagements["northwind-2026"]
    assert stored["dates"]["contract_end"] == "2027-02-12"
    assert stored["time_zone"] == "America/Chicago"
    assert proj.cli("check").exit_code == 0


def test_list_items_by_command(proj):
    drafted(proj)
    r = proj.cli("engagement", "add-item", "northwind-2026", "invoices", "number=WC-1",
                 "amount=950", "currency=USD", "due=2027-02-15", "status=outstanding")
    assert r.exit_code == 0 and "added invoices.2" in r.output, r.output
    r = proj.cli("engagement", "remove-item", "northwind-2026", "shared_access", "2")
    assert r.exit_code == 0, r.output
    stored = state(proj).engagements["northwind-2026"]
    assert stored["invoices"][2] == {"number": "WC-1", "amount": 950, "currency": "USD",
                                     "due": "2027-02-15", "status": "outstanding",
                                     "link": None}
    assert len(stored["shared_access"]) == 2
    r = proj.cli("engagement", "remove-item", "northwind-2026", "shared_access", "5")
    assert r.exit_code == 2 and "no item 5" in r.stderr


def test_check_reports_a_stored_copy_changed_outside_its_file(proj):
    drafted(proj)
    with Store(proj.project.state_dir).writer() as w:  # as an older `engagement set` did
        import datetime as dt
        w.record("engagement.changed", at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
                 engagement="northwind-2026", engagements={"key": "northwind-2026", "set": {
                     "client": "Northwind (stored)"}})
        w.save()
    r = proj.cli("check")
    assert r.exit_code == 2
    assert "stored copy differs from" in r.stderr and "client" in r.stderr


def test_a_hand_edit_is_read_by_the_next_run_and_logged(proj):
    drafted(proj)
    path = proj.root / "engagements" / "example.toml"
    path.write_text(path.read_text().replace("support_offer = true", "support_offer = false"))
    r = proj.cli("check")
    assert r.exit_code == 0 and "the next run reads it again" in r.output
    assert told_only(proj.cli("run", now=DRAFTED))
    assert state(proj).engagements["northwind-2026"]["support_offer"] is False
    assert state(proj).messages["northwind-2026/support_offer/0"]["state"] == "cancelled"
    assert "engagement.reloaded" in proj.cli("log").output


# -- irreversible only after asking ------------------------------------------------------------

def test_cancel_asks_and_archive_takes_it_out_of_status(proj):
    drafted(proj)
    r = proj.cli("engagement", "cancel", "northwind-2026", input="n\n")
    assert r.exit_code == 1 and state(proj).engagements["northwind-2026"]["status"] == "active"
    r = proj.cli("engagement", "cancel", "northwind-2026", "-y")
    assert r.exit_code == 0
    r = proj.cli("engagement", "resume", "northwind-2026")
    assert r.exit_code == 4 and "final" in r.stderr
    r = proj.cli("engagement", "archive", "northwind-2026")  # cancelled already: no question
    assert r.exit_code == 0
    assert "no engagements yet" in proj.cli("status").output
    assert "northwind-2026" in proj.cli("status", "--all-archived").output
    assert proj.cli("drafts", "--json").output.strip() == "[]"


# -- starting a project, checking it --------------------------------------------------------------

def test_init_signs_the_example_and_refuses_a_bad_zone(tmp_path):
    from click.testing import CliRunner

    from mailflow.cli import cli
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "p"), "--name", "Sam Lee", "--email",
                                 "sam@lee.example", "--time-zone", "Europe/London"])
    assert r.exit_code == 0, r.output
    example = (tmp_path / "p" / "engagements" / "example.toml").read_text()
    assert 'name = "Sam Lee"' in example and 'email = "sam@lee.example"' in example
    assert "Dana" not in example.split("[consultant]", 1)[1].split("[contacts]", 1)[0]
    for bad, said in ((["--time-zone", "Europe/Londn"], "did you mean Europe/London"),
                      (["--email", "sam at lee"], "not a valid email address"),
                      (["--name", ""], "must not be empty")):
        r = CliRunner().invoke(cli, ["init", str(tmp_path / "q"), *bad])
        assert r.exit_code == 64 and said in r.output, r.output
    assert not (tmp_path / "q").exists()


def test_check_warns_about_placeholders_and_lists_every_bad_stage(tmp_path):
    from click.testing import CliRunner

    from mailflow.cli import cli
    assert CliRunner().invoke(cli, ["init", str(tmp_path / "p")]).exit_code == 0
    root = tmp_path / "p"
    r = CliRunner().invoke(cli, ["--project", str(root), "check"])
    assert r.exit_code == 0
    assert "sender.name: still the placeholder 'Your Name'" in r.stderr
    assert "you@example.com is a placeholder address" in r.stderr
    assert "no problems, but 2 warning(s)" in r.output
    rules = root / "rules" / "offboarding.toml"
    text = rules.read_text().replace('on_reply = "feedback"', 'aproval = false', 1)
    rules.write_text(text.replace('on_reply = "needs_action"', 'on_reply = "maybe"', 1))
    r = CliRunner().invoke(cli, ["--project", str(root), "check"])
    bad = [ln for ln in r.stderr.splitlines() if "offboarding.toml: stage[" in ln]
    assert r.exit_code == 2 and len(bad) == 2, r.stderr


# -- small things -----------------------------------------------------------------------

def test_html_to_a_missing_folder_is_one_line(proj):
    drafted(proj)
    r = proj.cli("drafts", "show", KEY, "--html", "/no/such/dir/x.html")
    assert r.exit_code == 1
    assert r.stderr == "mailflow: /no/such/dir/x.html: cannot write the HTML: No such file or " \
                       "directory\n"


def test_open_writes_its_preview_inside_the_project(proj, monkeypatch):
    import webbrowser
    drafted(proj)
    monkeypatch.setattr(webbrowser, "open", lambda url: True)
    assert proj.cli("drafts", "show", KEY, "--open").exit_code == 0
    assert (proj.root / ".mailflow" / "preview").is_dir()


def test_a_broken_edit_is_kept_in_a_recovery_file(proj, tmp_path):
    drafted(proj)
    script = tmp_path / "ed.py"
    script.write_text("import sys\np = sys.argv[1]\ns = open(p).read()\n"
                      "s = s.replace('=' * 20 + ' HTML part', 'HTML part')\n"
                      "s = s.replace('Hi ', 'Dear typed ')\nopen(p, 'w').write(s)\n")
    r = proj.cli("drafts", "edit", KEY, env={"EDITOR": f"{sys.executable} {script}"})
    assert r.exit_code == 2
    kept = Path(re.search(r"kept in (\S+)", r.stderr).group(1))
    assert "Dear typed" in kept.read_text()


def test_engagement_show_json_has_its_messages(proj):
    drafted(proj)
    data = json.loads(proj.cli("engagement", "show", "northwind-2026", "--json",
                               now=DRAFTED).output)
    by_id = {m["id"]: m for m in data["messages"]}
    assert by_id[KEY]["state"] == "awaiting_approval"
    assert by_id[KEY]["when_local"] == "Wed 2026-12-30 09:00 EST"


def test_replies_add_records_a_reply_without_imap(proj, smtp_server):
    from tests.helpers import reply
    drafted(proj)
    assert proj.cli("drafts", "approve", KEY, now=DRAFTED).exit_code == 0
    assert told_only(proj.cli("run", now="2026-12-30T09:30"))
    eml = proj.root / "r.eml"
    eml.write_bytes(reply(state(proj).messages[KEY], "Works for us, thanks!"))
    r = proj.cli("replies", "add", "northwind-2026/timeline_notice", str(eml),
                 now="2026-12-31T10:00")
    assert r.exit_code == 0 and "recorded reply 1 (human)" in r.output, r.output + r.stderr
    r = proj.cli("replies", "add", "northwind-2026/timeline_notice", str(eml),
                 now="2026-12-31T10:00")
    assert r.exit_code == 4 and "already recorded as reply 1" in r.stderr


def test_no_color_means_no_bold(proj):
    drafted(proj)
    from click.testing import CliRunner

    from mailflow.cli import cli
    r = CliRunner().invoke(cli, ["--project", str(proj.root), "status"], color=True,
                           env={"NO_COLOR": "1"})
    assert "Needs you now:" in r.output and "\x1b[" not in r.output
    r = CliRunner().invoke(cli, ["--project", str(proj.root), "status"], color=True)
    assert "\x1b[1m" in r.output  # without NO_COLOR the heading is bold: the check can fail


def test_completion_offers_ids(proj):
    drafted(proj)
    exe = Path(sys.executable).with_name("mailflow")
    if not exe.exists():
        pytest.skip("mailflow is not installed beside this interpreter")

    def complete(words: str) -> list[str]:
        env = {**os.environ, "_MAILFLOW_COMPLETE": "bash_complete", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
               "MAILFLOW_PROJECT": str(proj.root)}
        r = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=30,
                           check=False)
        return r.stdout.splitlines()

    assert "plain,northwind-2026" in complete("mailflow engagement show nor")
    assert f"plain,{KEY}" in complete("mailflow drafts approve northwind-2026/time")


def test_demo_leaves_no_temporary_folder(tmp_path):
    exe = Path(sys.executable).with_name("mailflow")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mailflow"]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run([*cmd, "demo"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TMPDIR": str(scratch)}, check=False)
    assert done.returncode == 0, done.stderr
    assert "now removed" in done.stdout
    assert list(scratch.iterdir()) == []
