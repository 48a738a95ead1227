"""Authentication-Results (RFC 8601) as added by the consultant's own mail server. Pure.

Only headers whose authserv-id is the configured `[imap] authserv_id` are believed: anyone can
write an Authentication-Results header into a message they send, and a receiving server is
expected to add its own (and remove forged ones carrying its id). Shared: the digest-reply
check uses it, and so can any other trust decision.
"""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import compat32

import authres


def trusted_results(raw: bytes, authserv_id: str) -> list[tuple[str, str]]:
    """(method, result) pairs, lower-case, from the trusted server's headers only."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
    out: list[tuple[str, str]] = []
    for value in headers.get_all("Authentication-Results") or ():
        text = " ".join(str(value).split())
        try:
            parsed = authres.AuthenticationResultsHeader.parse(
                f"Authentication-Results: {text}")
        except Exception:  # noqa: BLE001 - a malformed header proves nothing either way
            continue
        if (parsed.authserv_id or "").lower() != authserv_id.lower():
            continue
        out.extend(((r.method or "").lower(), (r.result or "").lower()) for r in parsed.results)
    return out


def passed_dkim_or_dmarc(raw: bytes, authserv_id: str | None) -> tuple[bool, str]:
    """Whether the trusted server says the message passed DKIM or DMARC, and why not.

    With no authserv_id configured there is nothing to believe, and nothing is required.
    A dmarc=fail from the trusted server refuses, whatever else passed.
    """
    if not authserv_id:
        return True, ""
    results = trusted_results(raw, authserv_id)
    if not results:
        return False, f"no Authentication-Results from {authserv_id}"
    if ("dmarc", "fail") in results:
        return False, f"{authserv_id} says dmarc=fail"
    if ("dkim", "pass") in results or ("dmarc", "pass") in results:
        return True, ""
    shown = ", ".join(f"{m}={r}" for m, r in results if m in ("dkim", "dmarc", "spf")) or "none"
    return False, f"{authserv_id} found no DKIM or DMARC pass ({shown})"
