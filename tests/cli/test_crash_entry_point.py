"""The fault injector through the real entry point: MAILFLOW_CRASH_AT kills `mailflow` at a
durability point, and the command it killed changed nothing (issue 11: a killed `engagement
add` of several files left some added, and the retry failed with "already exists")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mailflow
from mailflow import faults
from tests.helpers import make_project

REPO = Path(mailflow.__file__).resolve().parent.parent


def run(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    clean["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "mailflow", "--project", str(root),
                           "--now", "2026-12-28T10:00", *args], capture_output=True, text=True,
                          env={**clean, **env}, timeout=120, check=False)


@pytest.mark.parametrize("mode", ["kill", "powercut"])
def test_a_killed_engagement_add_of_three_files_adds_none_and_can_be_run_again(tmp_path, mode):
    proj = make_project(tmp_path)
    example = proj.root / "engagements" / "example.toml"
    files = [str(proj.write_engagement(f"c{i}", proj.example(**{
        r'^id = "northwind-2026"': f'id = "c{i}"'}))) for i in range(3)]
    example.unlink()
    # the three events are appended (points 1-3), then the commit mark (4): crash there
    done = run(proj.root, "engagement", "add", *files, MAILFLOW_CRASH_AT="4",
               MAILFLOW_CRASH_MODE=mode)
    assert done.returncode == faults.CRASH_EXIT, done.stderr
    listed = run(proj.root, "engagement", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert '"c0"' not in listed.stdout
    again = run(proj.root, "engagement", "add", *files)
    assert again.returncode == 0, again.stderr
    assert all(f'"c{i}"' in run(proj.root, "engagement", "list", "--json").stdout
               for i in range(3))
