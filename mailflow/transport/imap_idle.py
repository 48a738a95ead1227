"""IMAP IDLE (RFC 2177) on a Mailbox: wait for the server to say that new mail arrived.

imapclient's idle()/idle_check()/idle_done() do the protocol; this adds what a long-lived
watcher needs: a dropped connection is told apart from a quiet one, and every failure is the
Mailbox's one-line TransportError.
"""

from __future__ import annotations

import imaplib
import select

from imapclient.imapclient import _parse_untagged_response

from mailflow.transport.imap import Mailbox

_NEW_MAIL = (b"EXISTS", b"RECENT")


class IdleMailbox(Mailbox):
    """A Mailbox that IDLEs: `select(f)`, then `idle()`, `wait(s)` until new mail, `done()`."""

    _idling = False

    def supports_idle(self) -> bool:
        """Whether the server offers IDLE (RFC 2177) after login."""
        return "IDLE" in (c.upper() for c in self.capabilities())

    def select(self, folder: str) -> None:
        """EXAMINE the folder (read-only: nothing is marked \\Seen); from now on the server
        announces every message that arrives in it."""
        self._examine(folder)

    def forget_news(self) -> None:
        """Drop new-mail announcements kept so far (a poll about to run covers them)."""
        pending = self._require()._imap.untagged_responses  # noqa: SLF001 - imaplib's store
        for name in ("EXISTS", "RECENT"):
            pending.pop(name, None)

    def idle(self) -> bool:
        """Enter IDLE on the selected folder; True when new mail was already announced."""
        client = self._require()
        with self._errors("IDLE", self._selected):
            client.idle()
        self._idling = True
        # an EXISTS sent before the continuation (mail that came while we were not idling)
        # is kept by imaplib with the untagged responses, where idle_check() never looks
        pending = client._imap.untagged_responses  # noqa: SLF001 - imaplib's own store
        return any(pending.pop(name, None) for name in ("EXISTS", "RECENT"))

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when the server announced new mail."""
        client = self._require()
        sock = client.socket()
        with self._errors("IDLE"):
            # a line may already sit in imaplib's buffer (read along with "+ idling"), where
            # neither select() nor imapclient's idle_check() would see it
            responses = self._read_available()
            if not responses:
                pending = getattr(sock, "pending", lambda: 0)()  # TLS: decrypted bytes
                if not (pending or select.select([sock], [], [], timeout)[0]):
                    return False
                responses = self._read_available()
                if not responses:
                    # readable with nothing to read: the server closed the connection
                    raise ConnectionError("closed by the server")
        for response in responses:
            if len(response) > 1 and response[1] in _NEW_MAIL:
                return True
            if response and response[0] == b"BYE":
                self._broken = True
                raise self._error("connection dropped during IDLE (BYE)")
        return False

    def _read_available(self) -> list[tuple]:
        """Every complete line the server has sent so far, parsed, without blocking."""
        client = self._require()
        imap = client._imap  # noqa: SLF001 - imaplib's line reader, as idle_check() uses it
        sock = client.socket()
        sock.setblocking(False)
        lines = []
        try:
            while True:
                try:
                    line = imap._get_line()  # noqa: SLF001
                except (TimeoutError, BlockingIOError):
                    break
                except imaplib.IMAP4.abort as err:
                    if "EOF" in str(err):  # non-blocking: nothing more to read now
                        break
                    raise
                lines.append(_parse_untagged_response(line))
        finally:
            sock.setblocking(True)
            client._set_read_timeout()  # noqa: SLF001 - restores imapclient's read timeout
        return lines

    def done(self) -> bool:
        """Leave IDLE (DONE); True when the server announced new mail meanwhile."""
        if not self._idling:
            return False
        self._idling = False
        with self._errors("DONE"):
            _, responses = self._require().idle_done()
        return any(len(r) > 1 and r[1] in _NEW_MAIL for r in responses)

    def _close(self) -> None:
        if self._idling and not self._broken:
            try:
                self.done()
            except Exception:  # noqa: BLE001 - closing anyway; LOGOUT or shutdown follows
                self._broken = True
        self._idling = False
        self._selected = None  # LOGOUT closes the folder; no CLOSE needed
        super()._close()
