"""Issue 13 under cron: the real entry point, no TTY, a consultant who never approves anything.

Each thing that needs the consultant is said once on stderr when it first needs them, and once
more when it becomes overdue; a second run at the same state says nothing and exits 0.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess

import pytest

from mailflow.store import Store
from mailflow.transport.sink import free_port
from tests.helpers import add, dates, make_project

MAILFLOW = shutil.which("mailflow")
pytestmark = pytest.mark.skipif(MAILFLOW is None, reason="mailflow is not installed on PATH")


def cron(project, now: str) -> subprocess.CompletedProcess:
    """`mailflow --project P --now NOW run` as cron runs it: no TTY, a bare environment."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    return subprocess.run([MAILFLOW, "--project", str(project.root), "--now", now, "run"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def test_a_consultant_who_never_approves_is_told_each_thing_once(tmp_path):
    proj = make_project(tmp_path, free_port())  # nothing is approved, so nothing is sent
    add(proj)
    told: list[str] = []
    for day in dates("2026-12-26", "2027-02-05"):
        now = f"{day}T10:00"
        r = cron(proj, now)
        assert r.stdout == ""
        lines = r.stderr.splitlines()
        assert r.returncode == (1 if lines else 0), r.stderr
        assert all(line.startswith("mailflow: needs you: ") for line in lines), r.stderr
        told += lines
        if lines:
            again = cron(proj, now)  # the same state: nothing new, nothing said
            assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert len(told) == len(set(told)), "something was said twice"
    said = collections.Counter(
        (re.match(r"mailflow: needs you: (\S+): ", line)[1],
         "overdue" if "past due" in line else "draft") for line in told)
    assert all(n == 1 for n in said.values()), said
    state = Store(proj.project.state_dir).load()
    waiting = [m["key"] for m in state.messages.values() if m["state"] == "awaiting_approval"]
    assert waiting
    for key in waiting:  # each draft: said when it was drafted, and when it became overdue
        assert said[(key, "draft")] == 1 and said[(key, "overdue")] == 1, key
    # the first line names the client, the stage, the recipients and when it goes out
    first = told[0]
    assert "northwind-2026/timeline_notice/0: draft to approve (Northwind" in first
    assert "Timeline notice" in first and "mj.alvarez@northwind.example" in first
    assert "goes out Wed 2026-12-30 09:00 EST" in first
    # nothing was sent unasked, and `status` still shows everything waiting
    assert not any(m.get("sent_at") for m in state.messages.values())
    r = subprocess.run([MAILFLOW, "--project", str(proj.root), "--now", "2027-02-05T10:00",
                        "status"], capture_output=True, text=True, check=False,
                       stdin=subprocess.DEVNULL)
    assert f"{len(waiting)} draft(s) to approve" in r.stdout
