"""Raw inbound mail bytes to an `Inbound` record: headers, kind, new text, bounce, return date."""

from __future__ import annotations

import email.parser
import email.policy
import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from email.message import Message

from mailflow.inbound import bounces, classify, ses
from mailflow.inbound.bounces import Bounce, Recipient
from mailflow.inbound.headers import Headers, addresses, message_ids, printable, sent_date
from mailflow.inbound.htmltext import html_to_text
from mailflow.inbound.mime import (
    Parts,
    collect_parts,
    part_text,
    report_text,
    safe_content_type,
    safe_param,
)
from mailflow.inbound.replytext import extract_reply
from mailflow.inbound.returndate import find_return_date

__all__ = ["Bounce", "Inbound", "Recipient", "parse_inbound"]


@dataclass(frozen=True)
class Inbound:
    """One received message, reduced to what mailflow decides on."""

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_addr: str | None
    from_name: str | None
    to: tuple[str, ...]
    subject: str
    date: datetime | None
    kind: str
    kind_reason: str
    text: str
    full_text: str
    bounce: Bounce | None
    return_date: date | None
    attachments: tuple[str, ...]
    problems: tuple[str, ...]
    # every recipient a delivery report names (failed, delayed or delivered), with its status
    delivery: tuple[Recipient, ...] = ()
    # the Message-ID of the message a report (bounce, delay, success, ARF) is about
    original_message_id: str | None = None
    # every address of every From header: more than one is a forgery's trick (RFC 5322 3.6.2
    # wants a single author here), so nothing is trusted on the first one alone
    from_addrs: tuple[str, ...] = ()

    @property
    def unreadable(self) -> bool:
        """True when the MIME could not be read: kept whole and flagged, never dropped."""
        return self.kind == classify.UNREADABLE


def _body_texts(parts: Parts, problems: list[str]) -> tuple[str, str]:
    """(new text, full text) from the first text/plain part, else from the HTML part."""
    if parts.plain:
        full = part_text(parts.plain[0], problems)
        if safe_param(parts.plain[0], "format") == "flowed":
            full = _unflow(full, safe_param(parts.plain[0], "delsp") == "yes")
        return extract_reply(full), full.strip()
    if parts.html:
        html = part_text(parts.html[0], problems)
        return extract_reply(html_to_text(html, drop_quotes=True)), html_to_text(html)
    return "", ""


def _unflow(text: str, delsp: bool) -> str:
    """Join RFC 3676 format=flowed lines: a trailing space continues the paragraph.

    A paragraph also ends where the quote depth changes (RFC 3676 4.5), so a quoted line that
    ends in a space is never joined with the sender's unquoted line below it.
    """
    out: list[tuple[int, str]] = []
    joining = False
    for raw in text.replace("\r\n", "\n").split("\n"):
        stripped = raw.lstrip(">")
        depth = len(raw) - len(stripped)
        line = stripped[1:] if stripped.startswith(" ") else stripped  # space-stuffing
        if joining and out and out[-1][0] == depth:
            out[-1] = (depth, out[-1][1] + line)
        else:
            out.append((depth, line))
        joining = line.endswith(" ") and line != "-- "
        if joining and delsp:
            out[-1] = (depth, out[-1][1][:-1])
    return "\n".join((">" * depth + " " if depth else "") + line for depth, line in out)


def _delivery(raw: bytes, parts: Parts, headers: Headers, full_text: str, subject: str,
              problems: list[str]) -> tuple[list[Recipient], str | None]:
    """Recipients of a delivery report and the returned original's Message-ID."""
    found: list[Recipient] = []
    if parts.delivery_status is not None:
        found = bounces.delivery_status_recipients(report_text(parts.delivery_status, problems))
    own = {a for _, a in addresses(headers.all_raw("from") + headers.all_raw("to")
                                    + headers.all_raw("delivered-to"), headers)}
    own |= bounces.message_id_addresses(raw)  # "<id@host>" of the returned message is no one
    if not found:
        found = bounces.parse_plain_bounce(
            full_text, exclude=own, known=bounces.flufl_recipients(raw) - own,
            delayed=bounces.is_delay(subject, full_text))
    elif any(r.status is None or r.status.endswith(".0.0") for r in found):
        # a DSN that says only "failed": its human-readable part often says why
        told = {r.address: r.status for r in bounces.parse_plain_bounce(full_text, exclude=own)}
        found = [replace(r, status=bounces.better_status(r.status, told.get(r.address)))
                 for r in found]
    return found, _original(parts, full_text, problems)


