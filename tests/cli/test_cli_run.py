"""What cron sees: the installed `mailflow` entry point in a subprocess; the sink; progress."""

from __future__ import annotations

import os
import pty
import shutil
import signal
import smtplib
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailflow.store import Store
from mailflow.transport.sink import free_port
from tests.helpers import DRAFTED, add, make_project, told_only

MAILFLOW = shutil.which("mailflow")
pytestmark = pytest.mark.skipif(MAILFLOW is None, reason="mailflow is not installed on PATH")


def mailflow(*args: str, project=None, stderr=subprocess.PIPE, timeout: float = 60,
             **kwargs) -> subprocess.CompletedProcess:
    """Run the installed entry point as cron would: no TTY, a bare environment."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    env.update(kwargs.pop("env", {}))
    argv = [MAILFLOW] + (["--project", str(project.root)] if project else []) + list(args)
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                          text=True, env=env, timeout=timeout, check=False, **kwargs)


def approved(proj, *names: str) -> None:
    """Engagements whose timeline notice is approved and due on 2026-12-30 09:00 EST."""
    add(proj)
    for name in names:
        add(proj, name, **{r'^id = .*': f'id = "{name}"', r'^client = .*': f'client = "{name}"'})
    assert told_only(proj.cli("run", now=DRAFTED))
    assert proj.cli("drafts", "approve", "--all", "-y", now=DRAFTED).exit_code == 0


def test_cron_with_nothing_to_do_says_nothing(tmp_path):
    proj = make_project(tmp_path, free_port())
    add(proj)
    r = mailflow("--now", "2026-11-02T10:00", "run", project=proj)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    # a draft now waiting for approval is said once (issue 13), then never again
    r = mailflow("--now", DRAFTED, "run", project=proj)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.startswith("mailflow: needs you: northwind-2026/timeline_notice/0: draft "
                               "to approve") and len(r.stderr.splitlines()) == 1
    r = mailflow("--now", DRAFTED, "run", project=proj)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_cron_verbose_prints_one_summary_line(tmp_path):
    proj = make_project(tmp_path, free_port())
    r = mailflow("-v", "--now", "2026-11-02T10:00", "run", project=proj)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.splitlines() == ["sent 0, drafted 0, awaiting approval 0, retrying 0, "
                                     "replies 0, waiting for window/limit 0"]


def test_cron_failure_is_loud_on_stderr_and_non_zero(tmp_path):
    port = free_port()  # nobody listens there
    proj = make_project(tmp_path, port)
    approved(proj)
    r = mailflow("--now", "2026-12-30T09:30", "run", project=proj)
    # issue 17: a server that cannot be reached is 6, as the README's table says (was 1)
    assert r.returncode == 6
    assert r.stdout == ""
    assert r.stderr == f"mailflow: smtp 127.0.0.1:{port}: connection refused\n"


def test_cron_bad_config_exits_2_with_the_file_and_key(tmp_path):
    proj = make_project(tmp_path, free_port())
    proj.set_config(r'^per_day = 400', 'per_day = -1')
    r = mailflow("run", project=proj)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (f"mailflow: {proj.project.config_path}: schedule.per_day: expected a "
                        "whole number >= 0, got -1\n")


def test_cron_while_another_run_holds_the_lock_exits_75(tmp_path):
    proj = make_project(tmp_path, free_port())
    with Store(proj.project.state_dir).writer():
        r = mailflow("run", project=proj)
    assert r.returncode == 75
    assert "another mailflow process" in r.stderr and "nothing was done" in r.stderr


def test_project_from_the_environment_and_the_version(tmp_path):
    proj = make_project(tmp_path, free_port())
    r = mailflow("engagement", "list", env={"MAILFLOW_PROJECT": str(proj.root)})
    assert r.returncode == 0 and "no engagements yet" in r.stdout
    r = mailflow("--version")
    assert r.returncode == 0 and r.stdout.startswith("mailflow, version ")
    r = mailflow("status", cwd=tmp_path)
    # issue 17: "no project here" has its own code, 66 (EX_NOINPUT), no longer 2
    assert r.returncode == 66 and "no mailflow.toml in" in r.stderr


def test_run_on_a_terminal_shows_a_progress_bar(tmp_path, smtp_server):
    proj = make_project(tmp_path, smtp_server.port)
    approved(proj, "acme-1", "acme-2", "acme-3", "acme-4")
    main, tty = pty.openpty()
    try:
        r = mailflow("--now", "2026-12-30T09:30", "run", project=proj, stderr=tty,
                     env={"TERM": "xterm"})
        os.close(tty)
        tty = -1
        shown = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
        if tty >= 0:
            os.close(tty)
    assert r.returncode == 0, shown
    assert len(smtp_server.client_mail) == 5
    text = shown.decode()
    assert "sending" in text and "100%" in text
    assert r.stdout == ""  # stdout is not a terminal: no summary


def test_run_on_a_terminal_without_many_messages_has_no_bar(tmp_path, smtp_server):
    proj = make_project(tmp_path, smtp_server.port)
    approved(proj)
    main, tty = pty.openpty()
    try:
        r = mailflow("--now", "2026-12-30T09:30", "run", project=proj, stderr=tty)
    finally:
        os.close(tty)
        os.close(main)
    assert r.returncode == 0 and len(smtp_server.client_mail) == 1


# -- the sink --------------------------------------------------------------------------------

def test_sink_saves_each_message_and_stops_cleanly_on_ctrl_c(tmp_path):
    port = free_port()
    folder = tmp_path / "sink"
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([MAILFLOW, "sink", "--port", str(port), "--dir", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()
        assert first.startswith(f"listening on 127.0.0.1:{port}, saving to {folder}"), first
        msg = EmailMessage()
        msg["From"] = "dana@whitfield-consulting.example"
        msg["To"] = "mj.alvarez@northwind.example"
        msg["Subject"] = "Wrap-up plan"
        msg.set_content("Hello")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(msg)
        line = proc.stdout.readline().rstrip("\n")
        saved = sorted(folder.glob("*.eml"))
        assert len(saved) == 1 and saved[0].name == "0001-mj.alvarez.eml"
        assert line == f"{saved[0]}  to mj.alvarez@northwind.example: Wrap-up plan"
        raw = saved[0].read_bytes()
        assert b"X-Envelope-From: dana@whitfield-consulting.example" in raw
        assert b"Subject: Wrap-up plan" in raw
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_sink_on_a_taken_port_says_so(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = mailflow("sink", "--port", str(port), "--dir", str(tmp_path / "s"), timeout=30)
    assert r.returncode == 6
    assert r.stderr.startswith(f"mailflow: sink 127.0.0.1:{port}: cannot listen")


def test_cron_line_for_an_installed_package(tmp_path):
    proj = make_project(tmp_path, free_port())
    r = mailflow("cron-line", project=proj)
    assert r.returncode == 0
    line = r.stdout.strip()
    assert line.startswith("*/5 * * * * ")
    assert str(proj.root) in line
    # issue 17: the wrapper ships inside the package, so a pip install has it too
    from mailflow.desk.cron import wrapper_path
    assert line.split()[5:7] == ["/bin/sh", str(wrapper_path())]
    r = mailflow("cron-line", "--every", "10", "--plain", project=proj)
    assert r.returncode == 0
    rest = r.stdout.strip().removeprefix("*/10 * * * * ")
    exe = rest.removeprefix("out=$(").split(" ", 1)[0]
    assert exe.endswith("/bin/mailflow") and Path(exe).is_file()
    # issue 17: the plain line keeps mailflow's exit status (`| tee` lost it)
    assert f"--project {proj.root} run 2>&1)" in rest
    assert f"tee -a {proj.root}/.mailflow/cron.log; exit $s" in rest
