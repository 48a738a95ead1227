"""Reading a large message by its BODYSTRUCTURE: only the parts a reply is read from.

A 40 MB reply is mostly its attachment. What mailflow decides on is the header, the text and
HTML parts, and a report's delivery-status and returned headers (RFC 3464, RFC 5965). This
module plans the FETCH items for those (plus every part's MIME header, so attachment names
are still known) and puts the answers back together as a small message with the same MIME
tree, attachments left empty, for the ordinary parser. The whole message goes to disk in
chunks elsewhere (Mailbox.copy_raw); nothing here holds more than the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

WHOLE_MAX = 64 * 1024  # a message up to this size is read whole, in the poll's batch FETCH
TEXT_MAX = 1024 * 1024  # a text part is read up to this many bytes
CHUNK = 1024 * 1024  # the raw message is copied to disk in chunks of this size
# A message of thousands of parts (one line each costs nothing to send) must not stop the
# poll: Dovecot refuses a FETCH line over 64 KiB, so the items go in groups, and only the
# first MAX_PARTS parts are read at all (the whole message is still kept on disk).
MAX_PARTS = 1000
ITEMS_PER_FETCH = 300

# what a reply or a report is read from (mime.collect_parts); everything else is skipped
_READ = {"text/plain", "text/html", "message/delivery-status",
         "message/global-delivery-status", "message/feedback-report", "text/rfc822-headers",
         "message/rfc822-headers", "message/global-headers"}
_RETURNED = {"message/rfc822", "message/global"}


@dataclass
class Part:
    """One node of the MIME tree as BODYSTRUCTURE describes it."""

    path: str  # IMAP part specifier: "", "1", "2.1" ...
    ctype: str
    size: int = 0
    boundary: bytes | None = None
    children: list[Part] = field(default_factory=list)

    @property
    def multipart(self) -> bool:
        """Whether this node is a multipart/* container."""
        return self.ctype.startswith("multipart/")


def _text(value: object) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value or "")


def _param(params: object, name: str) -> bytes | None:
    if not isinstance(params, tuple | list):
        return None
    for key, value in zip(params[::2], params[1::2], strict=False):
        if _text(key).lower() == name and isinstance(value, bytes):
            return value
    return None


def read_structure(body: Sequence, path: str = "") -> Part:
    """imapclient's BodyData (nested tuples) as a tree of Parts."""
    if body and isinstance(body[0], list):  # multipart: ([children], subtype, params, ...)
        node = Part(path, "multipart/" + _text(body[1]).lower(),
                    boundary=_param(body[2] if len(body) > 2 else None, "boundary"))
        node.children = [read_structure(child, f"{path}.{n}" if path else str(n))
                         for n, child in enumerate(body[0], start=1)]
        return node
    size = body[6] if len(body) > 6 and isinstance(body[6], int) else 0
    return Part(path or "1", f"{_text(body[0])}/{_text(body[1])}".lower(), size)


def fetch_items(root: Part) -> list[str]:
    """The FETCH items that read a message without its attachments (BODY.PEEK: never \\Seen)."""
    items = ["BODY.PEEK[HEADER]"]
    if not root.multipart or not usable(root):
        # a multipart that names no boundary cannot be rebuilt part by part: its first MiB
        # goes to the parser, which finds the boundary the body really uses
        if root.ctype in _READ or root.multipart:
            items.append(f"BODY.PEEK[TEXT]<0.{TEXT_MAX}>")
        return items
    for part in _walk(root)[:MAX_PARTS]:
        items.append(f"BODY.PEEK[{part.path}.MIME]")
        if part.ctype in _READ:
            items.append(f"BODY.PEEK[{part.path}]<0.{TEXT_MAX}>")
        elif part.ctype in _RETURNED:
            # the returned message of a bounce: its headers say which message it was
            items.append(f"BODY.PEEK[{part.path}.HEADER]")
    return items


def _walk(node: Part) -> list[Part]:
    out = []
    for child in node.children:
        out.append(child)
        if child.multipart:
            out.extend(_walk(child))
    return out


def usable(root: Part) -> bool:
    """Whether the tree can be rebuilt part by part: every multipart names its boundary."""
    return not root.multipart or (root.boundary is not None and all(
        usable(child) for child in root.children))


def _header(data: bytes) -> bytes:
    """A header block ending in exactly one empty line."""
    return data.rstrip(b"\r\n") + b"\r\n\r\n" if data.strip() else b"\r\n"


def assemble(root: Part, got: dict[bytes, bytes]) -> tuple[bytes, list[str]]:
    """The message rebuilt from the fetched items; notes on what was cut short."""
    notes: list[str] = []
    head = _header(got.get(b"BODY[HEADER]", b""))
    if not root.multipart or not usable(root):
        body = got.get(b"BODY[TEXT]<0>", b"")
        if len(body) >= TEXT_MAX:
            notes.append(f"its {root.ctype} body was read up to {TEXT_MAX // 1024} KiB")
        return head + body, notes
    parts = len(_walk(root))
    if parts > MAX_PARTS:
        notes.append(f"only the first {MAX_PARTS} of its {parts} MIME parts were read")
    return head + _body(root, got, notes), notes


def in_groups(items: list[str]) -> list[list[str]]:
    """FETCH items split so that no command line nears a server's limit."""
    return [items[i:i + ITEMS_PER_FETCH] for i in range(0, len(items), ITEMS_PER_FETCH)]


def _body(node: Part, got: dict[bytes, bytes], notes: list[str]) -> bytes:
    assert node.boundary is not None  # checked by usable()
    out = []
    for child in node.children:
        mime = _header(got.get(f"BODY[{child.path}.MIME]".encode(), b""))
        if child.multipart:
            content = _body(child, got, notes)
        elif child.ctype in _READ:
            content = got.get(f"BODY[{child.path}]<0>".encode(), b"")
            if child.size > TEXT_MAX:
                notes.append(f"part {child.path} ({child.ctype}) was read up to "
                             f"{TEXT_MAX // 1024} KiB")
        elif child.ctype in _RETURNED:
            content = _header(got.get(f"BODY[{child.path}.HEADER]".encode(), b""))
        else:
            content = b""  # an attachment: its name is in the MIME header, its bytes on disk
        out.append(b"--" + node.boundary + b"\r\n" + mime + content + b"\r\n")
    return b"".join(out) + b"--" + node.boundary + b"--\r\n"
