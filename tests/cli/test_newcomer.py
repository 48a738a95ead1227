"""A newcomer's first hour, through the real entry point: the mistakes people make first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def mailflow(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("mailflow")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mailflow"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, "NO_COLOR": "1"}, check=False)


def test_demo_into_an_existing_project_refuses_and_overwrites_nothing(tmp_path):
    assert mailflow("init", str(tmp_path / "mine"), "--name", "Lee Park", "--email",
                    "lee@park.example").returncode == 0
    config = tmp_path / "mine" / "mailflow.toml"
    config.write_text(config.read_text().replace("port = 1025", "port = 2525"))
    before = {p: p.read_bytes() for p in (tmp_path / "mine").rglob("*") if p.is_file()}
    r = mailflow("demo", "--dir", str(tmp_path / "mine"))
    assert r.returncode == 64 and r.stdout == ""
    assert r.stderr == (f"mailflow: demo --dir: {tmp_path / 'mine'} is not empty; give a new "
                        "or empty folder (the demo writes a whole project into it)\n")
    after = {p: p.read_bytes() for p in (tmp_path / "mine").rglob("*") if p.is_file()}
    assert after == before  # the playbook was overwritten with --force before


def test_demo_into_an_empty_folder_runs(tmp_path):
    (tmp_path / "empty").mkdir()
    r = mailflow("demo", "--dir", str(tmp_path / "empty"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "empty" / "mailflow.toml").exists()


def test_a_negative_log_limit_is_refused_not_read_backwards(tmp_path):
    assert mailflow("init", str(tmp_path / "p"), "--name", "Lee Park", "--email",
                    "lee@park.example").returncode == 0
    r = mailflow("--project", str(tmp_path / "p"), "log", "-n", "-3")
    assert r.returncode == 64 and "-3 is not in the range x>=0" in r.stderr
