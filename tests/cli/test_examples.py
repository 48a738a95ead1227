"""Every example in `--help` and in the README runs (issue 17 item 1).

Each example command is run as written, in a fresh scratch project wired to the test SMTP
server, prepared to the state the example needs (a draft to approve, a message in doubt, a
reply to show). Shell around mailflow is read, not run: `cd`, `$EDITOR`, `crontab`,
`systemctl` are left out, a `| jq ...` only asks for JSON, `> /dev/null` is dropped. What the
example cannot mean literally is substituted and said here: `~` is a scratch HOME, the editor
is a no-op (an example's `EDITOR=nano` included), the browser is not opened, `sink` gets a
free port instead of 1025 (other projects' sinks may hold it), and `demo --dir` a scratch
folder. Everything else, the options' places included, is the example's own.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import webbrowser
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mailflow.cli import cli
from mailflow.cli.app import hoist_global_options
from mailflow.store import Store
from tests.helpers import imap_toml, make_project, reply, told_only
from tests.imap_server import dovecot_fixture, imap_account_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
DRAFT_AT = "2026-12-28T10:00"   # the timeline notice is drafted (due Wed 12-30 09:00 EST)
SEND_AT = "2026-12-30T09:30"    # ... and sent
AFTER = "2026-12-31T10:00"      # a reply has come


def walk(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, path + (name,))


def _joined(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if out and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1].rstrip() + " " + line.strip()
        else:
            out.append(line.strip())
    return [line for line in out if line]


def help_examples() -> list[tuple[str, str]]:
    found = []
    for path, command in walk(cli):
        text = inspect.cleandoc(command.help or "")
        block = re.split(r"Example[^\n]*:\n", text, maxsplit=1)[1].split("\n\n", 1)[0]
        found += [(f"mailflow {' '.join(path)} --help".replace("  ", " "), line)
                  for line in _joined(block.splitlines())]
    return found


def readme_examples() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        found += [("README", line) for line in _joined(block.splitlines()) if "mailflow" in line]
    return found


def commands_in(line: str) -> list[tuple[dict[str, str], list[str], bool]]:
    """The mailflow commands of a shell line: (env, args, piped into another program)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    simple: list[list[str]] = [[]]
    ops: list[str] = []
    skip = False
    for tok in tokens:
        if skip:
            skip = False
        elif tok in (">", ">>", "2>", "<"):
            skip = True  # a redirection and its file
        elif tok and set(tok) <= set("&|;()"):
            ops.append(tok)
            simple.append([])
        else:
            simple[-1].append(tok)
    out = []
    for i, words in enumerate(simple):
        env = {}
        while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        if words and words[0] == "mailflow":
            piped = i < len(ops) and ops[i] == "|"
            out.append((env, words[1:], piped))
    return out


EXAMPLES = [(where, line, env, args, piped) for where, line in help_examples()
            + readme_examples() for env, args, piped in commands_in(line)]


def command_path(args: list[str]) -> tuple[str, ...]:
    path: list[str] = []
    group: click.Command = cli
    for word in hoist_global_options(args):
        if isinstance(group, click.Group) and word in group.commands:
            path.append(word)
            group = group.commands[word]
    return tuple(path)


def test_the_examples_are_found():
    paths = {command_path(args) for _, _, _, args, _ in EXAMPLES}
    every = {p for p, c in walk(cli) if p and not isinstance(c, click.Group)}
    assert every <= paths, f"commands without a runnable example: {every - paths}"
    assert ("run",) in paths and ("status",) in paths


# -- the states an example may need ----------------------------------------------------------

def _cli(proj, *args: str, now: str) -> None:
    r = proj.cli(*args, now=now)
    # a run that drafts says once what newly needs you, with exit 1 (issue 13)
    assert r.exit_code == 0 or args[0] == "run" and told_only(r), (args, r.output)


def _drafted(proj) -> str:
    _cli(proj, "engagement", "add", str(proj.root / "engagements" / "example.toml"), now=DRAFT_AT)
    _cli(proj, "run", now=DRAFT_AT)
    return DRAFT_AT


def _replied(proj) -> str:
    _drafted(proj)
    _cli(proj, "drafts", "approve", "--all", "-y", now=DRAFT_AT)
    _cli(proj, "run", now=SEND_AT)
    msg = Store(proj.project.state_dir).load().messages["northwind-2026/timeline_notice/0"]
    (proj.root / "reply.eml").write_bytes(reply(msg, "Could we move the handover a week?"))
    return AFTER


def _recorded(proj) -> str:
    now = _replied(proj)
    _cli(proj, "replies", "add", "northwind-2026/timeline_notice", str(proj.root / "reply.eml"),
         now=AFTER)
    return now


