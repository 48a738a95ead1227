"""A newcomer's first hour, through the real entry point: the mistakes people make first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import load, told_only


def mailflow(*args: str, cwd: Path | None = None, env: dict | None = None
             ) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("mailflow")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mailflow"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, "NO_COLOR": "1", **(env or {})}, check=False)


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


def added_project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    assert mailflow("init", str(root), "--name", "Lee Park", "--email",
                    "lee@park.example").returncode == 0
    r = mailflow("--project", str(root), "engagement", "add",
                 str(root / "engagements/example.toml"))
    assert r.returncode == 0, r.stderr
    return root


def test_files_saved_with_a_byte_order_mark_are_read_and_edited_keeping_it(tmp_path):
    # Notepad saves UTF-8 with a BOM; tomllib alone calls that "Invalid statement"
    root = added_project(tmp_path)
    bom = b"\xef\xbb\xbf"
    for path in (root / "mailflow.toml", root / "engagements/example.toml"):
        path.write_bytes(bom + path.read_bytes())
    assert mailflow("--project", str(root), "check").returncode == 0
    # a file changed by hand is read again by the next run, before it may be edited
    refused = mailflow("--project", str(root), "engagement", "set", "northwind-2026",
                       "contract_end=2027-02-05")
    assert refused.returncode == 2 and "run `mailflow run` first" in refused.stderr
    assert mailflow("--project", str(root), "--now", "2026-12-01T10:00", "run").returncode == 0
    r = mailflow("--project", str(root), "engagement", "set", "northwind-2026",
                 "contract_end=2027-02-05")
    assert r.returncode == 0, r.stderr
    edited = (root / "engagements/example.toml").read_bytes()
    assert edited.startswith(bom) and b"contract_end = 2027-02-05" in edited


def test_editing_an_engagement_file_that_is_not_utf8_is_one_line(tmp_path):
    root = added_project(tmp_path)
    path = root / "engagements/example.toml"
    path.write_bytes(path.read_bytes() + b"# caf\xe9\n")
    r = mailflow("--project", str(root), "engagement", "set", "northwind-2026",
                 "contract_end=2027-02-05")
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"mailflow: {path}: not UTF-8 text (byte {len(path.read_bytes()) - 2})\n"


@pytest.mark.parametrize("editor, code, said", [
    ("printf 'caf\\351\\n' >> \"$1\"", 2, "the editor saved text that is not UTF-8"),
    ("exit 3", 1, "Editing failed"),
])
def test_an_editor_that_fails_or_saves_latin1_changes_nothing_in_one_line(proj, tmp_path, editor,
                                                                         code, said):
    proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
    assert told_only(proj.cli("run", now="2026-12-28T10:00"))
    before = load(proj).messages["northwind-2026/timeline_notice/0"]
    script = tmp_path / "editor"
    script.write_text(f"#!/bin/sh\n{editor}\n")
    script.chmod(0o755)
    r = mailflow("--project", str(proj.root), "--now", "2026-12-28T10:05", "drafts", "edit",
                 "northwind-2026/timeline_notice", env={"EDITOR": str(script)})
    assert r.returncode == code and r.stdout == "", r.stderr
    (line,) = r.stderr.splitlines()
    assert line.startswith("mailflow: drafts edit: ") and said in line
    assert line.endswith("nothing was changed") or "nothing was changed:" in line
    assert load(proj).messages["northwind-2026/timeline_notice/0"] == before


def test_init_where_no_folder_can_be_made_is_one_line_exit_5(tmp_path):
    r = mailflow("init", "/proc/mailflow-here", "--name", "Lee Park", "--email",
                 "lee@park.example")
    assert (r.returncode, r.stdout) == (5, "")
    assert r.stderr == ("mailflow: /proc/mailflow-here: cannot create the project: "
                        "No such file or directory\n")



def test_a_sink_folder_that_cannot_be_made_is_one_line(tmp_path):
    r = mailflow("sink", "--port", "0", "--dir", "/proc/mailflow-sink")
    assert (r.returncode, r.stdout) == (5, "")
    assert r.stderr == ("mailflow: /proc/mailflow-sink: cannot make the folder for the sink's "
                        "messages: No such file or directory\n")
