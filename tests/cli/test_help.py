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


def test_each_command_is_found_in_the_module_the_entry_point_imports_for_it():
    # `mailflow NAME` imports only COMMAND_MODULES[NAME] (start-up time, issue 18): the map
    # must name every command, and the right module
    from mailflow.cli import COMMAND_MODULES
    assert {name: command.callback.__module__ for name, command in cli.commands.items()} == \
        {name: f"mailflow.cli.{module}" for name, module in COMMAND_MODULES.items()}


def _entry(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real entry point (`python -m mailflow`), in a process of its own."""
    import sys
    return subprocess.run([sys.executable, "-m", "mailflow", *args], capture_output=True,
                          text=True, timeout=60, check=False, env={**os.environ, **(env or {})})


def test_the_entry_point_lists_loads_and_suggests_every_command_though_it_imports_one():
    listing = _entry("--help", env={"COLUMNS": "80"})
    assert listing.returncode == 0
    # (click's width at 80 columns: see MailflowContext.make_formatter)
    whole = CliRunner().invoke(cli, ["--help"], prog_name="mailflow", terminal_width=78)
    assert listing.stdout == whole.output
    typo = _entry("draft")
    assert typo.returncode == 64
    assert "No such command 'draft'" in typo.stderr and "drafts" in typo.stderr
    offered = _entry(env={"_MAILFLOW_COMPLETE": "bash_complete", "COMP_WORDS": "mailflow dra",
                          "COMP_CWORD": "1"})
    assert offered.returncode == 0 and "plain,drafts" in offered.stdout.splitlines()
    shown = _entry("drafts", "--help")
    assert shown.returncode == 0 and shown.stdout.startswith("Usage: mailflow drafts")
    code = ("import sys\nfrom mailflow.cli import main\ntry:\n    main(['drafts', '--help'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('mailflow.cli.')))")
    import sys
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert loaded.stdout.splitlines()[-1] == "['mailflow.cli.app', 'mailflow.cli.drafts']"


def test_loading_a_project_leaves_the_planner_to_the_commands_that_plan():
    # `status` from kept summaries plans nothing: its start-up must not build the planner's
    # records (issue 18); a context for an engagement still comes with it
    import sys
    code = ("import sys\nimport mailflow.config.loading as loading\n"
            "print('mailflow.engine.planner' in sys.modules)\n"
            "ctx = loading._context('Europe/Paris', 'null')\n"
            "print(type(ctx).__module__, ctx.zone.key)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       check=True)
    assert r.stdout.splitlines() == ["False", "mailflow.engine.planner Europe/Paris"]
