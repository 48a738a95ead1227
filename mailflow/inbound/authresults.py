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


def trusted_results(raw: bytes, authserv_id: str) -> list[tuple[str, str, str]]:
    """(method, result, domain) triples, lower-case, from the trusted server's headers only.

    The domain is DKIM's header.d (or header.i's domain), DMARC's header.from; "" if absent.
    """
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
    out: list[tuple[str, str, str]] = []
    for value in headers.get_all("Authentication-Results") or ():
        text = " ".join(str(value).split())
        try:
            parsed = authres.AuthenticationResultsHeader.parse(
                f"Authentication-Results: {text}")
        except Exception:  # noqa: BLE001 - a malformed header proves nothing either way
            continue
        if (parsed.authserv_id or "").lower() != authserv_id.lower():
            continue
        for r in parsed.results:
            props = {(p.type or "").lower() + "." + (p.name or "").lower(): (p.value or "")
                     for p in r.properties}
            domain = (props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
                      or props.get("header.from") or "")
            out.append(((r.method or "").lower(), (r.result or "").lower(), domain.lower()))
    return out


def _aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489 3.1): the same domain, or one a parent of the other."""
    return bool(domain) and (domain == from_domain or from_domain.endswith("." + domain)
                             or domain.endswith("." + from_domain))


def _conflict(results: list[tuple[str, str, str]]) -> str:
    """`method=a/b` when the server's headers give one method and domain two verdicts.

    The server writes one verdict per check; a sender can write a second header carrying the
    server's name (RFC 8601 section 5 asks servers to remove those, and not all do), so a pass
    beside another verdict for the same check proves nothing.
    """
    seen: dict[tuple[str, str], set[str]] = {}
    for method, result, domain in results:
        if method in ("dkim", "dmarc"):
            seen.setdefault((method, domain if method == "dkim" else ""), set()).add(result)
    unsigned = seen.get(("dkim", ""), set()) - {"pass"}  # "dkim=none": no signature at all
    for (method, domain), verdicts in seen.items():
        if method == "dkim" and domain and "pass" in verdicts:
            verdicts = verdicts | unsigned
        if "pass" in verdicts and len(verdicts) > 1:
            return f"{method}={'/'.join(sorted(verdicts))}"
    return ""


def passed_dkim_or_dmarc(raw: bytes, authserv_id: str | None,
                         from_domain: str | None = None) -> tuple[bool, str]:
    """Whether the trusted server says the message passed DKIM or DMARC, and why not.

    With no authserv_id configured there is nothing to believe, and nothing is required.
    A dmarc=fail from the trusted server refuses, whatever else passed; a DKIM pass counts
    only for a signing domain aligned with `from_domain` (when given): anyone can sign for
    their own domain.
    """
    if not authserv_id:
        return True, ""
    results = trusted_results(raw, authserv_id)
    if not results:
        return False, f"no Authentication-Results from {authserv_id}"
    if any(m == "dmarc" and r == "fail" for m, r, _ in results):
        return False, f"{authserv_id} says dmarc=fail"
    conflict = _conflict(results)
    if conflict:
        return False, f"{authserv_id}'s headers disagree ({conflict}): one of them is forged"
    for method, result, domain in results:
        if result != "pass":
            continue
        if method == "dmarc" or method == "dkim" and (
                from_domain is None or _aligned(domain, from_domain.lower())):
            return True, ""
    shown = ", ".join(f"{m}={r}" + (f" ({d})" if d else "") for m, r, d in results
                      if m in ("dkim", "dmarc", "spf")) or "none"
    return False, f"{authserv_id} found no DKIM or DMARC pass for this sender ({shown})"
