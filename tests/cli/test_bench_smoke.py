"""A smoke run of the benchmark (tiny sizes) so it cannot rot. It asserts no timings."""

from __future__ import annotations

import json

import pytest

from bench.run import FIGURES, main

# the benchmark starts its own aiosmtpd sink and Dovecot (bench/servers.py), so this is the
# servers tier like any test that starts a real server: the full suite runs it, the fast loop
# does not (it was a tenth of the fast loop's time)
pytestmark = pytest.mark.servers


def test_bench_quick_runs_every_figure_and_writes_its_table(tmp_path, capsys):
    main(["--quick", "--quiet", "--out", str(tmp_path)])  # exit status: targets, not asserted
    out = capsys.readouterr().out
    assert "| figure" in out
    [path] = tmp_path.glob("bench-quick-*.json")
    result = json.loads(path.read_text())
    assert result["quick"] and result["machine"]["nproc"]
    figures = " ".join(row["figure"] for row in result["rows"])
    for words in ("idle tick", "send rate", "per-message cost", "start-up", "memory"):
        assert words in figures
    if "poll" not in result["skipped"]:
        assert "quiet poll" in figures and "busy poll" in figures
    assert set(FIGURES) >= set(result["skipped"])
