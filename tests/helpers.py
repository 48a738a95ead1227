"""Shared test helpers: a project wired to a test SMTP server, and a CLI runner."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result

from mailflow.cli import cli
from mailflow.project import Project, init_project

SENDER = ("Dana Whitfield", "dana@whitfield-consulting.example")


@dataclass
class ProjectUnderTest:
    """A project folder plus a way to run the CLI in it."""

    project: Project

    @property
    def root(self) -> Path:
        """The project folder."""
        return self.project.root

    def cli(self, *args: str, now: str | None = None, input: str | None = None,
            env: dict | None = None) -> Result:
        """Run `mailflow --project ROOT [--now NOW] ARGS` in-process."""
        argv = ["--project", str(self.root)] + (["--now", now] if now else []) + list(args)
        return CliRunner().invoke(cli, argv, input=input, env=env or {}, catch_exceptions=False)

    def set_config(self, pattern: str, replacement: str) -> None:
        """Regex-replace in mailflow.toml."""
        path = self.project.config_path
        text, n = re.subn(pattern, replacement, path.read_text(), flags=re.M)
        assert n, f"{pattern!r} not found in mailflow.toml"
        path.write_text(text)

    def write_engagement(self, name: str, text: str) -> Path:
        """Write an engagement file and return its path."""
        path = self.root / "engagements" / f"{name}.toml"
        path.write_text(text)
        return path

    def example(self, **replace: str) -> str:
        """The example engagement's text with some lines replaced (key -> new line)."""
        text = (self.root / "engagements" / "example.toml").read_text()
        for old, new in replace.items():
            text, n = re.subn(old, new, text, flags=re.M)
            assert n, old
        return text


def make_project(tmp_path: Path, smtp_port: int | None = None) -> ProjectUnderTest:
    """A fresh project from the default playbook, sending to 127.0.0.1:smtp_port."""
    project = init_project(tmp_path / "proj", sender_name=SENDER[0], sender_email=SENDER[1],
                           time_zone="America/New_York")
    tp = ProjectUnderTest(project)
    if smtp_port:
        tp.set_config(r"^port = 1025", f"port = {smtp_port}")
    return tp


def imap_toml(account, **secret: str) -> str:  # noqa: ANN001 - tests.imap_server.Account
    """An [imap] section for a test Dovecot account; the secret by password_env by default."""
    secret = secret or {"password_env": account.password_env}
    (key, value), = secret.items()
    return f"""
[imap]
host = "127.0.0.1"
port = {account.server.port}
security = "none"
username = "{account.user}"
{key} = "{value}"
folders = ["INBOX"]
sent_folder = "Sent"
timeout = 10
"""
