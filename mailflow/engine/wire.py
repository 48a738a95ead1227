"""A message as it goes on the wire: built from its record, threaded, and its envelope.

Pure given the records and the body: a retry or a resend builds the very same message (same
Message-ID, Date and threading headers) and addresses only who has not got it yet.

Building the MIME message (address headers, quoted-printable parts) costs more than sending
it, and nothing in it but the Date and the threading headers depends on when it goes out. So
the draft is built once when it is rendered (`prebuild`) and kept beside its body; sending
splices the Date, Message-ID and threading headers into those bytes (`wire_message` with
`prebuilt`), which yields the very bytes a full build would (tests/unit/test_wire_prebuilt.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from email.message import EmailMessage
from email.utils import format_datetime

from mailflow.engine import sending
from mailflow.render.compose import POLICY, plus_address
from mailflow.render.mime import message_bytes

# the Date a prebuilt message carries until the real one is spliced in
_PLACEHOLDER = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def _reply_to(msg: dict, sender: dict, reply_to_token: bool) -> str | None:
    if reply_to_token and msg.get("reply_token"):
        return plus_address(sender["email"], msg["reply_token"])
    return None


def prebuilt_key(msg: dict, sender: dict, reply_to_token: bool) -> str:
    """What a prebuilt message was made from: any change (an edit, new recipients, another
    identity) gives another key, and the message is built afresh instead."""
    parts = [msg.get("subject"), msg.get("body"), [a["ref"] for a in msg.get("attachments") or ()],
             msg.get("to"), msg.get("cc", []), sender.get("name"), sender["email"],
             _reply_to(msg, sender, reply_to_token), msg.get("message_id"),
             msg.get("engagement")]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def prebuild(msg: dict, body: tuple[str, str], sender: dict, reply_to_token: bool,
             attachments: tuple[tuple[str, str, bytes], ...] = ()) -> tuple[bytes, list[str]]:
    """The message's bytes without its send-time headers, and its full envelope."""
    return _build(msg, body, sender, reply_to_token, _PLACEHOLDER, None, (), attachments)


def wire_message(msg: dict, root: dict | None, siblings: list[dict], body: tuple[str, str] | None,
                 sender: dict, reply_to_token: bool, now: dt.datetime,
                 attachments: tuple[tuple[str, str, bytes], ...] = (),
                 prebuilt: tuple[bytes, list[str]] | None = None) -> tuple[bytes, list[str]]:
    """The message's bytes, and the envelope recipients still to receive it.

    `root` is the first message of its thread (None for a first message) and `siblings` the
    engagement's messages, of which those already sent in the thread go into References.
    `attachments` are the kept documents of the draft as (filename, content type, bytes).
    `prebuilt` is what `prebuild` made of this very draft (then `body` is not read).
    """
    in_reply_to = references = None
    if root is not None and root.get("message_id"):
        chain = [m["message_id"] for m in siblings
                 if m.get("thread_root") == root["key"] and m.get("sent_at")
                 and m["step"] < msg["step"] and m.get("message_id")]
        references = (root["message_id"], *chain)
        in_reply_to = references[-1]
    # a retry to the remaining recipients, or a resend, is the same message: same Date
    attempts = msg.get("attempts_at") or []
    first_attempt = dt.datetime.fromisoformat(attempts[0]) if attempts else None
    date = first_attempt or now
    if prebuilt is not None:
        raw, envelope = _splice(prebuilt[0], msg["message_id"], date, in_reply_to,
                                references or ()), prebuilt[1]
    else:
        assert body is not None
        raw, envelope = _build(msg, body, sender, reply_to_token, date, in_reply_to,
                               references or (), attachments)
    if msg.get("recipients"):
        rcpts = sending.still_to_receive(envelope, msg["recipients"])
    else:  # recorded before per-recipient outcomes were kept
        rcpts = msg.get("remaining") or envelope
    return raw, rcpts


def _build(msg: dict, body: tuple[str, str], sender: dict, reply_to_token: bool,
           date: dt.datetime, in_reply_to: str | None, references: tuple[str, ...],
           attachments: tuple[tuple[str, str, bytes], ...]) -> tuple[bytes, list[str]]:
    html, text = body
    return message_bytes(subject=msg["subject"], html=html, text=text, sender=sender,
                         to=msg["to"], cc=msg.get("cc", []), message_id=msg["message_id"],
                         date=date, where=f"engagement {msg['engagement']}",
                         in_reply_to=in_reply_to, references=references,
                         reply_to=_reply_to(msg, sender, reply_to_token),
                         attachments=attachments)


def _splice(prebuilt: bytes, message_id: str, date: dt.datetime, in_reply_to: str | None,
            references: tuple[str, ...]) -> bytes:
    """The prebuilt bytes with the real Date and threading headers, where build_message puts
    them (after Subject, around Message-ID)."""
    placeholder = b"\r\n" + _headers(_PLACEHOLDER, message_id, None, ())
    at = prebuilt.find(placeholder) + 2
    if at < 2 or at > prebuilt.find(b"\r\n\r\n"):
        raise ValueError("the prebuilt message has no placeholder Date")
    block = _headers(date, message_id, in_reply_to, references)
    return prebuilt[:at] + block + prebuilt[at + len(placeholder) - 2:]


def _headers(date: dt.datetime, message_id: str, in_reply_to: str | None,
             references: tuple[str, ...]) -> bytes:
    """Date, Message-ID and threading headers as the email package writes them."""
    fields = [("Date", format_datetime(date.astimezone(dt.UTC))), ("Message-ID", message_id)]
    if in_reply_to:
        fields += [("In-Reply-To", in_reply_to),
                   ("References", " ".join(references or (in_reply_to,)))]
    lines = [f"{name}: {value}" for name, value in fields]
    if all(len(line) <= POLICY.max_line_length and line.isascii() for line in lines):
        # short ASCII lines: folding leaves them as they are (tests/unit/test_wire_prebuilt.py)
        return "".join(f"{line}\r\n" for line in lines).encode("ascii")
    head = EmailMessage(policy=POLICY)
    for name, value in fields:
        head[name] = value
    return head.as_bytes()[:-2]  # without the blank line that ends a header section
