"""A local SMTP server (aiosmtpd) that accepts everything and keeps each message as a .eml file."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import socket
import threading
from collections.abc import Callable
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path

from mailflow.errors import StoreError, TransportError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EmlSaver:
    """aiosmtpd handler: writes each message to `folder` as NNNN-<rcpt>.eml."""

    def __init__(self, folder: Path, on_message: Callable[[Path, list[str], str], None] | None
                 = None) -> None:
        self.folder = folder
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"{folder}: cannot make the folder for the sink's messages: "
                             f"{err.strerror or err}") from None
        self.on_message = on_message
        self._lock = threading.Lock()
        start = len(list(self.folder.glob("*.eml")))
        self._numbers = itertools.count(start + 1)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        """Save the message with its envelope as X-Envelope-* headers."""
        with self._lock:
            n = next(self._numbers)
        first = envelope.rcpt_tos[0].split("@")[0] if envelope.rcpt_tos else "nobody"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in first)[:40]
        path = self.folder / f"{n:04d}-{safe}.eml"
        head = (f"X-Envelope-From: {envelope.mail_from}\r\n"
                f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
                f"X-Received-At: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}\r\n")
        content = envelope.content if isinstance(envelope.content, bytes) else \
            envelope.content.encode("utf-8")
        path.write_bytes(head.encode() + content)
        if self.on_message:
            subject = BytesHeaderParser(policy=default).parsebytes(content).get("Subject", "")
            self.on_message(path, list(envelope.rcpt_tos), str(subject))
        return "250 Message accepted for delivery"


class Sink:
    """A running SMTP server in a background thread; stop() shuts it and its event loop."""

    def __init__(self, handler: object, host: str, port: int) -> None:
        from aiosmtpd.controller import Controller
        self.host, self.port = host, port
        # our own loop, so that stop() can close it: aiosmtpd's Controller leaves its
        # default loop (and the loop's self-pipe sockets) open
        self.loop = asyncio.new_event_loop()
        self.controller = Controller(handler, hostname=host, port=port, loop=self.loop)

    def start(self) -> Sink:
        """Listen; a port that is taken gives a TransportError naming it, at once."""
        try:
            # aiosmtpd only notices a taken port after its ready timeout (seconds): try first
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((self.host, self.port))
            self.controller.start()
        except (OSError, RuntimeError) as err:
            self.loop.close()
            raise TransportError(f"sink {self.host}:{self.port}: cannot listen: {err}") from err
        return self

    def stop(self) -> None:
        """Stop listening and release everything."""
        self.controller.stop()
        self.loop.close()


def start_sink(folder: Path, host: str = "127.0.0.1", port: int = 0,
               on_message: Callable[[Path, list[str], str], None] | None = None) -> Sink:
    """Start a sink that saves every message in `folder`; call .stop() when done."""
    return Sink(EmlSaver(folder, on_message), host, port or free_port(host)).start()
