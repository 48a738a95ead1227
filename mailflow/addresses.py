"""Email addresses as they travel: parsed, domains IDNA-encoded, non-ASCII local parts told.

A domain such as `bücher.example` goes on the wire as punycode (`xn--bcher-kva.example`), in
headers and envelope alike; a non-ASCII local part (`jürgen@...`) cannot be encoded at all
and needs a server that offers SMTPUTF8 (RFC 6531), which only the transport can know.
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.headerregistry import Address
from functools import lru_cache

import idna

# a display name longer than this is refused: one long word cannot be folded below SMTP's
# 998-character line limit (RFC 5322 2.1.1), and servers refuse the message ("line too long")
MAX_NAME = 200
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


def idna_domain(domain: str) -> str:
    """A domain as it goes on the wire: IDNA 2008 (UTS 46) A-labels; ValueError if invalid."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as err:
        raise ValueError(f"{domain!r} is not a valid international domain ({err})") from err


@lru_cache(maxsize=4096)  # pure, and parsed for every header and envelope of every message
def split_address(addr_spec: str) -> tuple[str, str]:
    """(local part, wire domain) of a bare address; ValueError when it is not one."""
    local, at, domain = addr_spec.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{addr_spec!r} is not an email address")
    # RFC 6531 extends the local part's atext with any UTF-8 character: check the syntax
    # with those stood in for by an ASCII letter, which the parser accepts
    try:
        parsed = Address(addr_spec=_NON_ASCII.sub("a", local) + "@x.example")
    except (ValueError, IndexError, HeaderParseError) as err:
        raise ValueError(f"{addr_spec!r} is not an email address") from err
    if not parsed.username:
        raise ValueError(f"{addr_spec!r} is not an email address")
    wire = idna_domain(domain)
    if not _DOMAIN.fullmatch(wire):
        raise ValueError(f"{addr_spec!r} has an invalid domain")
    return local, wire


def envelope_address(addr_spec: str) -> tuple[str, bool]:
    """An address for MAIL FROM/RCPT TO, domain punycoded; and whether it needs SMTPUTF8."""
    local, domain = split_address(addr_spec)
    return f"{local}@{domain}", not local.isascii()
