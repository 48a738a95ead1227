"""The real entry point ends the process without freeing its state (issue 18), yet keeps every
exit code, every line of output, and a profiler's report."""

from __future__ import annotations

import subprocess
import sys

from mailflow import __version__


def _mailflow(*args: str, cwd) -> subprocess.CompletedProcess:  # noqa: ANN001
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          check=False, cwd=cwd)


def test_the_entry_point_keeps_output_and_exit_codes(tmp_path):
    r = _mailflow("-m", "mailflow", "--version", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, f"mailflow, version {__version__}\n")
    r = _mailflow("-m", "mailflow", "no-such-command", cwd=tmp_path)
    assert r.returncode == 64 and "No such command" in r.stderr  # (EX_USAGE)
    r = _mailflow("-m", "mailflow", "--project", str(tmp_path / "none"), "status", cwd=tmp_path)
    assert r.returncode == 66 and r.stderr.startswith("mailflow: ")


def test_a_profiler_still_gets_its_report_written(tmp_path):
    out = tmp_path / "status.prof"
    r = _mailflow("-m", "cProfile", "-o", str(out), "-m", "mailflow", "--version", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0
