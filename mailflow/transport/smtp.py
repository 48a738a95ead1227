"""The SMTP transport: one connection per tick, each recipient's outcome told apart precisely.

What happened decides what may happen next: a refusal before DATA is safe to retry, while a
connection lost after the message body went out leaves it *in doubt* (the server may have
taken it), which must never be resent blindly. SMTP reply codes are read here and nowhere
else: the engine hears neutral outcomes (engine/outcomes.py).
"""

from __future__ import annotations

import re
import smtplib
import ssl

from mailflow import faults
from mailflow.addresses import envelope_address
from mailflow.config.settings import ServerConfig
from mailflow.engine.outcomes import Delivery, Outcome, RecipientOutcome
from mailflow.errors import SecretError, TransportError
from mailflow.transport import secrets
from mailflow.transport.tls import make_ssl_context


class _Dropped(Exception):
    """The connection went away before the message body was sent (safe to retry)."""


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())[:300]


def _dot_stuff(raw: bytes) -> bytes:
    # RFC 5321 4.5.2: CRLF line ends, a leading '.' doubled, end with CRLF.CRLF
    crlf = raw.count(b"\r\n")
    if raw.count(b"\n") == crlf == raw.count(b"\r"):
        data = raw  # already CRLF throughout (policy.SMTP writes it so): no pass over it
    else:
        data = re.sub(rb"\r\n|\n|\r", b"\r\n", raw)
    if data.startswith(b".") or b"\n." in data:
        data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpTransport:
    """The Transport over one lazily opened, reused SMTP connection; a context manager."""

    def __init__(self, cfg: ServerConfig, local_hostname: str | None = None) -> None:
        self.cfg = cfg
        self.local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None
        self.reconnects = 0

    def __enter__(self) -> SmtpTransport:
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

    def probe(self) -> dict[str, str]:
        """Connect (if needed) and tell what the server offers: its EHLO extensions."""
        if self._smtp is None:
            self.connect()
        return self.features

    def send(self, raw: bytes, sender: str, recipients: list[str]) -> Delivery:
        """Send one message; a connection lost before DATA is reopened once per session."""
        try:
            env_sender, utf8 = envelope_address(sender)
            env = {r: envelope_address(r) for r in recipients}
        except ValueError as err:
            return Delivery.every(recipients, Outcome.PERMANENT, f"not sent: {err}",
                                  offered=False)
        utf8 = utf8 or any(u for _, u in env.values()) or _eight_bit_headers(raw)
        if self._smtp is None:
            self.connect()
        if utf8 and "smtputf8" not in self.features:
            # RFC 6531: a non-ASCII mailbox can only travel with SMTPUTF8; say so before any
            # command, so nothing is in doubt and the rest of the batch goes on
            return Delivery.every(
                recipients, Outcome.PERMANENT,
                f"not sent: a non-ASCII address ({_non_ascii(sender, recipients)}) needs "
                f"SMTPUTF8, which smtp {self.cfg.address} does not offer", offered=False)
        options = ["SMTPUTF8"] + (["BODY=8BITMIME"] if "8bitmime" in self.features else []) \
            if utf8 else []
        wire = [(r, a) for r, (a, _) in env.items()]
        try:
            return self._transaction(raw, env_sender, wire, options)
        except _Dropped:
            self._drop()
            if self.reconnects >= 1:
                raise self._fail("connection dropped again after reconnecting") from None
            self.reconnects += 1
            self.connect()
            try:
                return self._transaction(raw, env_sender, wire, options)
            except _Dropped:
                self._drop()
                raise self._fail("connection dropped again after reconnecting") from None

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def _transaction(self, raw: bytes, sender: str, wire: list[tuple[str, str]],
                     options: list[str]) -> Delivery:
        smtp = self._smtp
        assert smtp is not None
        recipients = [r for r, _ in wire]
        try:
            # crash points before and after each SMTP command (the crash tests end mailflow
            # there, as a kill or a power cut would)
            faults.point("smtp MAIL")
            code, reply = smtp.mail(sender, options)
            if code != 250:
                self._reset_or_drop(code)
                return Delivery.every(recipients, _by_code(code), f"{code} {_text(reply)}")
            outcomes: dict[str, RecipientOutcome] = {}
            codes = []
            for rcpt, addr in wire:
                faults.point("smtp RCPT")
                rcode, rreply = smtp.rcpt(addr)
                if rcode not in (250, 251):
                    codes.append(rcode)
                    outcomes[rcpt] = RecipientOutcome(_by_code(rcode), f"{rcode} {_text(rreply)}",
                                                      address_refused=rcode >= 500)
            accepted = [r for r in recipients if r not in outcomes]
            if not accepted:
                self._reset_or_drop(421 if 421 in codes else max(codes))
                return Delivery({r: outcomes[r] for r in recipients})
            faults.point("smtp DATA")
            smtp.putcmd("data")
            code, reply = smtp.getreply()
            if code != 354:
                self._reset_or_drop(code)
                return _with(outcomes, accepted, _by_code(code), f"{code} {_text(reply)}",
                             recipients)
        except (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, OSError) as err:
            # nothing of the message itself has been sent: a retry cannot duplicate it
            raise _Dropped(str(err)) from None
        except (UnicodeError, ValueError, smtplib.SMTPException) as err:
            # refused by smtplib itself before DATA (e.g. a character it cannot encode):
            # nothing of the message went out, so this one fails and the batch goes on
            self._reset_or_drop(0)
            return Delivery.every(recipients, Outcome.PERMANENT,
                                  f"not sent: {type(err).__name__}: {err}")
        try:
            faults.point("smtp message")
            smtp.send(_dot_stuff(raw))
            code, reply = smtp.getreply()
            faults.point("smtp reply")
        except (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, OSError) as err:
            self._drop()
            return _with(outcomes, accepted, Outcome.IN_DOUBT,
                         f"connection lost after the message was sent, before the server "
                         f"confirmed it ({err or 'closed'})", recipients)
        if code == 421:
            self._drop()
        if code != 250:
            return _with(outcomes, accepted, _by_code(code), f"{code} {_text(reply)}",
                         recipients)
        return _with(outcomes, accepted, Outcome.DELIVERED, f"{code} {_text(reply)}",
                     recipients)

    def _reset_or_drop(self, code: int) -> None:
        if code == 421 or self._smtp is None:  # 421: the server is closing the channel
            self._drop()
            return
        try:
            self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


SmtpSession = SmtpTransport  # the name the rest of mailflow has known it by


def _with(refused: dict[str, RecipientOutcome], accepted: list[str], outcome: Outcome,
          reply: str, order: list[str]) -> Delivery:
    """The accepted recipients share the message's outcome; refused ones keep their own."""
    every = {**refused, **{r: RecipientOutcome(outcome, reply) for r in accepted}}
    return Delivery({r: every[r] for r in order}, reply)


def _by_code(code: int) -> Outcome:
    # 4xx: transient, try again later; 5xx (and anything unexpected): permanent
    return Outcome.TEMPORARY if 400 <= code < 500 else Outcome.PERMANENT


def _eight_bit_headers(raw: bytes) -> bool:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return not head.isascii()


def _non_ascii(sender: str, recipients: list[str]) -> str:
    return ", ".join(a for a in [sender, *recipients] if not a.isascii())
