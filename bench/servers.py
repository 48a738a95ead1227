"""The servers the benchmark talks to: an aiosmtpd sink in a child process, and Dovecot."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from email.utils import formataddr
from pathlib import Path

from mailflow.transport.sink import Sink, free_port

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


class _Counter:
    """aiosmtpd handler that accepts every message and counts it: one byte per message in a
    file (nothing else is kept)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        os.write(self.fd, b".")
        return "250 OK"


def _serve(port: int, count_path: str) -> None:
    """The sink process: serve until stdin closes."""
    sink = Sink(_Counter(count_path), "127.0.0.1", port).start()
    print("ready", flush=True)
    sys.stdin.read()
    sink.stop()


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 in its own process (so it does not share our GIL)."""

    def __init__(self) -> None:
        self.port = free_port()
        fd, self._count = tempfile.mkstemp(prefix="mailflow-bench-sink-")
        os.close(fd)
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> SmtpSink:
        root = str(Path(__file__).resolve().parent.parent)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", f"from bench.servers import _serve; "
             f"_serve({self.port}, {self._count!r})"], cwd=root, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": root})
        if self._proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("the SMTP sink did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()
        os.unlink(self._count)

    @property
    def received(self) -> int:
        """Messages accepted so far."""
        return os.path.getsize(self._count)


class ImapServer:
    """The test suite's Dovecot (tests/imap_server.py) in a temporary folder."""

    def __init__(self) -> None:
        from tests.imap_server import DOVECOT, Dovecot
        if DOVECOT is None:
            raise RuntimeError("dovecot is not installed")
        self.tmp = Path(tempfile.mkdtemp(prefix="mailflow-bench-dovecot-"))
        self.server = Dovecot(self.tmp)

    def __enter__(self) -> ImapServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.server.cleanup_env()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def account(self):  # noqa: ANN201 - tests.imap_server.Account
        """A fresh user with an empty mailbox."""
        return self.server.add_user()


def imap_toml(account) -> str:  # noqa: ANN001
    """The [imap] section of mailflow.toml for a test account (no Sent copies)."""
    cfg = account.config()
    return (f'\n[imap]\nhost = "{cfg.host}"\nport = {cfg.port}\nsecurity = "none"\n'
            f'username = "{account.user}"\npassword_env = "{account.password_env}"\n'
            'folders = ["INBOX"]\nsent_folder = ""\n')


def write_maildir(account, folder: str, messages: list[bytes], start: int) -> None:  # noqa: ANN001
    """Put raw messages into a Maildir folder directly (UIDs follow the file-name order)."""
    maildir = account.server.mail_dir / account.user / "Maildir"
    box = maildir if folder.upper() == "INBOX" else maildir / f".{folder}"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    for i, raw in enumerate(messages, start=start):
        name = f"{now}.M{i:08d}P{os.getpid()}.mailflowbench,S={len(raw)}:2,"
        (box / "cur" / name).write_bytes(raw)
    account.server.chown_mail()


# --- replies in the shapes of the test corpus -----------------------------------------------

REPLY_SHAPES = ("gmail_reply.eml", "outlook_desktop.eml", "apple_mail.eml", "iphone.eml",
                "thunderbird_inline.eml", "outlook_mobile.eml", "gmail_spanish.eml",
                "outlook_german.eml", "gmail_html_only.eml", "exchange_ooo.eml",
                "gmail_vacation.eml", "ooo_french.eml")
_REPLACED = re.compile(rb"^(?:In-Reply-To|References|Message-ID|From|To|Cc|Subject|Date):"
                       rb".*(?:\r?\n[ \t].*)*\r?\n", re.I | re.M)


def reply_shapes() -> list[bytes]:
    """The corpus messages the benchmark's replies are made from."""
    return [(DATA / name).read_bytes() for name in REPLY_SHAPES if (DATA / name).exists()]


def make_reply(shape: bytes, n: int, sent: dict, sender: str) -> bytes:
    """A corpus message rewritten to answer one sent message (a stored message record)."""
    split = re.search(rb"\r?\n\r?\n", shape)
    head, body = (shape[:split.start()] + b"\n", shape[split.start():]) if split else \
        (shape, b"")
    head = _REPLACED.sub(b"", head)
    who = sent["to"][0]
    new = (f"From: {formataddr((who.get('name') or '', who['email']), 'utf-8')}\r\n"
           f"To: Dana Whitfield <{sender}>\r\n"
           f"Subject: Re: {sent['subject']}\r\n"
           f"Date: Mon, 25 Jan 2027 10:{n % 60:02d}:00 +0000\r\n"
           f"Message-ID: <bench-reply-{n}@{who['email'].rpartition('@')[2]}>\r\n"
           f"In-Reply-To: {sent['message_id']}\r\nReferences: {sent['message_id']}\r\n")
    return new.encode("utf-8") + head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + \
        body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
