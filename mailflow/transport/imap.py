"""The IMAP side: poll folders for client replies, file copies of sent mail, find a Message-ID.

Built on imapclient (itself on imaplib). Every failure leaves as one TransportError line that
names the server and what happened; passwords and tokens never appear in messages.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import BinaryIO

from imapclient import SocketTimeout
from imapclient.exceptions import CapabilityError, LoginError

from mailflow import faults
from mailflow.config.settings import ImapConfig
from mailflow.errors import MailflowError, TransportError
from mailflow.transport import imap_parts, secrets
from mailflow.transport.imap_parts import WHOLE_MAX
from mailflow.transport.imap_wire import CountingClient, ImapStats
from mailflow.transport.tls import describe_ssl_error, make_ssl_context

__all__ = ["Cursor", "Fetched", "ImapStats", "Mailbox", "Poll"]


@dataclass(frozen=True)
class Cursor:
    """How far a folder has been read: every UID <= last_uid under this UIDVALIDITY is done."""

    folder: str
    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class Fetched:
    """One message found by a poll: its UID, bytes to read it from and INTERNALDATE (UTC).

    `raw` is the whole message when `complete`; a large message is read by its structure
    (transport/imap_parts.py): `raw` then holds its header, text and report parts only, and
    `copy_raw(file)` writes the whole message to a file in chunks.
    """

    uid: int
    raw: bytes
    internal_date: datetime | None
    folder: str = ""
    uidvalidity: int = 0
    size: int = 0
    complete: bool = True
    notes: tuple[str, ...] = ()
    _copy: Callable[[BinaryIO], int] | None = field(default=None, repr=False, compare=False)

    @property
    def cursor(self) -> Cursor:
        """The cursor to store once this message has been recorded."""
        return Cursor(self.folder, self.uidvalidity, self.uid)

    def copy_raw(self, out: BinaryIO) -> int:
        """Write the whole message to `out` (fetched in chunks if need be); returns its size."""
        if self.complete or self._copy is None:
            out.write(self.raw)
            return len(self.raw)
        return self._copy(out)


# --- the mailbox ------------------------------------------------------------------------------

# PEEK: never sets \Seen (RFC 3501 6.4.5). A message up to WHOLE_MAX arrives whole in this
# one command; a larger one is then read by its BODYSTRUCTURE, never its attachments.
_FETCH_ITEMS = ["RFC822.SIZE", "INTERNALDATE", "BODYSTRUCTURE", f"BODY.PEEK[]<0.{WHOLE_MAX}>"]
_FIRST = b"BODY[]<0>"
_MID_FIELD = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
_NO_FOLDER = re.compile(r"NONEXISTENT|TRYCREATE|doesn't exist|does not exist|no such", re.I)


class Poll(Iterator["Fetched"]):
    """The messages of one poll, lazily; .cursor is where to resume after those consumed."""

    def __init__(self, mailbox: Mailbox, folder: str, cursor: Cursor | None, batch: int) -> None:
        self.cursor: Cursor | None = cursor
        self._it = mailbox._poll(self, folder, cursor, batch)

    def __next__(self) -> Fetched:
        return next(self._it)

    def close(self) -> None:
        """Stop early (the folder is left selected; the mailbox closes it before reuse)."""
        self._it.close()


class Mailbox:
    """One IMAP connection: `with Mailbox(cfg) as mb: for f in mb.poll("INBOX", cur): ...`."""

    def __init__(self, cfg: ImapConfig, *, connect_timeout: float | None = None) -> None:
        self.cfg = cfg
        self._connect_timeout = connect_timeout if connect_timeout is not None else cfg.timeout
        self._stats = ImapStats()
        self._client: CountingClient | None = None
        self._selected: str | None = None
        self._broken = False  # after a timeout or drop the stream is unusable: don't LOGOUT
        self._secret: str | None = None
        self._caps: list[str] = []

    # -- connection --------------------------------------------------------------------------

    def __enter__(self) -> Mailbox:
        cfg = self.cfg
        if cfg.security not in ("tls", "starttls", "none"):
            raise self._error(f"unknown security mode {cfg.security!r}")
        user, password, token = self._credentials()
        # Defence in depth (config.py checks this at load too): LOGIN in clear text only on
        # this machine or when explicitly allowed (RFC 3501 section 11.1 / RFC 8314).
        if cfg.security == "none" and (password or token) and not (
                cfg.is_loopback or cfg.allow_insecure):
            raise self._error("refusing to send a password without TLS to a non-loopback host "
                              "(use tls or starttls, or set allow_insecure = true)")
        ctx = make_ssl_context(cfg) if cfg.security != "none" else None
        with self._errors("connect"):
            self._client = CountingClient(
                self._stats, host=cfg.host, port=cfg.port, ssl=cfg.security == "tls",
                ssl_context=ctx, timeout=SocketTimeout(self._connect_timeout, cfg.timeout))
        try:
            self._client.normalise_times = False  # keep INTERNALDATE's zone; we convert to UTC
            if cfg.security == "starttls":
                self._starttls(ctx)
            if user and (password or token):
                self._login(user, password, token)
            with self._errors("CAPABILITY"):
                # imapclient asks again after every SELECT unless it has cached them once in
                # the authenticated state (RFC 3501 7.2.1: they may change at login).
                client_caps = self._client.capabilities()
            self._caps = [c.decode("ascii", "replace") for c in client_caps]
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _credentials(self) -> tuple[str | None, str | None, str | None]:
        creds = self.cfg.credentials
        what = f"imap {self.cfg.address}"
        # Resolved before connecting: a failing password command must not leave a socket open.
        token = secrets.oauth2_token(creds, what)
        password = None if token else secrets.password(creds, what)
        if (password or token) and not creds.username:
            raise self._error("a password or token is configured but no username")
        self._secret = token or password
        return creds.username, password, token

    def _starttls(self, ctx: ssl.SSLContext | None) -> None:
        client = self._require()
        with self._errors("CAPABILITY"):
            offered = b"STARTTLS" in client.capabilities()
        # security = starttls means required: never fall back to clear text (RFC 3501 6.2.1,
        # RFC 8314 section 4 on STARTTLS stripping).
        if not offered:
            raise self._error("server does not offer STARTTLS (security = starttls requires it)")
        with self._errors("STARTTLS"):
            try:
                client.starttls(ctx)
            except CapabilityError as err:
                raise self._error("server does not offer STARTTLS") from err

    def _login(self, user: str, password: str | None, token: str | None) -> None:
        client = self._require()
        try:
            with self._errors("LOGIN"):
                if token:
                    client.oauth2_login(user, token)  # SASL XOAUTH2
                else:
                    client.login(user, password or "")
        except TransportError as err:
            if not isinstance(err.__cause__, LoginError):
                raise
            # imapclient shows the server's text as a bytes repr: b'[AUTHENTICATIONFAILED] ...'
            detail = re.sub(r"""^b(['"])(.*)\1$""", r"\2", self._scrub(str(err.__cause__)))
            # from None: the chained imaplib error could carry the SASL string on some paths.
            raise self._error(f"login rejected for {user}" + (f" ({detail})" if detail else "")
                              ) from None

    def _close(self) -> None:
        client, self._client = self._client, None
        self._selected = None
        if client is None:
            return
        if not self._broken:
            with contextlib.suppress(Exception):
                client.logout()  # imaplib closes the socket after BYE
                return
        with contextlib.suppress(Exception):
            client.shutdown()

    def _require(self) -> CountingClient:
        if self._client is None:
            raise self._error("not connected (use Mailbox as a context manager)")
        return self._client

    # -- errors ------------------------------------------------------------------------------

    def _error(self, what: str) -> TransportError:
        return TransportError(f"imap {self.cfg.address}: {self._scrub(what)}")

    def _scrub(self, text: str) -> str:
        text = " ".join(text.split())
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    @contextlib.contextmanager
    def _errors(self, op: str, folder: str | None = None) -> Iterator[None]:
        """Turn whatever imaplib/imapclient/socket raise during `op` into one TransportError."""
        faults.point(f"imap {op}")  # a crash point before and after each IMAP operation
        try:
            yield
            faults.point(f"imap {op} done")
        except MailflowError:
            raise
        except TimeoutError as err:
            self._broken = True
            waited = self._connect_timeout if op == "connect" else self.cfg.timeout
            when = "connecting" if op == "connect" else f"during {op}"
            raise self._error(f"timed out after {waited:g}s {when}") from err
        except ssl.SSLError as err:
            self._broken = True
            raise self._error(describe_ssl_error(err)) from err
        except ConnectionRefusedError as err:
            self._broken = True
            raise self._error("connection refused") from err
        except socket.gaierror as err:
            self._broken = True
            raise self._error(f"cannot resolve host name: {err.strerror}") from err
        except imaplib.IMAP4.abort as err:
            # imaplib's abort: EOF, BYE, or a garbled response: the connection is gone.
            self._broken = True
            said = str(err).rpartition("=> ")[2].strip()[:120]  # e.g. the server's BYE text
            raise self._error(f"connection dropped during {op}" + (f" ({said})" if said else "")
                              ) from err
        except imaplib.IMAP4.error as err:
            # A tagged NO or BAD: the connection is fine, the command was refused.
            text = self._scrub(str(err))
            if folder is not None and _NO_FOLDER.search(text):
                raise self._error(f"folder {folder!r} does not exist") from err
            raise self._error(f"{op} refused: {text}") from err
        except (ConnectionError, EOFError) as err:
            self._broken = True
            raise self._error(f"connection dropped during {op}") from err
        except OSError as err:
            self._broken = True
            if op == "connect":
                raise self._error(f"cannot connect: {err.strerror or err}") from err
            raise self._error(f"connection failed during {op}: {err.strerror or err}") from err

    # -- folders -----------------------------------------------------------------------------

    def _unselect(self) -> None:
        if self._selected is None:
            return
        with self._errors("CLOSE"):
            # CLOSE after EXAMINE expunges nothing (RFC 3501 6.4.2); works on every server,
            # unlike UNSELECT (RFC 3691).
            self._require().close_folder()
        self._selected = None

    def _examine(self, folder: str) -> dict:
        self._unselect()
        with self._errors("EXAMINE", folder):
            info = self._require().select_folder(folder, readonly=True)  # EXAMINE
        self._selected = folder
        return info

    def folder_state(self, folder: str) -> tuple[int, int]:
        """(UIDVALIDITY, UIDNEXT) of a folder, with one STATUS command."""
        # RFC 3501 6.3.10: STATUS SHOULD NOT be used on the selected mailbox.
        self._unselect()
        with self._errors("STATUS", folder):
            st = self._require().folder_status(folder, ["UIDVALIDITY", "UIDNEXT"])
        return int(st[b"UIDVALIDITY"]), int(st[b"UIDNEXT"])

    def capabilities(self) -> list[str]:
        """The server's capabilities (after login they include the extensions)."""
        self._require()
        return list(self._caps)

    @property
    def stats(self) -> ImapStats:
        """A snapshot of commands and bytes so far (subtract two snapshots for a delta)."""
        return replace(self._stats)

    # -- polling -----------------------------------------------------------------------------

    def poll(self, folder: str, cursor: Cursor | None, batch: int = 200) -> Poll:
        """New messages (UID > cursor.last_uid) in UID order; all of them if UIDVALIDITY changed."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if cursor is not None and cursor.folder != folder:
            raise ValueError(f"cursor is for folder {cursor.folder!r}, not {folder!r}")
        return Poll(self, folder, cursor, batch)

    def _poll(self, poll: Poll, folder: str, cursor: Cursor | None,
              batch: int) -> Iterator[Fetched]:
        # The quiet path is exactly one STATUS, whatever the folder's size.
        uidvalidity, uidnext = self.folder_state(folder)
        same = cursor is not None and cursor.uidvalidity == uidvalidity
        # RFC 3501 2.3.1.1: a new UIDVALIDITY means old UIDs mean nothing: rescan from 1.
        start = cursor.last_uid + 1 if cursor is not None and same else 1
        if uidnext <= start:
            poll.cursor = cursor if same else Cursor(folder, uidvalidity, 0)
            return
        info = self._examine(folder)
        if info.get(b"UIDVALIDITY", uidvalidity) != uidvalidity:  # changed since the STATUS
            uidvalidity, start = info[b"UIDVALIDITY"], 1
        uidnext = info.get(b"UIDNEXT", uidnext)
        uids: list[int] = []
        if info.get(b"EXISTS", 1):
            with self._errors("SEARCH", folder):
                found = self._require().search(["UID", f"{start}:*"])
            # "n:*" also matches the highest UID when it is below n (RFC 3501 6.4.8): filter.
            uids = sorted(u for u in found if u >= start)
        last = start - 1
        for i in range(0, len(uids), batch):
            chunk = uids[i:i + batch]
            with self._errors("FETCH", folder):
                data = self._require().fetch(chunk, _FETCH_ITEMS)
            for uid in chunk:
                item = data.get(uid)
                if item is None or _FIRST not in item:
                    continue  # expunged since the SEARCH
                when = item.get(b"INTERNALDATE")
                if isinstance(when, datetime) and when.tzinfo is not None:
                    when = when.astimezone(UTC)
                found_msg = self._fetched(folder, uid, item, when, uidvalidity)
                data[uid] = {}  # a batch holds at most batch x WHOLE_MAX bytes, once
                last = uid
                poll.cursor = found_msg.cursor
                yield found_msg
        self._unselect()
        # Every UID below the EXAMINE's UIDNEXT existed then, so the SEARCH saw it: skipping
        # up to UIDNEXT-1 keeps the next quiet poll quiet even if the newest were expunged.
        poll.cursor = Cursor(folder, uidvalidity, max(last, uidnext - 1))

    def _fetched(self, folder: str, uid: int, item: dict, when: datetime | None,
                 uidvalidity: int) -> Fetched:
        first = bytes(item[_FIRST] or b"")
        size = int(item.get(b"RFC822.SIZE") or len(first))
        if len(first) >= size:
            return Fetched(uid, first, when, folder, uidvalidity, size=size)
        root = imap_parts.read_structure(item[b"BODYSTRUCTURE"])
        got: dict = {}
        for group in imap_parts.in_groups(imap_parts.fetch_items(root)):
            with self._errors("FETCH", folder):
                got.update(self._require().fetch([uid], group).get(uid, {}))
        raw, notes = imap_parts.assemble(root, {k: bytes(v or b"") for k, v in got.items()})
        return Fetched(uid, raw, when, folder, uidvalidity, size=size, complete=False,
                       notes=tuple(notes), _copy=lambda out: self._copy(folder, uid, size, out))

    def _copy(self, folder: str, uid: int, size: int, out: BinaryIO) -> int:
        """Stream one message to `out` in CHUNK-sized partial fetches (RFC 3501 6.4.5)."""
        if self._selected != folder:
            raise self._error(f"folder {folder!r} is no longer selected to copy message {uid}")
        offset = 0
        while offset < size:
            item = f"BODY.PEEK[]<{offset}.{imap_parts.CHUNK}>"
            with self._errors("FETCH", folder):
                got = self._require().fetch([uid], [item]).get(uid, {})
            chunk = bytes(got.get(f"BODY[]<{offset}>".encode()) or b"")
            if not chunk:
                break  # expunged meanwhile, or the server's size was generous
            out.write(chunk)
            offset += len(chunk)
        return offset

    # -- sent mail ---------------------------------------------------------------------------

    def append(self, folder: str, raw: bytes, flags: Iterable[bytes | str] = (b"\\Seen",),
               when: datetime | None = None) -> None:
        """APPEND a message (a copy of sent mail) to a folder, creating the folder if missing."""
        client = self._require()
        flags = tuple(flags)
        try:
            with self._errors("APPEND", folder):
                client.append(folder, raw, flags=flags, msg_time=when)
            return
        except TransportError as err:
            # RFC 3501 6.3.11: NO [TRYCREATE] means the mailbox does not exist yet.
            if self._broken or not _NO_FOLDER.search(str(err.__cause__ or "")):
                raise
        with self._errors("CREATE", folder):
            client.create_folder(folder)
        with self._errors("APPEND", folder):
            client.append(folder, raw, flags=flags, msg_time=when)

    def find_message_id(self, folder: str, message_id: str) -> bool:
        """True if a message with exactly this Message-ID is in the folder."""
        wanted = clean_message_id(message_id)
        if wanted is None:
            return False
        self._examine(folder)
        client = self._require()
        # HEADER search is a substring match (RFC 3501 6.4.4); `wanted` holds no '"', '\\',
        # CR, LF or non-ASCII, so it is a valid quoted string as is.
        with self._errors("SEARCH", folder):
            uids = client.search(b'HEADER Message-ID "' + wanted.encode("ascii") + b'"')
        found = False
        if uids:
            with self._errors("FETCH", folder):
                data = client.fetch(sorted(uids), [_MID_FIELD])
            parser = BytesHeaderParser(policy=compat32)
            for item in data.values():
                head = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER")), b"")
                value = parser.parsebytes(bytes(head or b"")).get("Message-ID", "")
                if "".join(str(value).split()) == wanted:
                    found = True
                    break
        self._unselect()
        return found


def clean_message_id(message_id: str) -> str | None:
    """'<local@domain>' with CR/LF, quotes, backslashes and other unsafe characters removed."""
    # Only printable ASCII without quoted-specials fits an IMAP quoted string (RFC 3501 §9,
    # QUOTED-CHAR); anything else could end or extend the command.
    core = "".join(c for c in message_id if "!" <= c <= "~" and c not in '"\\<>')
    return f"<{core}>" if core else None