def _original(parts: Parts, full_text: str, problems: list[str]) -> str | None:
    """The Message-ID of the returned message: its headers part, else the report's text."""
    original = None
    if parts.returned is not None:
        original = bounces.original_message_id(report_text(parts.returned, problems))
    return original or bounces.original_message_id(full_text)


def _report_kind(message: Message, parts: Parts, headers: Headers, from_addr: str | None,
                 subject: str, full_text: str) -> tuple[str, str] | None:
    """The kind of a report from a mail system (bounce, delay, delivered, feedback), or None."""
    report_type = (safe_param(message, "report-type") or "").lower()
    if parts.feedback is not None or report_type == "feedback-report":
        return classify.REPORT, "feedback report (ARF, RFC 5965)"
    if parts.returned is not None and _COMPLAINT.match(subject):
        # Hotmail's older complaint loop: the reported message attached, no ARF part
        return classify.REPORT, "abuse complaint with the reported message attached"
    system = bounces.is_mail_system(headers.raw("from"), from_addr, headers.raw("return-path"))
    if parts.delivery_status is not None and (system or report_type == "delivery-status"):
        return classify.BOUNCE, "DSN report-type=delivery-status"  # refined by its actions
    if system and bounces.is_failure_notice(subject, full_text):
        if bounces.is_delay(subject, full_text):
            return classify.DELAY, f"delay notice from {from_addr or 'a mail system'}"
        return classify.BOUNCE, f"failure notice from {from_addr or 'null sender'}"
    return None


def _by_actions(kind: str, reason: str, found: list[Recipient]) -> tuple[str, str]:
    """A DSN is a bounce if any recipient failed, else a delay or a success notice."""
    actions = {r.action for r in found}
    if kind != classify.BOUNCE or not actions or bounces.FAILED in actions:
        return kind, reason
    if bounces.DELAYED in actions:
        return classify.DELAY, "DSN: delivery delayed, still being tried"
    return classify.DELIVERED, "DSN: delivered"


def _kind(
    message: Message, parts: Parts, headers: Headers, from_addr: str | None, subject: str,
    text: str, full_text: str,
) -> tuple[str, str]:
    report = _report_kind(message, parts, headers, from_addr, subject, full_text)
    if report:
        return report
    reason = classify.program_opt_out_reason(headers.flat(), subject)
    if reason:
        return classify.UNSUBSCRIBE, reason
    reason = classify.auto_reply_reason(headers.flat(), subject)
    if reason:
        return classify.AUTO_REPLY, reason
    reason = classify.opt_out_reason(text)
    if reason:
        return classify.UNSUBSCRIBE, reason
    return classify.HUMAN, "no automatic-mail marker"


_BOUNDARY_LINE = re.compile(rb"^--([^\s-][^\s]{0,69}?)(?:--)?\s*$", re.MULTILINE)
_BOUNDARY_PARAM = re.compile(rb'(boundary\s*=\s*)(?:"[^"]*"|[^;\s]+)', re.IGNORECASE)


def _repair_boundary(raw: bytes, message: Message, problems: list[str]) -> Message:
    """Re-parse a multipart whose declared boundary never occurs, using the one the body uses."""
    if not safe_content_type(message).startswith("multipart/"):
        return message
    payload = message.get_payload()
    if isinstance(payload, list) and payload:
        return message
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    found = _BOUNDARY_LINE.search(body)
    if not sep or not found:
        return message
    fixed = _BOUNDARY_PARAM.sub(lambda m: m.group(1) + b'"' + found.group(1) + b'"', head, 1)
    problems.append("declared MIME boundary not found; used the one in the body")
    return email.parser.BytesParser(policy=email.policy.default).parsebytes(fixed + sep + body)


def _envelope(headers: Headers, problems: list[str]) -> dict:
    """The header fields of an Inbound, read from a message's top-level headers."""
    senders = addresses(headers.all_raw("from"), headers)
    if not senders:
        problems.append("missing or unparseable From header")
    from_name, from_addr = senders[0] if senders else (None, None)
    authors = tuple(dict.fromkeys(addr for _, addr in senders))
    if len(authors) > 1:
        problems.append(f"{len(authors)} From addresses: {', '.join(authors)[:200]}")
    recipients = addresses(
        headers.all_raw("to") + headers.all_raw("cc") + headers.all_raw("delivered-to"), headers
    )
    own_ids = message_ids(headers.raw("message-id"))
    if not own_ids:
        problems.append("missing Message-ID header")
    return {
        "message_id": own_ids[0] if own_ids else None,
        "in_reply_to": message_ids(headers.raw("in-reply-to")),
        "references": message_ids(" ".join(headers.all_raw("references"))),
        "from_addr": from_addr,
        "from_name": from_name or None,
        "from_addrs": authors,
        "to": tuple(dict.fromkeys(addr for _, addr in recipients)),
        "subject": headers.text("subject"),
        "date": sent_date(headers),
    }


