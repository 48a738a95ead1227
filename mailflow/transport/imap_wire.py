"""The wire under mailflow.transport.imap: an IMAPClient that counts commands and bytes (ImapStats).

Counting happens at imaplib's own I/O seams (send, readline, read, _new_tag), so behaviour is
unchanged and everything is counted, including the greeting, STARTTLS and literals.
"""

from __future__ import annotations

import imaplib
import ssl
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.imap4 import IMAP4WithTimeout
from imapclient.tls import IMAP4_TLS


@dataclass
class ImapStats:
    """What the client sent and read: IMAP commands (tags), bytes in and out."""

    commands: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def __sub__(self, other: ImapStats) -> ImapStats:
        return ImapStats(self.commands - other.commands, self.bytes_in - other.bytes_in,
                         self.bytes_out - other.bytes_out)


class CountingIMAP4(imaplib.IMAP4):
    """Counts at imaplib's I/O seams (send/readline/read/_new_tag) without changing them."""

    _mf_stats: ImapStats

    def _new_tag(self) -> bytes:
        # Every command, whether issued by imaplib or by imapclient's _raw_command, gets a tag.
        self._mf_stats.commands += 1
        return super()._new_tag()

    def send(self, data: bytes) -> None:
        super().send(data)
        self._mf_stats.bytes_out += len(data)

    def readline(self) -> bytes:
        line = super().readline()
        self._mf_stats.bytes_in += len(line)
        return line

    def read(self, size: int) -> bytes:
        data = super().read(size)
        self._mf_stats.bytes_in += len(data)
        return data


class _CountingPlain(CountingIMAP4, IMAP4WithTimeout):
    def __init__(self, stats: ImapStats, host: str, port: int, timeout: float | None) -> None:
        self._mf_stats = stats  # before super().__init__: the greeting is read there
        super().__init__(host, port, timeout)


class _CountingTLS(CountingIMAP4, IMAP4_TLS):
    def __init__(self, stats: ImapStats, host: str, port: int, ctx: ssl.SSLContext,
                 timeout: float | None) -> None:
        self._mf_stats = stats
        super().__init__(host, port, ctx, timeout)


class CountingClient(IMAPClient):
    """IMAPClient whose imaplib object counts traffic into a shared ImapStats."""

    def __init__(self, stats: ImapStats, **kwargs: object) -> None:
        self._mf_stats = stats
        super().__init__(**kwargs)

    def _create_IMAP4(self) -> imaplib.IMAP4:  # noqa: N802 (imapclient's name)
        connect = self._timeout.connect
        if self.ssl:
            return _CountingTLS(self._mf_stats, self.host, self.port, self.ssl_context, connect)
        return _CountingPlain(self._mf_stats, self.host, self.port, connect)
