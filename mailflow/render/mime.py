"""The wire bytes of a draft, written directly where that gives what the email package writes.

`build_message(...).as_bytes()` parses every header it is given back into a structure and
folds it again on output, which cost more than rendering the email's words (issue 18). Most
of mailflow's header lines (ASCII names and addresses, short enough not to fold) come out of
all that as plain `Name: value`, so `message_bytes` writes those itself; any other header (a
name to quote or encode, a line to fold) is folded by the package from the value build_message
gives it, once per distinct value; the two quoted-printable parts come from the package's own
encoder and boundary maker. A UTF-8 mailbox (another policy) or an attachment goes through
build_message whole. Proven byte for byte equal by tests/unit/test_mime_fast.py (the awkward
cases) and tests/unit/test_email_quality.py (the default playbook in every locale).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import sys
from email.generator import BytesGenerator
from email.generator import _fmt as _BOUNDARY_FORMAT  # the token, zero-padded
from email.headerregistry import Address
from email.utils import format_datetime

from mailflow.errors import RenderError
from mailflow.render.compose import POLICY, address, build_message, recipients

__all__ = ["message_bytes"]

# an RFC 5322 atom's characters and single spaces: a display name the package writes unquoted
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_MSG_ID = re.compile(r"<[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+@[A-Za-z0-9.-]+>")
# printable ASCII, single spaces between words, no encoded-word the package would decode
_PLAIN_TEXT = re.compile(r"[!-~]+(?: [!-~]+)*")
_PART_HEAD = ('Content-Type: text/{}; charset="utf-8"\r\n'
              "Content-Transfer-Encoding: quoted-printable\r\n")
_NEWLINES = re.compile(r"\r\n|\r|\n")


def message_bytes(*, subject: str, html: str, text: str, sender: dict, to: list[dict],
                  cc: list[dict], message_id: str, date: dt.datetime, where: str,
                  in_reply_to: str | None = None, references: tuple[str, ...] = (),
                  reply_to: str | None = None,
                  attachments: tuple[tuple[str, str, bytes], ...] = ()
                  ) -> tuple[bytes, list[str]]:
    """The message `build_message` makes, as bytes, and its envelope recipients (To, Cc)."""
    if any(c in subject for c in "\r\n"):
        raise RenderError(f"{where}: subject contains a line break")
    people = [address(p, f"{where}: contacts.to") for p in to]
    copied = [address(p, f"{where}: contacts.cc") for p in cc]
    author = address(sender, f"{where}: sender")
    reply = (address({"name": sender.get("name"), "email": reply_to}, f"{where}: reply-to")
             if reply_to else None)
    headers = _header_block(subject, author, people, copied, reply, message_id, date,
                            in_reply_to, references) if not attachments else None
    if headers is None:  # the email package decides how these are written
        email = build_message(subject=subject, html=html, text=text, sender=sender, to=to,
                              cc=cc, message_id=message_id, date=date, where=where,
                              in_reply_to=in_reply_to, references=references,
                              reply_to=reply_to, attachments=attachments)
        return email.as_bytes(), recipients(email)
    parts = [_PART_HEAD.format("plain") + "\r\n" + _qp(text),
             _PART_HEAD.format("html") + "MIME-Version: 1.0\r\n\r\n" + _qp(html)]
    encoded = [part.encode("ascii") for part in parts]
    boundary = _boundary(b"\r\n".join(encoded))
    body = (f"--{boundary}\r\n{parts[0]}\r\n--{boundary}\r\n{parts[1]}"
            f"\r\n--{boundary}--\r\n")
    head = (headers + "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n')
    envelope: list[str] = []
    for person in people + copied:
        if person.addr_spec not in envelope:
            envelope.append(person.addr_spec)
    return (head + body).encode("ascii"), envelope


def _boundary(text: bytes) -> str:
    """BytesGenerator._make_boundary(text): the same draw from `random`, the same boundary.

    The package compiles a regular expression for each new boundary to look for it in the
    text (a few hundred microseconds a message); a boundary that is not even a substring of the
    text cannot match it, so only one that is goes through the package's own check."""
    token = random.randrange(sys.maxsize)
    boundary = ("=" * 15) + (_BOUNDARY_FORMAT % token) + "=="
    if b"--" + boundary.encode("ascii") not in text:
        return boundary
    found, counter = boundary, 0
    while BytesGenerator._compile_re("^--" + re.escape(found) + "(--)?$",
                                     re.MULTILINE).search(text):
        found, counter = f"{boundary}.{counter}", counter + 1
    return found