def _parse(raw: bytes, today: date | None, problems: list[str]) -> Inbound:
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    message = _repair_boundary(raw, message, problems)
    for defect in getattr(message, "defects", [])[:5]:
        problems.append(f"MIME defect: {type(defect).__name__}")
    headers = Headers(message, problems)
    envelope = _envelope(headers, problems)
    from_addr, subject, sent = envelope["from_addr"], envelope["subject"], envelope["date"]
    parts = collect_parts(message)
    text, full_text = (printable(t) for t in _body_texts(parts, problems))
    kind, reason = _kind(message, parts, headers, from_addr, subject, text, full_text)
    delivery: list[Recipient] = []
    bounce, original = None, None
    notification = ses.parse_notification(from_addr, full_text)
    if notification:
        kind, delivery, original = notification
        kind, reason = _by_actions(kind, f"Amazon SES {kind} notification", delivery)
        bounce = bounces.summary(delivery, original) if kind == classify.BOUNCE else None
    elif kind in (classify.BOUNCE, classify.DELAY):
        delivery, original = _delivery(raw, parts, headers, full_text, subject, problems)
        kind, reason = _by_actions(kind, reason, delivery)
        bounce = bounces.summary(delivery, original) if kind == classify.BOUNCE else None
    elif kind == classify.REPORT:
        original = _original(parts, full_text, problems)
    anchor = today or (sent.date() if sent else None)
    returning = find_return_date(full_text, anchor) if kind == classify.AUTO_REPLY else None
    return Inbound(
        **envelope, kind=kind, kind_reason=reason, text=text, full_text=full_text,
        bounce=bounce, return_date=returning, attachments=tuple(parts.attachments),
        problems=tuple(dict.fromkeys(problems)), delivery=tuple(delivery),
        original_message_id=original,
    )


def _unreadable(raw: bytes, problems: list[str]) -> Inbound:
    """What can be read of a message whose MIME cannot: its top-level headers, kept and flagged.

    Matching needs only In-Reply-To, References, From and Subject, so the reply can still be tied
    to what it answers; its raw bytes are kept by the poller for the consultant to read.
    """
    envelope: dict = {"message_id": None, "in_reply_to": (), "references": (), "from_addr": None,
                      "from_name": None, "from_addrs": (), "to": (), "subject": "", "date": None}
    try:
        head = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
        envelope = _envelope(Headers(head, problems), problems)
    except Exception as exc:  # noqa: BLE001 - even the headers may be beyond reading
        problems.append(f"headers unreadable: {type(exc).__name__}")
    return Inbound(
        **envelope, kind=classify.UNREADABLE,
        kind_reason="MIME could not be read: kept whole for a person to read", text="",
        full_text=printable(raw[:MAX_FALLBACK_TEXT].decode("utf-8", "replace")), bounce=None,
        return_date=None, attachments=(), problems=tuple(dict.fromkeys(problems)),
    )


def _nesting(raw: bytes) -> int:
    """How many multipart boundaries the message declares (its parts can nest that deep)."""
    return len(_BOUNDARY_PARAM.findall(raw))


def parse_inbound(raw: bytes, today: date | None = None) -> Inbound:
    """Parse raw message bytes into an Inbound; never raises, problems are listed instead.

    A message whose MIME cannot be read comes back as kind 'unreadable' with the headers that
    could be read (issue 12: never drop a message that might be a reply).
    """
    problems: list[str] = []
    declared = _nesting(raw)
    if declared > MAX_BOUNDARIES:
        # the email package recurses once per nested part: refuse before it runs out of stack
        problems.append(f"unreadable MIME: {declared} multipart boundaries declared")
        return _unreadable(raw, problems)
    try:
        return _parse(raw, today, problems)
    except Exception as exc:  # noqa: BLE001 - the poller must never die on one bad message
        detail = " ".join(str(exc).split())
        problems.append(f"unparseable message: {type(exc).__name__}: {detail}"[:200])
        return _unreadable(raw, problems)


_COMPLAINT = re.compile(r"\s*complaint\s+about\s+message\s+from\b", re.IGNORECASE)
MAX_FALLBACK_TEXT = 100_000
MAX_BOUNDARIES = 200  # no real reply declares more; 1,000 nested levels exhaust the stack
