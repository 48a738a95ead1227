"""A message as it goes on the wire: built from its record, threaded, and its envelope.

Pure given the records and the body: a retry or a resend builds the very same message (same
Message-ID, Date and threading headers) and addresses only who has not got it yet.
"""

from __future__ import annotations

import datetime as dt

from mailflow.engine import sending
from mailflow.render.compose import build_message, plus_address, recipients


def wire_message(msg: dict, root: dict | None, siblings: list[dict], body: tuple[str, str],
                 sender: dict, reply_to_token: bool, now: dt.datetime
                 ) -> tuple[bytes, list[str]]:
    """The message's bytes, and the envelope recipients still to receive it.

    `root` is the first message of its thread (None for a first message) and `siblings` the
    engagement's messages, of which those already sent in the thread go into References.
    """
    in_reply_to = references = None
    if root is not None and root.get("message_id"):
        chain = [m["message_id"] for m in siblings
                 if m.get("thread_root") == root["key"] and m.get("sent_at")
                 and m["step"] < msg["step"] and m.get("message_id")]
        references = (root["message_id"], *chain)
        in_reply_to = references[-1]
    reply_to = None
    if reply_to_token and msg.get("reply_token"):
        reply_to = plus_address(sender["email"], msg["reply_token"])
    html, text = body
    # a retry to the remaining recipients, or a resend, is the same message: same Date
    attempts = msg.get("attempts_at") or []
    first_attempt = dt.datetime.fromisoformat(attempts[0]) if attempts else None
    email = build_message(subject=msg["subject"], html=html, text=text, sender=sender,
                          to=msg["to"], cc=msg.get("cc", []), message_id=msg["message_id"],
                          date=first_attempt or now, where=f"engagement {msg['engagement']}",
                          in_reply_to=in_reply_to, references=references or (),
                          reply_to=reply_to)
    envelope = recipients(email)
    if msg.get("recipients"):
        rcpts = sending.still_to_receive(envelope, msg["recipients"])
    else:  # recorded before per-recipient outcomes were kept
        rcpts = msg.get("remaining") or envelope
    return email.as_bytes(), rcpts
