"""Raw inbound mail bytes to an `Inbound` record: headers, kind, new text, bounce, return date."""

from __future__ import annotations

import email.parser
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from mailflow.inbound import bounces, classify, ses
from mailflow.inbound.bounces import Bounce, Recipient
from mailflow.inbound.htmltext import html_to_text
from mailflow.inbound.mime import (
    Parts,
    collect_parts,
    decode_bytes,
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

    @property
    def unreadable(self) -> bool:
        """True when the MIME could not be read: kept whole and flagged, never dropped."""
        return self.kind == classify.UNREADABLE


_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def _unsurrogate(value: str, name: str, problems: list[str]) -> str:
    """Header text with raw 8-bit bytes (kept by the parser as surrogates) decoded."""
    if not re.search(r"[\udc80-\udcff]", value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(f"8-bit bytes in {name} header, decoded as cp1252")
        return data.decode("cp1252", "replace")


def _decode_words(value: str, name: str, problems: list[str]) -> str:
    """RFC 2047 encoded words decoded, each with the charset fallbacks."""
    if not _ENCODED_WORD.search(value):
        return value
    try:
        chunks = decode_header(value)
    except Exception:  # noqa: BLE001 - malformed encoded words: keep the raw text
        problems.append(f"malformed encoded words in {name} header")
        return value
    text = []
    for chunk, charset in chunks:
        text.append(
            decode_bytes(chunk, charset, problems) if isinstance(chunk, bytes) else str(chunk)
        )
    return "".join(text)


def _no_breaks(value: str) -> str:
    return re.sub(r"[\r\n]+[ \t]*", " ", value).replace("\x00", "").strip()


class _Headers:
    """Raw header values of one message, decoded on demand without the policy's parsers."""

    def __init__(self, message: Message, problems: list[str]) -> None:
        self.problems = problems
        self.values: dict[str, list[str]] = {}
        try:
            items = list(message.raw_items())
        except Exception:  # noqa: BLE001
            items = []
            problems.append("headers unreadable")
        for name, value in items:
            self.values.setdefault(str(name).strip().lower(), []).append(str(value))

    def raw(self, name: str) -> str:
        """The first value of a header, unfolded, 8-bit bytes decoded; '' when missing."""
        values = self.values.get(name.lower())
        return _unsurrogate(_no_breaks(values[0]), name, self.problems) if values else ""

    def all_raw(self, name: str) -> list[str]:
        return [
            _unsurrogate(_no_breaks(v), name, self.problems)
            for v in self.values.get(name.lower(), [])
        ]

    def text(self, name: str) -> str:
        """A header as readable text (encoded words decoded)."""
        return _no_breaks(_decode_words(self.raw(name), name, self.problems))

    def flat(self) -> dict[str, str]:
        """First value of every header by lower-case name (for classification rules)."""
        return {name: self.raw(name) for name in self.values}


def _message_ids(value: str) -> tuple[str, ...]:
    ids = tuple(_MESSAGE_ID.findall(value))
    if ids or not value.strip():
        return ids
    # Some programs drop the angle brackets; keep one bare token in the canonical form.
    token = value.split()[0].strip("<>")
    return (f"<{token}>",) if "@" in token else ()


def _addresses(values: list[str], headers: _Headers) -> list[tuple[str, str]]:
    try:
        # Split before decoding: a decoded display name may itself contain commas or quotes.
        pairs = getaddresses(values)
    except Exception:  # noqa: BLE001
        headers.problems.append("unparseable address header")
        return []
    return [
        (_decode_words(name, "address", headers.problems).strip(), addr.strip().lower())
        for name, addr in pairs
        if "@" in addr
    ]


def _date(headers: _Headers) -> datetime | None:
    value = headers.raw("date")
    if not value:
        headers.problems.append("missing Date header")
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        headers.problems.append(f"unparseable Date header {value[:60]!r}")
        return None
    if parsed.tzinfo is None:  # "-0000": the sender did not know its zone; UTC is the promise
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


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


def _delivery(raw: bytes, parts: Parts, headers: _Headers, full_text: str, subject: str,
              problems: list[str]) -> tuple[list[Recipient], str | None]:
    """Recipients of a delivery report and the returned original's Message-ID."""
    found: list[Recipient] = []
    if parts.delivery_status is not None:
        found = bounces.delivery_status_recipients(report_text(parts.delivery_status, problems))
    if not found:
        own = {a for _, a in _addresses(headers.all_raw("from") + headers.all_raw("to")
                                        + headers.all_raw("delivered-to"), headers)}
        found = bounces.parse_plain_bounce(
            full_text, exclude=own, known=bounces.flufl_recipients(raw) - own,
            delayed=bounces.is_delay(subject, full_text))
    original = None
    if parts.returned is not None:
        original = bounces.original_message_id(report_text(parts.returned, problems))
    return found, original or bounces.original_message_id(full_text)


def _report_kind(message: Message, parts: Parts, headers: _Headers, from_addr: str | None,
                 subject: str, full_text: str) -> tuple[str, str] | None:
    """The kind of a report from a mail system (bounce, delay, delivered, feedback), or None."""
    report_type = (safe_param(message, "report-type") or "").lower()
    if parts.feedback is not None or report_type == "feedback-report":
        return classify.REPORT, "feedback report (ARF, RFC 5965)"
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
    message: Message, parts: Parts, headers: _Headers, from_addr: str | None, subject: str,
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


def _parse(raw: bytes, today: date | None, problems: list[str]) -> Inbound:
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    message = _repair_boundary(raw, message, problems)
    for defect in getattr(message, "defects", [])[:5]:
        problems.append(f"MIME defect: {type(defect).__name__}")
    headers = _Headers(message, problems)
    senders = _addresses(headers.all_raw("from"), headers)
    if not senders:
        problems.append("missing or unparseable From header")
    from_name, from_addr = senders[0] if senders else (None, None)
    recipients = _addresses(
        headers.all_raw("to") + headers.all_raw("cc") + headers.all_raw("delivered-to"), headers
    )
    message_ids = _message_ids(headers.raw("message-id"))
    if not message_ids:
        problems.append("missing Message-ID header")
    subject = headers.text("subject")
    sent = _date(headers)
    parts = collect_parts(message)
    text, full_text = _body_texts(parts, problems)
    kind, reason = _kind(message, parts, headers, from_addr, subject, text, full_text)
    delivery: list[Recipient] = []
    bounce = None
    notification = ses.parse_notification(from_addr, full_text)
    if notification:
        kind, delivery, original = notification
        kind, reason = _by_actions(kind, f"Amazon SES {kind} notification", delivery)
        bounce = bounces.summary(delivery, original) if kind == classify.BOUNCE else None
    elif kind in (classify.BOUNCE, classify.DELAY):
        delivery, original = _delivery(raw, parts, headers, full_text, subject, problems)
        kind, reason = _by_actions(kind, reason, delivery)
        bounce = bounces.summary(delivery, original) if kind == classify.BOUNCE else None
    anchor = today or (sent.date() if sent else None)
    returning = find_return_date(full_text, anchor) if kind == classify.AUTO_REPLY else None
    return Inbound(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=_message_ids(headers.raw("in-reply-to")),
        references=_message_ids(" ".join(headers.all_raw("references"))),
        from_addr=from_addr,
        from_name=from_name or None,
        to=tuple(dict.fromkeys(addr for _, addr in recipients)),
        subject=subject,
        date=sent,
        kind=kind,
        kind_reason=reason,
        text=text,
        full_text=full_text,
        bounce=bounce,
        return_date=returning,
        attachments=tuple(parts.attachments),
        problems=tuple(dict.fromkeys(problems)),
        delivery=tuple(delivery),
    )


def parse_inbound(raw: bytes, today: date | None = None) -> Inbound:
    """Parse raw message bytes into an Inbound; never raises, problems are listed instead."""
    problems: list[str] = []
    try:
        return _parse(raw, today, problems)
    except Exception as exc:  # noqa: BLE001 - the poller must never die on one bad message
        detail = " ".join(str(exc).split())
        problems.append(f"unparseable message: {type(exc).__name__}: {detail}"[:200])
        return Inbound(
            message_id=None, in_reply_to=(), references=(), from_addr=None, from_name=None,
            to=(), subject="", date=None, kind=classify.HUMAN,
            kind_reason="unparseable: kept for a person to read", text="",
            full_text=raw[:MAX_FALLBACK_TEXT].decode("utf-8", "replace"), bounce=None,
            return_date=None, attachments=(), problems=tuple(problems),
        )


MAX_FALLBACK_TEXT = 100_000