def _header_block(subject: str, sender: Address, to: list[Address], cc: list[Address],
                  reply: Address | None, message_id: str, date: dt.datetime,
                  in_reply_to: str | None, references: tuple[str, ...]) -> str | None:
    """The header lines as the package writes them; None for a UTF-8 mailbox (another policy).

    A plain field is written as it is (the package would leave it so); any other is folded by
    the package itself, from the very value build_message gives it.
    """
    if not all(p.username.isascii() for p in to + cc):
        return None
    fields: list[tuple[str, object, bool]] = [
        ("From", sender, _plain_address(sender)),
        ("To", to, bool(to) and all(_plain_address(p) for p in to))]
    if cc:
        fields.append(("Cc", cc, all(_plain_address(p) for p in cc)))
    if reply is not None:
        fields.append(("Reply-To", reply, _plain_address(reply)))
    fields += [("Subject", subject, _plain_text(subject)),
               ("Date", format_datetime(date.astimezone(dt.UTC)), True),
               ("Message-ID", message_id, _MSG_ID.fullmatch(message_id) is not None)]
    if in_reply_to:
        chain = " ".join(references or (in_reply_to,))
        fields += [("In-Reply-To", in_reply_to, _plain_text(in_reply_to)),
                   ("References", chain, _plain_text(chain))]
    out = []
    for name, value, plain in fields:
        line = f"{name}: {_as_text(value)}"
        if plain and len(line) <= POLICY.max_line_length:
            out.append(line + "\r\n")
        else:
            out.append(_folded(name, value))
    return "".join(out)


def _as_text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _plain_text(value: str) -> bool:
    return _PLAIN_TEXT.fullmatch(value) is not None and "=?" not in value


_FOLDED: dict[tuple, str] = {}


def _folded(name: str, value: object) -> str:
    """One header as the package folds it; the same people and subjects recur across a tick's
    drafts, so each is folded once."""
    people = value if isinstance(value, list) else [value]
    key = (name, *((p.display_name, p.username, p.domain) if isinstance(p, Address) else p
                   for p in people))
    found = _FOLDED.get(key)
    if found is None:
        # what EmailMessage.__setitem__ stores and BytesGenerator._write_headers writes
        stored = POLICY.header_store_parse(name, value)
        found = POLICY.fold_binary(*stored).decode("ascii")
        if len(_FOLDED) >= 4096:
            _FOLDED.clear()
        _FOLDED[key] = found
    return found


def _plain_address(person: Address) -> bool:
    name = person.display_name
    return ((not name or _PLAIN_NAME.fullmatch(name) is not None)
            and _DOT_ATOM.fullmatch(person.username) is not None
            and _DOMAIN.fullmatch(person.domain) is not None)


def _qp(content: str) -> str:
    """A text part's body as set_content(cte='quoted-printable') and the generator write it:
    quoprimime.body_encode's lines, with its per-character translate (most of its cost) done
    by C string operations, and the generator's CRLF line ends."""
    data = b"\n".join(content.encode("utf-8").splitlines()) + b"\n"
    data = _QP_ESCAPE.sub(_qp_escaped, data.replace(b"=", b"=3D")).decode("ascii")
    out: list[str] = []
    append = out.append
    limit = POLICY.max_line_length - 1  # room for the soft break's "="
    for line in data.split("\n")[:-1]:
        # quoprimime.body_encode's wrapping, line for line
        start = 0
        laststart = len(line) - 1 - POLICY.max_line_length
        while start <= laststart:
            stop = start + limit
            if line[stop - 2] == "=":  # never split an escape
                append(line[start:stop - 1])
                start = stop - 2
            elif line[stop - 1] == "=":
                append(line[start:stop])
                start = stop - 1
            else:
                append(line[start:stop] + "=")
                start = stop
        if line and line[-1] in " \t":  # whitespace ending a line is encoded
            room = start - laststart
            if room >= 3:
                tail = _QP_SPACE[line[-1]]
            elif room == 2:
                tail = line[-1] + "=\r\n"
            else:
                tail = "=\r\n" + _QP_SPACE[line[-1]]
            append(line[start:-1] + tail)
        else:
            append(line[start:])
    append("")
    return "\r\n".join(out)


# the bytes body_encode escapes besides "=": controls (a line break is already a separator) and
# everything above ASCII; a run of them is escaped in one go
_QP_ESCAPE = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f-\xff]+")
_QP_SPACE = {" ": "=20", "\t": "=09"}


def _qp_escaped(found: re.Match) -> bytes:
    return b"=" + found[0].hex("=").upper().encode("ascii")
