"""The SMTP transport: one connection per tick, each message's outcome told apart precisely.

What happened decides what may happen next: a refusal before DATA is safe to retry, while a
connection lost after the message body went out leaves it *in doubt* (the server may have
taken it), which must never be resent blindly.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass, field

from mailflow import faults
from mailflow.config.settings import ServerConfig
from mailflow.errors import SecretError, TransportError
from mailflow.transport import secrets
from mailflow.transport.tls import make_ssl_context


@dataclass
class SendResult:
    """The outcome of one message: sent | retry | failed | in_doubt, with the server's words."""

    outcome: str
    code: int | None = None
    reply: str = ""
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)  # recipient -> (code, reply)

    @property
    def summary(self) -> str:
        """One line for logs and the consultant."""
        parts = [f"{self.code} {self.reply}".strip()] if self.code or self.reply else []
        parts += [f"{r}: {c} {m}" for r, (c, m) in self.refused.items()]
        return "; ".join(parts) or self.outcome


class _Dropped(Exception):
    """The connection went away before the message body was sent (safe to retry)."""


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())[:300]


def _dot_stuff(raw: bytes) -> bytes:
    # RFC 5321 4.5.2: CRLF line ends, a leading '.' doubled, end with CRLF.CRLF
    data = re.sub(rb"\r\n|\n|\r", b"\r\n", raw)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpSession:
    """A lazily opened, reused SMTP connection; use as a context manager."""

    def __init__(self, cfg: ServerConfig, local_hostname: str | None = None) -> None:
        self.cfg = cfg
        self.local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None
        self.reconnects = 0

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, what: str) -> TransportError:
        return TransportError(f"smtp {self.cfg.address}: {what}")

    def connect(self) -> None:
        """Open, secure and authenticate the connection."""
        cfg = self.cfg
        try:
            if cfg.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, local_hostname=self.local_hostname, timeout=cfg.timeout,
                    context=make_ssl_context(cfg))
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, local_hostname=self.local_hostname,
                                    timeout=cfg.timeout)
            try:
                smtp.ehlo()
                if cfg.security == "starttls":
                    if not smtp.has_extn("starttls"):
                        raise self._fail("the server does not offer STARTTLS")
                    smtp.starttls(context=make_ssl_context(cfg))
                    smtp.ehlo()
                self._login(smtp)
            except BaseException:
                smtp.close()
                raise
        except TransportError:
            raise
        except ssl.SSLCertVerificationError as err:
            raise self._fail(f"TLS certificate verify failed: {err.verify_message}") from None
        except ssl.SSLError as err:
            raise self._fail(f"TLS failed: {err.reason or err}") from None
        except smtplib.SMTPAuthenticationError as err:
            raise self._fail(f"login rejected for {cfg.credentials.username}: "
                             f"{err.smtp_code} {_text(err.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as err:
            raise self._fail(f"not supported by the server: {err}") from None
        except TimeoutError:
            raise self._fail(f"timed out after {cfg.timeout:g}s") from None
        except ConnectionRefusedError:
            raise self._fail("connection refused") from None
        except (smtplib.SMTPException, OSError) as err:
            raise self._fail(f"{type(err).__name__}: {err}") from None
        self._smtp = smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        creds = self.cfg.credentials
        if not creds.username:
            return
        if self.cfg.security == "none" and not (self.cfg.is_loopback or self.cfg.allow_insecure):
            raise self._fail("refusing to send a password without TLS to a non-loopback server "
                             "(set security = tls/starttls, or allow_insecure = true)")
        try:
            token = secrets.oauth2_token(creds, f"smtp {self.cfg.address}")
            if token:
                auth = f"user={creds.username}\x01auth=Bearer {token}\x01\x01"
                smtp.auth("XOAUTH2", lambda challenge=None: auth, initial_response_ok=True)
                return
            password = secrets.password(creds, f"smtp {self.cfg.address}")
        except SecretError:
            raise
        if password is None:
            raise self._fail(f"username {creds.username!r} is set but no password_env, "
                             "password_command or oauth2_token_command")
        smtp.login(creds.username, password)

    @property
    def features(self) -> dict[str, str]:
        """The server's EHLO extensions (lower-case names) on the open connection."""
        return dict(self._smtp.esmtp_features) if self._smtp is not None else {}

    def close(self) -> None:
        """Say QUIT politely and close."""
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def send(self, raw: bytes, sender: str, recipients: list[str]) -> SendResult:
        """Send one message; a connection lost before DATA is reopened once per session."""
        if self._smtp is None:
            self.connect()
        try:
            return self._transaction(raw, sender, recipients)
        except _Dropped:
            self._drop()
            if self.reconnects >= 1:
                raise self._fail("connection dropped again after reconnecting") from None
            self.reconnects += 1
            self.connect()
            try:
                return self._transaction(raw, sender, recipients)
            except _Dropped:
                self._drop()
                raise self._fail("connection dropped again after reconnecting") from None

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def _transaction(self, raw: bytes, sender: str, recipients: list[str]) -> SendResult:
        smtp = self._smtp
        assert smtp is not None
        try:
            # crash points before and after each SMTP command (the crash tests end mailflow
            # there, as a kill or a power cut would)
            faults.point("smtp MAIL")
            code, reply = smtp.mail(sender)
            if code != 250:
                self._reset_or_drop(code)
                return SendResult(_by_code(code), code, _text(reply))
            refused: dict[str, tuple[int, str]] = {}
            for rcpt in recipients:
                faults.point("smtp RCPT")
                rcode, rreply = smtp.rcpt(rcpt)
                if rcode not in (250, 251):
                    refused[rcpt] = (rcode, _text(rreply))
            accepted = [r for r in recipients if r not in refused]
            if not accepted:
                self._reset_or_drop(max(c for c, _ in refused.values()))
                worst = "retry" if any(400 <= c < 500 for c, _ in refused.values()) else "failed"
                return SendResult(worst, refused=refused)
            faults.point("smtp DATA")
            smtp.putcmd("data")
            code, reply = smtp.getreply()
            if code != 354:
                self._reset_or_drop(code)
                return SendResult(_by_code(code), code, _text(reply), refused=refused)
        except (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, OSError) as err:
            # nothing of the message itself has been sent: a retry cannot duplicate it
            raise _Dropped(str(err)) from None
        try:
            faults.point("smtp message")
            smtp.send(_dot_stuff(raw))
            code, reply = smtp.getreply()
            faults.point("smtp reply")
        except (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, OSError) as err:
            self._drop()
            return SendResult("in_doubt", None, f"connection lost after the message was "
                              f"sent, before the server confirmed it ({err or 'closed'})",
                              accepted=accepted, refused=refused)
        if code == 421:
            self._drop()
        if code != 250:
            return SendResult(_by_code(code), code, _text(reply), refused=refused)
        return SendResult("sent", code, _text(reply), accepted=accepted, refused=refused)

    def _reset_or_drop(self, code: int) -> None:
        if code == 421 or self._smtp is None:  # 421: the server is closing the channel
            self._drop()
            return
        try:
            self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


def _by_code(code: int) -> str:
    # 4xx: transient, try again later; 5xx (and anything unexpected): permanent
    return "retry" if 400 <= code < 500 else "failed"
