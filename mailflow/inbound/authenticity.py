"""Who really sent a message: the trusted server's Authentication-Results, mail-system senders.

Only an `Authentication-Results` header whose authserv-id is the consultant's own server
(`[imap] authserv_id`) counts: anyone can write such a header into a message they send, so a
header from any other server proves nothing (RFC 8601 section 5). The header is parsed with
the `authres` library, not by hand.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from dataclasses import dataclass

import authres

from mailflow.inbound import bounces

# the methods the issue names; a failure of any one means "never act on this automatically"
CHECKED_METHODS = frozenset({"dkim", "spf", "dmarc"})
# spf softfail is "probably not authorized" (RFC 7208 2.6.5); the others have no softfail
FAILING_RESULTS = frozenset({"fail", "softfail"})
_DAEMON = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|mailer|"
                     r"microsoftexchange[0-9a-f]*)(?:@|$)", re.IGNORECASE)


@dataclass(frozen=True)
class TrustHeaders:
    """The headers that tell who sent a message, read straight from its raw bytes."""

    auth_results: tuple[str, ...]  # every Authentication-Results value, top first
    return_path: str | None  # "<>" for a null sender (bounces, RFC 5321 4.5.5)
    from_field: str = ""  # the From header as written ("MAILER-DAEMON <>", ...)


def read_trust_headers(raw: bytes) -> TrustHeaders:
    """The Authentication-Results and Return-Path headers of a raw message (never raises)."""
    try:
        head = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        values = [str(v) for v in head.get_all("Authentication-Results") or []]
        return_path = head.get("Return-Path")
        from_field = " ".join(str(head.get("From") or "").split())
    except Exception:  # noqa: BLE001 - unreadable headers prove nothing; the caller flags it
        return TrustHeaders((), None)
    unfolded = tuple(" ".join(v.split()) for v in values)
    return TrustHeaders(unfolded, " ".join(str(return_path).split()) if return_path else None,
                        from_field)


def _authserv_id(value: str) -> str:
    """The first token of a header value: the authserv-id, comments and version aside."""
    token = re.sub(r"\([^()]*\)", " ", value).strip().split(";", 1)[0].split()
    return token[0].lower() if token else ""


def auth_failures(values: tuple[str, ...], authserv_id: str | None) -> tuple[str, ...]:
    """`method=result` of each dkim/spf/dmarc failure the trusted server reported.

    A header the trusted server wrote that cannot be read counts as a failure: it was
    meant to say something, and a message is trusted only when nothing says otherwise.
    """
    if not authserv_id:
        return ()
    wanted = authserv_id.strip().lower()
    found: list[str] = []
    for value in values:
        if _authserv_id(value) != wanted:
            continue
        try:
            header = parse_header(value)
        except authres.AuthResError as err:
            found.append(f"unreadable Authentication-Results ({str(err)[:60]})")
            continue
        except Exception as err:  # noqa: BLE001 - the library on hostile input
            found.append(f"unreadable Authentication-Results ({type(err).__name__})")
            continue
        for result in header.results:
            # authres yields a method-less result for a stray "none" among real ones
            method = str(getattr(result, "method", "") or "").lower()
            outcome = str(getattr(result, "result", "") or "").lower()
            if method in CHECKED_METHODS and outcome in FAILING_RESULTS:
                found.append(f"{method}={outcome}")
    return tuple(dict.fromkeys(found))


def parse_header(value: str) -> authres.AuthenticationResultsHeader:
    """One header value parsed by authres, after a retry without stray semicolons.

    Yahoo and others end the header with ';' (or write ';;'), which RFC 8601's grammar does
    not allow and authres refuses; nothing else is ever rewritten.
    """
    try:
        return authres.AuthenticationResultsHeader.parse_value(value)
    except authres.AuthResError:
        cleaned = re.sub(r";(\s*;)+", ";", value).strip().rstrip(";").strip()
        if cleaned == value:
            raise
        return authres.AuthenticationResultsHeader.parse_value(cleaned)


def is_mail_system(from_addr: str | None, return_path: str | None, from_field: str = "") -> bool:
    """Whether a message comes from a mail system: a null sender or a mailer daemon.

    The inbound classifier's notion (daemon names such as "Mail Delivery System", a From of
    "MAILER-DAEMON <>") counts too, so that what it calls a bounce and what may act agree.
    """
    if from_field and bounces.is_mail_system(from_field, from_addr, return_path or ""):
        return True
    if return_path is not None:
        envelope = return_path.strip().strip("<>").strip()
        # "<>" is the null sender; Sendmail writes "<MAILER-DAEMON>" or "<MAILER-DAEMON@host>"
        if not envelope or _DAEMON.match(envelope):
            return True
    return bool(from_addr and _DAEMON.match(from_addr.strip()))