def _flagged(proj) -> str:
    """Reply 1 is a stranger's, recorded and flagged instead of acted on (issue 12)."""
    now = _replied(proj)
    msg = Store(proj.project.state_dir).load().messages["northwind-2026/timeline_notice/0"]
    (proj.root / "stranger.eml").write_bytes(reply(msg, "unsubscribe", sender="eve@evil.example"))
    r = proj.cli("replies", "add", "northwind-2026/timeline_notice",
                 str(proj.root / "stranger.eml"), now=AFTER)
    assert "mailflow replies accept 1" in r.output, r.output  # told once, exit 1
    return now


def _in_doubt(proj) -> str:
    _drafted(proj)
    store = Store(proj.project.state_dir)
    with store.writer() as w:
        msg = w.state.messages["northwind-2026/timeline_notice/0"]
        import datetime as dt
        at = dt.datetime(2026, 12, 30, 14, 30, tzinfo=dt.UTC)
        # the one lifecycle (engine/records.py): in doubt only after approved and sending
        for state in ("approved", "sending"):
            w.update_message(msg, f"message.{state}", at=at, state=state)
        w.update_message(msg, "message.in_doubt", at=at,
                         state="in_doubt", attempts_at=["2026-12-30T14:30:00+00:00"])
        w.save()
    return SEND_AT


def _paused(proj) -> str:
    _drafted(proj)
    _cli(proj, "engagement", "pause", "northwind-2026", now=DRAFT_AT)
    return DRAFT_AT


def _done(proj) -> str:
    _drafted(proj)
    _cli(proj, "done", "northwind-2026", "access-1", now=DRAFT_AT)
    return DRAFT_AT


STATES = {("undo",): _done, ("init",): None, ("demo",): None, ("sink",): None,
          ("engagement", "add"): None,
          ("drafts", "resolve"): _in_doubt, ("replies",): _recorded,
          ("replies", "show"): _recorded, ("replies", "add"): _replied,
          ("replies", "accept"): _flagged,
          ("engagement", "resume"): _paused}


@pytest.mark.parametrize("where, line, env, args, piped", EXAMPLES,
                         ids=[f"{w}: {line}" for w, line, *_ in EXAMPLES])
def test_every_example_runs(where, line, env, args, piped, tmp_path, smtp_server, monkeypatch,
                            request):
    path = command_path(args)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("MAILFLOW_PROJECT", raising=False)
    monkeypatch.setattr(webbrowser, "open", lambda url: True)
    args = [os.path.expanduser(a) if a.startswith("~") else a for a in args]
    args = [str(tmp_path / "demo") if a == "/tmp/mailflow-demo" else a for a in args]
    if path == ("sink",):
        return run_sink(args, tmp_path)
    proj = make_project(tmp_path, smtp_server.port)
    if path in (("poll",), ("watch",)):
        account = request.getfixturevalue("imap_account")
        proj.project.config_path.write_text(proj.project.config_path.read_text()
                                            + imap_toml(account))
    if path == ("watch",):
        return run_until_stopped(args, proj.root, os.environ)
    prepare = STATES.get(path, _drafted)
    now = prepare(proj) if prepare else DRAFT_AT
    monkeypatch.chdir(proj.root)  # the project is found from the current folder, like git
    env = {**env, "EDITOR": "true", "MAILFLOW_NOW": now}
    r = CliRunner().invoke(cli, args, env=env, input="y\n", catch_exceptions=False,
                           prog_name="mailflow")
    assert r.exit_code == 0, f"{line}\n{r.output}\n{r.stderr}"
    if piped and "--json" in args:
        json.loads(r.stdout)


def run_until_stopped(args: list[str], cwd: Path, env: dict) -> None:
    """A command that runs until Ctrl-C (watch): it starts, says so, and stops with 0."""
    exe = Path(sys.executable).with_name("mailflow")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mailflow"]
    args = args if "-v" in args else [*args, "-v"]  # to know when it is up
    proc = subprocess.Popen([*cmd, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(env))
    first = proc.stdout.readline()
    assert first.strip(), "watch said nothing"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, first + out


def run_sink(args: list[str], tmp_path: Path) -> None:
    from mailflow.transport.sink import free_port
    args = [str(free_port()) if a == "1025" else a for a in args]
    if "--port" not in args:  # the default, 1025, may be another project's sink here
        args += ["--port", str(free_port())]
    exe = Path(sys.executable).with_name("mailflow")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mailflow"]
    proc = subprocess.Popen([*cmd, *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    assert first.startswith("listening on 127.0.0.1:"), first + proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
