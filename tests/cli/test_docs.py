"""The README's command reference lists every command and option (as sqlite-utils' test_docs)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from mailflow.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def walk(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, path + (name,))


def reference() -> tuple[str, dict[tuple[str, ...], str]]:
    """(the text before the block, {command path: its line}) of '## Command reference'."""
    section = (ROOT / "README.md").read_text().split("## Command reference\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    intro, block = section.split("```\n", 1)
    block = block.split("```", 1)[0]
    names = {" ".join(p) for p, _ in walk(cli)}
    lines: dict[tuple[str, ...], str] = {}
    for line in block.splitlines():
        words = line.split()
        assert words and words[0] == "mailflow", line
        # the longest run of words that names a command
        for n in range(len(words), 1, -1):
            if " ".join(words[1:n]) in names:
                lines[tuple(words[1:n])] = line
                break
        else:
            raise AssertionError(f"README lists an unknown command: {line}")
    return intro, lines


# a group that only holds subcommands has nothing of its own to document
COMMANDS = [(p, c) for p, c in walk(cli) if p and not (
    isinstance(c, click.Group) and not c.invoke_without_command)]


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_and_option_is_in_the_readme_reference(path, command):
    _, lines = reference()
    assert path in lines, f"`mailflow {' '.join(path)}` is missing from the README's reference"
    line = lines[path]
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert any(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", line)
                       for o in param.opts), f"{' '.join(path)}: {param.opts[0]} not in: {line}"


def test_the_global_options_are_in_the_readme_reference():
    intro, _ = reference()
    for param in cli.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert any(f"`{o}" in intro for o in param.opts), param.opts


def test_the_reference_has_no_command_twice():
    _, lines = reference()
    assert len(lines) == len(COMMANDS)
