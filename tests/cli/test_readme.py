"""The README's promises: two set-up commands, the second of which is what CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import is_to_consultant

ROOT = Path(__file__).resolve().parents[2]


def setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    head = text.split("## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", head, re.S)]


def test_readme_starts_with_exactly_two_setup_commands():
    commands = setup_commands()
    assert len(commands) == 2
    assert commands[0].endswith("mailflow demo")
    assert "pytest" in commands[1] and ".[test]" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    assert setup_commands()[1] in (ROOT / ".ci" / "run").read_text()


def test_demo_runs_the_whole_sequence_through_the_entry_point(tmp_path):
    exe = Path(sys.executable).with_name("mailflow")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mailflow"]
    done = subprocess.run([*cmd, "demo", "--dir", str(tmp_path / "demo")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    sent = sorted((tmp_path / "demo" / "sent").glob("*.eml"))
    # the digest is on by default: the client's six emails, and the digests to Dana
    to_client = [p for p in sent if not is_to_consultant(p.read_bytes())]
    assert len(to_client) == 6
    digests = done.stdout.count("  digest    to dana@")
    assert digests >= 1 and len(sent) == 6 + digests
    assert "the digest: an email to you" in done.stdout
    assert "problem" not in done.stdout
    for stage in ("timeline_notice", "deliverables_recap", "support_offer", "access_revocation",
                  "feedback_request"):
        assert f"SENT      northwind-2026/{stage}/0" in done.stdout
