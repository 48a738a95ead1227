"""Every command has help with an example; --help works on each; completion and --version."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess

import click
import pytest
from click.testing import CliRunner

from mailflow import __version__
from mailflow.cli import cli


def walk(command: click.Command, path: tuple[str, ...] = ()):
    """Every (path, command) of the tree, the root first."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, path + (name,))


COMMANDS = list(walk(cli))
IDS = [" ".join(path) or "mailflow" for path, _ in COMMANDS]


def test_the_tree_has_every_command():
    names = set(IDS)
    for expected in ("init", "run", "poll", "check", "sink", "cron-line", "demo", "status",
                     "plan", "log", "drafts", "drafts show", "drafts approve", "drafts edit",
                     "drafts reject", "drafts resolve", "replies", "replies show",
                     "engagement add", "engagement list", "engagement set", "engagement pause",
                     "watch"):
        assert expected in names, expected


@pytest.mark.parametrize("path, command", COMMANDS, ids=IDS)
def test_every_command_has_help_with_an_example(path, command):
    text = inspect.cleandoc(command.help or "")
    assert text.strip(), f"{' '.join(path)}: no help text"
    assert re.search(r"\x08\nExample[^\n]*:\n", text), \
        f"{' '.join(path)}: no '\\b' + 'Example:' block"
    example = re.split(r"Example[^\n]*:\n", text, maxsplit=1)[1]
    assert f"mailflow {' '.join(path)}".strip() in example, \
        f"{' '.join(path)}: the example does not show the command itself"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{' '.join(path)} {param.opts[0]}: option without help"


@pytest.mark.parametrize("path, command", COMMANDS, ids=IDS)
def test_help_runs_for_every_command(path, command):
    r = CliRunner().invoke(cli, [*path, "--help"], prog_name="mailflow", catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"Usage: mailflow {' '.join(path)}".rstrip())
    assert re.search(r"\n *Example[^\n]*:\n", r.output)
    short = CliRunner().invoke(cli, [*path, "-h"], prog_name="mailflow")
    assert short.output == r.output


def test_version():
    r = CliRunner().invoke(cli, ["--version"])
    assert r.exit_code == 0 and r.output == f"mailflow, version {__version__}\n"


@pytest.mark.skipif(shutil.which("mailflow") is None, reason="mailflow is not installed")
@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nosort -F"),
                                           ("zsh", "#compdef mailflow"),
                                           ("fish", "complete --no-files --command mailflow")])
def test_shell_completion_script(shell, marker):
    env = {**os.environ, "_MAILFLOW_COMPLETE": f"{shell}_source"}
    r = subprocess.run(["mailflow"], env=env, capture_output=True, text=True, timeout=30,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert marker in r.stdout


@pytest.mark.skipif(shutil.which("mailflow") is None, reason="mailflow is not installed")
def test_completion_offers_subcommands():
    env = {**os.environ, "_MAILFLOW_COMPLETE": "bash_complete", "COMP_WORDS": "mailflow dra",
           "COMP_CWORD": "1"}
    r = subprocess.run(["mailflow"], env=env, capture_output=True, text=True, timeout=30,
                       check=False)
    assert r.returncode == 0
    assert "plain,drafts" in r.stdout.splitlines()


@pytest.mark.parametrize("columns", [None, "", "0", "wide", "37", "123"])
def test_help_is_as_wide_as_click_would_make_it(monkeypatch, columns):
    # `mailflow --help` sizes itself without shutil (start-up time, issue 18)
    from mailflow.cli.app import terminal_columns
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns
