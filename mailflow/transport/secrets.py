"""Passwords and OAuth2 tokens, from an environment variable or a command, never from a file."""

from __future__ import annotations

import os
import shlex
import subprocess

from mailflow.config.settings import Credentials
from mailflow.errors import SecretError


def _run(command: str, what: str) -> str:
    # The command's output is the secret, and a failing command may print it (or part of it,
    # or the vault's passphrase prompt) on either stream: none of it is ever repeated, only
    # that it failed and how, so nothing reaches stderr, cron mail or cron.log.
    name = (command.split() or ["?"])[0]
    try:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60,
                              check=False)
    except subprocess.TimeoutExpired:
        raise SecretError(f"{what}: command {name!r} did not finish in 60 s") from None
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else \
            type(err).__name__
        raise SecretError(f"{what}: could not run {name!r}: {reason}") from None
    if done.returncode != 0:
        status = (f"killed by signal {-done.returncode}" if done.returncode < 0
                  else f"exited {done.returncode}")
        raise SecretError(f"{what}: command {name!r} failed ({status}); its output is not "
                          "shown, as it may hold the secret: run it yourself to see why")
    value = done.stdout.strip()
    if not value:
        raise SecretError(f"{what}: command {name!r} printed nothing")
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
