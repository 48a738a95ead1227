"""Turning a rendered draft into a standards-conforming email message."""

from __future__ import annotations

import datetime as dt
import secrets
import string
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime

from mailflow.addresses import MAX_NAME, split_address
from mailflow.errors import RenderError

_TOKEN_ALPHABET = string.ascii_lowercase + string.digits
# policy.SMTP folds at 78, which the email package also uses for quoted-printable body lines;
# RFC 2045 6.7 caps those at 76 characters
POLICY = SMTP.clone(max_line_length=76)
POLICY_UTF8 = SMTPUTF8.clone(max_line_length=76)


def make_message_id(domain: str, now: dt.datetime) -> str:
    """A globally unique Message-ID on the sender's domain (RFC 5322 3.6.4)."""
    return f"<{now.astimezone(dt.UTC):%Y%m%d%H%M%S}.{secrets.token_hex(8)}@{domain}>"


def make_reply_token() -> str:
    """A random token for plus-addressed Reply-To (user+token@domain)."""
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(12))


def address(person: dict, where: str) -> Address:
    """A parsed address from a {name, email} record; CR/LF or a bad address is refused."""
    name, email = person.get("name") or "", person.get("email") or ""
    if any(c in name + email for c in "\r\n"):
        raise RenderError(f"{where}: line break in name or address {email!r}")
    if len(name) > MAX_NAME:
        raise RenderError(f"{where}: the name of {email!r} is {len(name)} characters long "
                          f"(at most {MAX_NAME})")
    try:
        # the domain travels IDNA-encoded (punycode) in headers and envelope alike
        local, domain = split_address(email)
        return Address(display_name=name, username=local, domain=domain)
    except (ValueError, IndexError, HeaderParseError) as err:
        raise RenderError(f"{where}: invalid address {email!r}") from err


def plus_address(email: str, token: str) -> str:
    """user@domain -> user+token@domain."""
    user, _, domain = email.partition("@")
    return f"{user}+{token}@{domain}"


def build_message(*, subject: str, html: str, text: str, sender: dict, to: list[dict],
                  cc: list[dict], message_id: str, date: dt.datetime, where: str,
                  in_reply_to: str | None = None, references: tuple[str, ...] = (),
                  reply_to: str | None = None) -> EmailMessage:
    """A multipart/alternative message (text first, then HTML) with threading headers."""
    if any(c in subject for c in "\r\n"):
        raise RenderError(f"{where}: subject contains a line break")
    people = [address(p, f"{where}: contacts.to") for p in to]
    copied = [address(p, f"{where}: contacts.cc") for p in cc]
    # a non-ASCII local part can only be written as UTF-8 (RFC 6532); the transport then
    # sends it only to a server that offers SMTPUTF8
    utf8 = not all(a.username.isascii() for a in people + copied)
    msg = EmailMessage(policy=POLICY_UTF8 if utf8 else POLICY)
    msg["From"] = address(sender, f"{where}: sender")
    msg["To"] = people
    if copied:
        msg["Cc"] = copied
    if reply_to:
        msg["Reply-To"] = address({"name": sender.get("name"), "email": reply_to},
                                  f"{where}: reply-to")
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date.astimezone(dt.UTC))
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = " ".join(references or (in_reply_to,))
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


def recipients(msg: EmailMessage) -> list[str]:
    """The envelope recipients: every To and Cc address."""
    out: list[str] = []
    for header in ("To", "Cc"):
        for addr in getattr(msg[header], "addresses", ()) if msg[header] else ():
            if addr.addr_spec not in out:
                out.append(addr.addr_spec)
    return out
