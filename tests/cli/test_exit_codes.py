"""Every exit code of the README's table, through the real entry point (issue 17 item 7)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailflow.store import Store
from mailflow.transport.sink import free_port
from tests.helpers import make_project, told_only

ROOT = Path(__file__).resolve().parents[2]


def mailflow(*args: str, cwd: Path | None = None, env: dict | None = None,
             **kw: object) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("mailflow")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mailflow"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env={**os.environ, "NO_COLOR": "1", **(env or {})},
                          check=False, **kw)


def readme_codes() -> dict[int, str]:
    table = (ROOT / "README.md").read_text().split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| (.+) \|$", table,
                                                               re.M)}


@pytest.fixture
def proj(tmp_path):
    p = make_project(tmp_path, free_port())  # nobody listens on the SMTP port
    # the set-up runs in-process; only the command whose code is tested is a subprocess
    r = p.cli("engagement", "add", str(p.root / "engagements" / "example.toml"))
    assert r.exit_code == 0, r.output
    return p


def prepared(p, *args: str, now: str) -> None:
    r = p.cli(*args, now=now)
    # a run that drafts says once what newly needs you, with exit 1 (issue 13)
    assert r.exit_code == 0 or args[0] == "run" and told_only(r), r.output


def run_in(p, *args: str, **kw: object) -> subprocess.CompletedProcess:
    return mailflow("--project", str(p.root), *args, **kw)


def test_the_readme_table_lists_these_codes():
    assert set(readme_codes()) == {0, 1, 2, 3, 4, 5, 6, 7, 64, 66, 75, 130}


def test_0_all_is_well_and_quiet(proj):
    r = run_in(proj, "run", "--now", "2026-12-01T10:00")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_1_something_needs_you(proj):
    prepared(proj, "run", now="2026-12-28T10:00")
    prepared(proj, "drafts", "approve", "--all", "-y", now="2026-12-28T10:00")
    # cron was down for a week: the approved draft is held for you
    r = run_in(proj, "run", "--now", "2027-01-15T10:00")
    assert r.returncode == 1 and "overdue" in r.stderr


def test_2_a_bad_config_file(proj):
    proj.set_config(r"^per_day = 400", "per_day = -1")
    r = run_in(proj, "status")
    assert r.returncode == 2 and "schedule.per_day" in r.stderr


def test_3_unknown_ids(proj):
    for args in (("plan", "nope"), ("log", "--engagement", "nope"),
                 ("drafts", "show", "nope/x"), ("replies", "show", "9"),
                 ("replies", "--engagement", "nope")):
        r = run_in(proj, *args)
        assert r.returncode == 3, (args, r.stderr)
        assert len(r.stderr.splitlines()) == 1


def test_4_not_allowed_in_this_state(proj):
    prepared(proj, "engagement", "cancel", "northwind-2026", "-y", now="2026-12-28T10:00")
    r = run_in(proj, "engagement", "resume", "northwind-2026")
    assert r.returncode == 4 and "final" in r.stderr and "new id" in r.stderr


def test_5_unreadable_state(proj):
    (proj.root / ".mailflow" / "state.json").write_text("{not json")
    r = run_in(proj, "status")
    assert r.returncode == 5 and "damaged" in r.stderr


def test_6_smtp_refused_in_run_and_in_check(proj):
    prepared(proj, "run", now="2026-12-28T10:00")
    prepared(proj, "drafts", "approve", "--all", "-y", now="2026-12-28T10:00")
    r = run_in(proj, "run", "--now", "2026-12-30T09:30")
    assert r.returncode == 6 and "connection refused" in r.stderr
    r = run_in(proj, "check", "--connect")
    assert r.returncode == 6 and "connection refused" in r.stderr


def test_7_a_draft_that_cannot_be_rendered(proj):
    tpl = proj.root / "templates/emails/en/timeline_notice/subject.txt"
    tpl.write_text("Plan for {{ clent }}\n")
    r = run_in(proj, "run", "--now", "2026-12-28T10:00")
    assert r.returncode == 7 and "clent" in r.stderr


def test_64_a_usage_error_is_not_a_bad_config(proj):
    for args in (("run", "--bogus"), ("drafts", "approve"), ("init",),
                 ("init", str(proj.root / "x"), "--time-zone", "Europe/Londn")):
        r = run_in(proj, *args)
        assert r.returncode == 64, (args, r.stderr)
    assert "did you mean Europe/London" in r.stderr
    assert not (proj.root / "x").exists()


def test_64_a_now_that_cannot_be_read_is_one_line_and_a_usual_typing_of_it_is_read(proj):
    for now in ("yesterday", "2026-13-01", "2026-12-30T25:00", "1700000000"):
        for args, env in ((("--now", now, "status"), None), (("status",), {"MAILFLOW_NOW": now})):
            r = run_in(proj, *args, env=env)
            assert r.returncode == 64, (now, r.stderr)
            assert r.stderr == ("mailflow: --now / MAILFLOW_NOW: expected an ISO 8601 time like "
                                f"2027-01-05T09:30 or 2027-01-05T14:30Z, got {now!r}\n")
    for now in ("2026-12-30 9:30", "2026-12-30T9:30", "2026-12-30", "2026-12-30T14:30Z"):
        assert run_in(proj, "--now", now, "status").returncode == 0, now


def test_66_no_project_here(tmp_path):
    r = mailflow("status", cwd=tmp_path, env={"MAILFLOW_PROJECT": ""})
    assert r.returncode == 66 and "no mailflow.toml" in r.stderr
    r = mailflow("--project", str(tmp_path), "status")
    assert r.returncode == 66 and "not a mailflow project" in r.stderr


def test_75_another_process_holds_the_lock(proj):
    with Store(proj.project.state_dir).writer():
        r = run_in(proj, "run")
    assert r.returncode == 75


def test_130_interrupted(proj, tmp_path):
    prepared(proj, "run", now="2026-12-28T10:00")
    editor = tmp_path / "slow-editor"
    editor.write_text("#!/bin/sh\nsleep 30\n")
    editor.chmod(0o755)
    exe = Path(sys.executable).with_name("mailflow")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mailflow"]
    proc = subprocess.Popen([*cmd, "--project", str(proj.root), "drafts", "edit",
                             "northwind-2026/timeline_notice"], stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "EDITOR": str(editor)})
    # wait until the editor runs (the draft is open), then Ctrl-C mailflow
    for _ in range(300):
        if subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                          check=False).returncode == 0:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err


def test_130_when_ctrl_c_comes_while_the_commands_are_still_being_imported(proj):
    # SIGINT lands during start-up in most early Ctrl-Cs; an import hook raises it there
    hook = ("import sys\n"
            "class Interrupt:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'mailflow.cli.views':\n"
            "            raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, Interrupt())\n"
            "from mailflow.cli import entry\n"
            "entry()\n")
    r = subprocess.run([sys.executable, "-c", hook, "--project", str(proj.root), "status"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 130, r.stderr
    assert r.stderr == "mailflow: interrupted\n"


def test_130_interrupted_while_the_command_line_is_parsed(monkeypatch):
    """A Ctrl-C before the command runs is the same one line and 130, not click's 'Aborted!'."""
    from click.testing import CliRunner

    from mailflow.cli import app, cli

    def interrupted(args: list[str]) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "hoist_global_options", interrupted)
    r = CliRunner().invoke(cli, ["status"])
    assert r.exit_code == 130
    assert "mailflow: interrupted" in r.output and "Aborted" not in r.output
