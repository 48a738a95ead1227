"""`mailflow watch` refuses at once, in one line, what it cannot work with."""

from __future__ import annotations

from tests.helpers import make_project


def test_watch_without_imap_is_a_config_error_in_one_line(tmp_path):
    proj = make_project(tmp_path)
    r = proj.cli("watch")
    assert r.exit_code == 2
    assert r.output.strip().endswith("[imap] is not configured; watch needs it")
    assert r.output.count("\n") == 1 and "Traceback" not in r.output


def test_watch_options_are_checked_before_anything_runs(tmp_path):
    proj = make_project(tmp_path)
    r = proj.cli("watch", "--renew-minutes", "30")
    # issue 17: a bad option value is a usage error, 64, apart from a bad config file's 2
    assert r.exit_code == 64 and "--renew-minutes" in r.output
