"""cron/: the wrapper script (quiet success, loud failure, rotation, lock), the systemd pair."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailflow.transport.sink import free_port
from tests.helpers import make_project

# issue 17: the wrapper and units ship inside the package (mailflow/cron/)
CRON = Path(__file__).resolve().parents[2] / "mailflow" / "cron"
WRAPPER = CRON / "mailflow-cron.sh"
SHELLS = [s for s in ("sh", "dash") if shutil.which(s)]
FAKE = """#!/bin/sh
# a stand-in for mailflow: says and exits what the test asks
echo "args: $*"
[ -n "${FAKE_SAY:-}" ] && echo "$FAKE_SAY" >&2
exit "${FAKE_EXIT:-0}"
"""


@pytest.fixture
def fake_venv(tmp_path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    exe = venv / "bin" / "mailflow"
    exe.write_text(FAKE)
    exe.chmod(0o755)
    return venv


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "mailflow.toml").write_text("")
    return root


def wrapper(*args: str, shell: str = "sh", env: dict | None = None,
            path: str | None = None) -> subprocess.CompletedProcess:
    base = {"PATH": path or "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    return subprocess.run([shell, str(WRAPPER), *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=120, check=False)


def log_of(project: Path) -> str:
    return (project / ".mailflow" / "cron.log").read_text()


@pytest.mark.parametrize("shell", SHELLS)
def test_success_is_quiet_and_logged(project, fake_venv, shell):
    r = wrapper(str(project), str(fake_venv), shell=shell,
                env={"FAKE_SAY": "sent 1, drafted 0, awaiting approval 0"})
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    lines = log_of(project).splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} args: --project "
                        + re.escape(str(project)) + " -v run", lines[0])
    assert lines[1].endswith(" sent 1, drafted 0, awaiting approval 0")
    assert oct((project / ".mailflow" / "cron.log").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("shell", SHELLS)
def test_failure_is_loud_with_mailflows_status(project, fake_venv, shell):
    r = wrapper(str(project), str(fake_venv), shell=shell,
                env={"FAKE_EXIT": "6", "FAKE_SAY": "mailflow: smtp x:587: connection refused"})
    assert r.returncode == 6
    assert "mailflow: smtp x:587: connection refused" in r.stderr
    assert r.stdout == ""
    log = log_of(project)
    assert "mailflow: smtp x:587: connection refused" in log
    assert log.rstrip().endswith("exit status 6")


def test_locked_is_quiet(project, fake_venv):
    r = wrapper(str(project), str(fake_venv),
                env={"FAKE_EXIT": "75", "FAKE_SAY": "mailflow: another mailflow process"})
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert "another mailflow process" in log_of(project)


def test_project_and_venv_from_the_environment_or_path(project, fake_venv):
    r = wrapper(env={"MAILFLOW_PROJECT": str(project), "MAILFLOW_VENV": str(fake_venv)})
    assert r.returncode == 0, r.stderr
    r = wrapper(env={"MAILFLOW_PROJECT": str(project)}, path=f"{fake_venv}/bin:/usr/bin:/bin")
    assert r.returncode == 0, r.stderr
    assert log_of(project).count("args: --project") == 2


@pytest.mark.parametrize("args, env, error", [
    ((), {}, "no project: pass its folder as the first argument or set MAILFLOW_PROJECT"),
    (("/nonexistent",), {}, "/nonexistent: not a mailflow project (no mailflow.toml)"),
    (("{project}", "/nonexistent"), {}, "/nonexistent: no bin/mailflow in this virtualenv"),
    (("{project}",), {}, "mailflow is not on PATH"),
])
def test_what_is_missing_is_said(project, args, env, error):
    r = wrapper(*(a.format(project=project) for a in args), env=env)
    assert r.returncode == 2
    assert r.stderr.startswith(f"mailflow-cron: {error}")


def test_log_is_rotated_keeping_five(project, fake_venv):
    env = {"MAILFLOW_LOG_MAX_BYTES": "200", "FAKE_SAY": "x" * 150}
    for _ in range(12):
        assert wrapper(str(project), str(fake_venv), env=env).returncode == 0
    logs = sorted(p.name for p in (project / ".mailflow").iterdir())
    assert logs == ["cron.log", "cron.log.1", "cron.log.2", "cron.log.3", "cron.log.4",
                    "cron.log.5"]
    for name in logs:
        assert (project / ".mailflow" / name).stat().st_size < 600


def test_the_real_mailflow_through_the_wrapper(tmp_path):
    proj = make_project(tmp_path, free_port())
    venv = Path(sys.executable).parent.parent
    if not (venv / "bin" / "mailflow").is_file():
        pytest.skip("mailflow is not installed beside this interpreter")
    r = wrapper(str(proj.root), str(venv))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert "sent 0, drafted 0" in log_of(proj.root)
    proj.set_config(r"^per_day = 400", "per_day = -1")
    r = wrapper(str(proj.root), str(venv))
    assert r.returncode == 2
    assert r.stderr.startswith(f"mailflow: {proj.project.config_path}: schedule.per_day")


def test_crontab_example_runs_the_wrapper_every_five_minutes():
    lines = [line for line in (CRON / "crontab.example").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0].startswith("MAILTO=")
    fields = lines[1].split()
    assert fields[:5] == ["*/5", "*", "*", "*", "*"]
    assert fields[5].endswith("/cron/mailflow-cron.sh")


def test_systemd_units():
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read(CRON / "mailflow.service")
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["EnvironmentFile"] == "%h/.config/mailflow/env"
    assert "run" in service["Service"]["ExecStart"]
    assert service["Service"]["SuccessExitStatus"] == "75"
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.read(CRON / "mailflow.timer")
    assert timer["Timer"]["OnCalendar"] == "*:0/5"
    assert timer["Timer"]["Persistent"] == "false"
    assert timer["Timer"]["Unit"] == "mailflow.service"
    analyze = shutil.which("systemd-analyze")
    if analyze:
        r = subprocess.run([analyze, "calendar", "*:0/5"], capture_output=True, text=True,
                           check=False)
        assert r.returncode == 0 and "*-*-* *:00/5:00" in r.stdout


def test_the_watch_unit_runs_watch_and_stops_on_sigterm():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(CRON / "mailflow-watch.service")
    assert unit["Service"]["EnvironmentFile"] == "%h/.config/mailflow/env"
    assert unit["Service"]["ExecStart"].endswith("-v watch'")
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "default.target"
    analyze = shutil.which("systemd-analyze")
    if analyze:
        r = subprocess.run([analyze, "verify", "--user", str(CRON / "mailflow-watch.service")],
                           capture_output=True, text=True, check=False)
        assert "Unknown key" not in r.stderr and "Invalid" not in r.stderr, r.stderr


def test_wrapper_is_executable_posix_sh():
    assert os.access(WRAPPER, os.X_OK)
    assert WRAPPER.read_text().startswith("#!/bin/sh\n")
    for shell in SHELLS:
        assert subprocess.run([shell, "-n", str(WRAPPER)], check=False).returncode == 0


# -- issue 17: packaged with mailflow, used by cron-line and systemd-units ----------------------

def test_the_wrapper_and_units_are_package_data():
    from mailflow.desk.cron import cron_dir, wrapper_path
    assert wrapper_path() == CRON / "mailflow-cron.sh"
    names = {p.name for p in cron_dir().iterdir()}
    assert {"mailflow-cron.sh", "mailflow.service", "mailflow.timer", "crontab.example"} <= names
    import tomllib
    data = tomllib.loads((CRON.parents[1] / "pyproject.toml").read_text())
    listed = data["tool"]["setuptools"]["package-data"]["mailflow.cron"]
    assert sorted(listed) == sorted(["mailflow-cron.sh", "mailflow.service", "mailflow.timer",
                                     "crontab.example", "mailflow-watch.service"])


def test_systemd_units_run_the_packaged_wrapper_for_this_project(tmp_path):
    from mailflow.desk.cron import install_units, systemd_units, wrapper_path
    units = systemd_units(tmp_path / "my 100% project", "/venv/bin/mailflow")
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read_string(units["mailflow.service"])
    assert service["Service"]["ExecStart"] == (
        f'/bin/sh "{wrapper_path()}" "{tmp_path}/my 100%% project" "/venv"')
    assert service["Service"]["EnvironmentFile"] == "-%h/.config/mailflow/env"
    assert service["Service"]["SuccessExitStatus"] == "75"
    assert units["mailflow.timer"] == (CRON / "mailflow.timer").read_text()
    written = install_units(units, tmp_path / "user")
    assert sorted(p.name for p in written) == ["mailflow.service", "mailflow.timer"]


@pytest.mark.parametrize("shell", SHELLS)
def test_the_plain_cron_line_keeps_the_exit_status_and_the_log(tmp_path, fake_venv, shell):
    from mailflow.desk.cron import cron_line
    project = tmp_path / "p"
    (project / ".mailflow").mkdir(parents=True)
    line = cron_line(project, str(fake_venv / "bin" / "mailflow"), plain=True)
    command = line.split(" ", 5)[5].replace("\\%", "%")  # as cron hands it to the shell
    r = subprocess.run([shell, "-c", command], capture_output=True, text=True, check=False,
                       env={**os.environ, "FAKE_EXIT": "6", "FAKE_SAY": "smtp refused"})
    assert r.returncode == 6
    assert "smtp refused" in r.stdout
    assert "smtp refused" in (project / ".mailflow" / "cron.log").read_text()
    r = subprocess.run([shell, "-c", command], capture_output=True, text=True, check=False,
                       env={**os.environ, "FAKE_EXIT": "0"})
    assert r.returncode == 0 and r.stdout.startswith("args: --project")
