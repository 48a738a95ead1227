"""Header fields of a received message, decoded defensively (8-bit bytes, encoded words)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from mailflow.inbound.mime import decode_bytes

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
MAX_DECODED = 16_384  # characters of one header decoded; a real Subject or name is far shorter


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
    if len(value) > MAX_DECODED:
        # the library's decoder is quadratic in encoded words: a 1 MB Subject took a minute
        problems.append(f"{name} header of {len(value)} characters: the first {MAX_DECODED} read")
        value = value[:MAX_DECODED].rsplit(" ", 1)[0]
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


# Terminal escape sequences (CSI colours and cursor moves, OSC titles and clipboard writes):
# a reply's text is printed in the consultant's terminal, where these would act, not show.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?"
                      r"|\x9b[0-?]*[ -/]*[@-~]|\x9d[^\x07\x9c]*[\x07\x9c]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text a sender wrote, without terminal escape sequences and control characters
    (line breaks and tabs stay); what was removed is still in the kept raw message."""
    if not _CONTROLS.search(text):
        return text
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def _no_breaks(value: str) -> str:
    return re.sub(r"[\r\n]+[ \t]*", " ", value).replace("\x00", "").strip()


class Headers:
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
        """A header as readable text (encoded words decoded, control characters removed)."""
        return printable(_no_breaks(_decode_words(self.raw(name), name, self.problems)))

    def flat(self) -> dict[str, str]:
        """First value of every header by lower-case name (for classification rules)."""
        return {name: self.raw(name) for name in self.values}


def message_ids(value: str) -> tuple[str, ...]:
    """Message-IDs in a header value, each in its canonical <...> form."""
    ids = tuple(_MESSAGE_ID.findall(value))
    if ids or not value.strip():
        return ids
    # Some programs drop the angle brackets; keep one bare token in the canonical form.
    token = value.split()[0].strip("<>")
    return (f"<{token}>",) if "@" in token else ()


def addresses(values: list[str], headers: Headers) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs of address headers; bad ones are skipped."""
    try:
        # Split before decoding: a decoded display name may itself contain commas or quotes.
        pairs = getaddresses(values)
    except Exception:  # noqa: BLE001
        headers.problems.append("unparseable address header")
        return []
    return [
        (printable(_decode_words(name, "address", headers.problems)).strip(),
         addr.strip().lower())
        for name, addr in pairs
        # an address with a control character is no address: cleaning it could make it
        # a contact's ("mj\x01@northwind.example"), and printing it would reach the terminal
        if "@" in addr and printable(addr) == addr
    ]


def sent_date(headers: Headers) -> datetime | None:
    """The Date header as an aware UTC datetime, None (and a problem) when missing or bad."""
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
