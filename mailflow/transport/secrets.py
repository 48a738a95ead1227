"""Passwords and OAuth2 tokens, from an environment variable or a command, never from a file."""

from __future__ import annotations

import os
import shlex
import subprocess

from mailflow.config.settings import Credentials
from mailflow.errors import SecretError


def _run(command: str, what: str) -> str:
    # The command's output is the secret: never echo it, and keep stderr out of our messages
    # beyond its first line, which is the command's own explanation.
    try:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, ValueError, subprocess.TimeoutExpired) as err:
        raise SecretError(f"{what}: could not run {command.split()[0]!r}: {err}") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0][:200]
        name = command.split()[0]
        raise SecretError(f"{what}: command {name!r} exited {done.returncode}: {first}")
    value = done.stdout.strip()
    if not value:
        raise SecretError(f"{what}: command {command.split()[0]!r} printed nothing")
    return value


def password(creds: Credentials, what: str) -> str | None:
    """The password for a server, or None when it needs none (or uses OAuth2)."""
    if creds.password_env:
        value = os.environ.get(creds.password_env)
        if not value:
            raise SecretError(f"{what}: environment variable {creds.password_env} is not set")
        return value
    if creds.password_command:
        return _run(creds.password_command, f"{what} password_command")
    return None


def oauth2_token(creds: Credentials, what: str) -> str | None:
    """An OAuth2 access token for XOAUTH2, or None when not configured."""
    if creds.oauth2_token_command:
        return _run(creds.oauth2_token_command, f"{what} oauth2_token_command")
    return None
