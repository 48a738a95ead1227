"""A real aiosmtpd server on 127.0.0.1 for the tests, with switchable faults."""

from __future__ import annotations

import asyncio
import email
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from mailflow.transport.sink import Sink, free_port
from tests.helpers import is_to_consultant


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def msg(self) -> EmailMessage:
        """The parsed message."""
        return email.message_from_bytes(self.raw, policy=default)


@dataclass
class Behaviour:
    """How the server answers: a fixed reply at a phase, a dropped connection, or a stall."""

    data_reply: str | None = None        # e.g. "451 4.3.0 try later" instead of 250
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # recipient -> reply
    drop_after_data: bool = False        # take the message, then close without answering
    stall_after_data: float = 0.0        # take the message, then wait this long before 250
    mail_reply: str | None = None


class RecordingHandler:
    """Keeps every accepted message; misbehaves as told."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.behaviour = Behaviour()
        self.lock = threading.Lock()
        # an async callable(phase, envelope, server) awaited at "MAIL", "RCPT", "DATA" (before
        # the message is kept) and "STORED" (kept, before the reply); `server` is aiosmtpd's
        # SMTP protocol object (server.transport.close() drops the connection); a true result
        # at "DATA" drops the connection without keeping the message
        self.hook = None

    async def _hook(self, phase: str, envelope, server) -> bool:  # noqa: ANN001
        if self.hook is not None:
            return bool(await self.hook(phase, envelope, server))
        return False

    async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: N802
        await self._hook("MAIL", envelope, server)
        if self.behaviour.mail_reply:
            return self.behaviour.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        await self._hook("RCPT", envelope, server)
        reply = self.behaviour.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        b = self.behaviour
        if await self._hook("DATA", envelope, server):  # the hook says: lose this message
            server.transport.close()
            return "421 4.3.0 lost"
        if b.data_reply:
            return b.data_reply
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content or envelope.content))
        await self._hook("STORED", envelope, server)
        if b.drop_after_data:
            # the message is in, but the client never hears so: the classic in-doubt case
            server.transport.close()
            return "250 never seen"
        if b.stall_after_data:
            await asyncio.sleep(b.stall_after_data)
        return "250 Message accepted"


class _Auth:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def __call__(self, server, session, envelope, mechanism, auth_data):  # noqa: ANN001
        if isinstance(auth_data, LoginPassword):
            ok = self.users.get(auth_data.login.decode()) == auth_data.password.decode()
            # handled=False: aiosmtpd then answers 535 itself (handled=True, its default,
            # means "I replied already" and the client would wait for a reply forever)
            return AuthResult(success=ok, handled=False)
        return AuthResult(success=False, handled=False)


class SmtpServer:
    """The running server: its port, what it received, and how it behaves."""

    def __init__(self, users: dict[str, str] | None = None, *,
                 smtputf8: bool | None = None) -> None:
        self.handler = RecordingHandler()
        self.port = free_port()
        # aiosmtpd's Controller offers SMTPUTF8 unless told not to
        kwargs: dict = {} if smtputf8 is None else {"enable_SMTPUTF8": smtputf8}
        if users:
            kwargs.update({"authenticator": _Auth(users), "auth_require_tls": False,
                           "auth_required": True})
        self.sink = Sink(self.handler, "127.0.0.1", self.port)
        if kwargs:
            self.sink.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                              loop=self.sink.loop, **kwargs)
        self.sink.start()

    @property
    def received(self) -> list[Received]:
        """Messages accepted so far."""
        return self.handler.received

    @property
    def client_mail(self) -> list[Received]:
        """Messages accepted so far, less mailflow's own to the consultant (the digest, on by
        default, and the confirmations of digest replies): what clients were sent."""
        return [r for r in self.handler.received if not is_to_consultant(r.raw)]

    def by_subject(self) -> dict[str, Received]:
        """Received messages keyed by subject."""
        return {str(r.msg["Subject"]): r for r in self.received}

    def behave(self, **kwargs) -> None:  # noqa: ANN003
        """Switch how the server answers from now on."""
        self.handler.behaviour = Behaviour(**kwargs)

    def wait_for(self, n: int, timeout: float = 5.0) -> None:
        """Wait until n messages arrived."""
        end = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < end:
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop listening."""
        self.sink.stop()


@pytest.fixture
def smtp_server():
    """A fresh recording SMTP server per test."""
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def smtp_server_auth():
    """An SMTP server that requires AUTH (user consultant, password s3cret-pass).

    aiosmtpd warns about AUTH without TLS in its server thread: a test module using this adds
    `pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")`.
    """
    server = SmtpServer(users={"consultant": "s3cret-pass"})
    yield server
    server.stop()


__all__ = ["SmtpServer", "Received", "TlsSmtpServer", "smtp_server", "smtp_server_auth", "SMTP"]


class TlsSmtpServer(SmtpServer):
    """An SMTP server with a certificate from a throwaway CA (trustme): implicit TLS or STARTTLS.

    The certificate is for "localhost" only, so connecting to 127.0.0.1 by IP exercises the
    host-name check; `ca_pem` is the CA to trust and `other_ca_pem` an unrelated one.
    """

    def __init__(self, folder, mode: str = "tls", users: dict[str, str] | None = None) -> None:
        import ssl

        import trustme
        self.handler = RecordingHandler()
        self.port = free_port()
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(folder / "ca.pem"))
        trustme.CA().cert_pem.write_to_path(str(folder / "other-ca.pem"))
        self.ca_pem, self.other_ca_pem = str(folder / "ca.pem"), str(folder / "other-ca.pem")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost").configure_cert(ctx)
        kwargs: dict = {}
        if users:
            kwargs.update(authenticator=_Auth(users), auth_required=True)
        if mode == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True)
        else:
            kwargs["ssl_context"] = ctx
            if users:  # aiosmtpd does not count implicit TLS as TLS for AUTH: it is, though
                kwargs["auth_require_tls"] = False
        self.sink = Sink(self.handler, "127.0.0.1", self.port)
        self.sink.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                          loop=self.sink.loop, **kwargs)
        self.sink.start()
