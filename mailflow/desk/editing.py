"""Editing one draft by hand: the document the consultant edits, and keeping the result.

The editor runs without the lock (cron goes on meanwhile), so saving checks that the draft
did not change in between. An edit that cannot be read is never lost: its text is kept in
a recovery file whose path the error names.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from mailflow.config.loading import Loaded
from mailflow.desk.actions import apply_edit, find_message
from mailflow.errors import ConfigError, StateError
from mailflow.store import Store

TEXT_MARK = "=" * 20 + " text part (plain text) " + "=" * 20
HTML_MARK = "=" * 20 + " HTML part (what most mail programs show) " + "=" * 20
_EDIT_HELP = """\
# Edit the subject, the text part and/or the HTML part of this draft, save and quit.
# Keep the two ==== lines. Lines starting with # up here are ignored.
"""
EDITABLE = ("awaiting_approval", "approved", "blocked")


def edit_document(subject: str, text: str, html: str, parts: tuple[str, ...]) -> str:
    """The file the consultant edits: subject, then the chosen parts under marker lines."""
    doc = f"{_EDIT_HELP}Subject: {subject}\n\n"
    if "text" in parts:
        doc += f"{TEXT_MARK}\n{text.rstrip()}\n\n"
    if "html" in parts:
        doc += f"{HTML_MARK}\n{html.rstrip()}\n"
    return doc


def parse_edit(doc: str, parts: tuple[str, ...]) -> tuple[str, str | None, str | None]:
    """(subject, text or None, html or None) from an edited document."""
    head, text, html = doc, None, None
    if "html" in parts:
        head, sep, html = head.partition(HTML_MARK)
        if not sep:
            raise ConfigError("drafts edit: the HTML marker line was removed; nothing was saved")
        html = html.strip("\n") + "\n"
    if "text" in parts:
        head, sep, text = head.partition(TEXT_MARK)
        if not sep:
            raise ConfigError("drafts edit: the text marker line was removed; nothing was saved")
        text = text.strip("\n") + "\n"
    lines = [line for line in head.splitlines() if line.strip() and not line.startswith("#")]
    if len(lines) != 1 or not lines[0].startswith("Subject:"):
        raise ConfigError("drafts edit: expected one 'Subject: ...' line before the parts; "
                          "nothing was saved")
    return lines[0].removeprefix("Subject:").strip(), text, html


@dataclass(frozen=True)
class EditSession:
    """A draft as it was when editing began, and the document shown to the consultant."""

    before: dict
    html: str
    text: str
    parts: tuple[str, ...]
    document: str


def begin_edit(store: Store, ref: str, part: str = "both") -> EditSession:
    """The document to edit for one unsent draft (StateError for anything else)."""
    parts = ("text", "html") if part == "both" else (part,)
    before = find_message(store.load(), ref)
    if not before.get("subject"):
        raise StateError(f"{before['key']} has not been drafted yet (see `mailflow plan`)")
    if before["state"] not in EDITABLE:
        raise StateError(f"{before['key']} is {before['state'].replace('_', ' ')}; only unsent "
                         "drafts can be edited")
    html, text = store.body(before["body"])
    return EditSession(before, html, text, parts, edit_document(before["subject"], text, html,
                                                                parts))


def recovery_path(store: Store, key: str, now: dt.datetime) -> Path:
    """Where an unreadable edit of `key` is kept: .mailflow/recovery/<key>-<time>.txt."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", key)
    return store.dir / "recovery" / f"{name}-{now.strftime('%Y%m%dT%H%M%S')}.txt"


def _keep_for_recovery(store: Store, key: str, edited: str, now: dt.datetime) -> Path:
    path = recovery_path(store, key, now)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(edited, encoding="utf-8")
    path.chmod(0o600)
    return path


def save_edit(store: Store, loaded: Loaded, session: EditSession, edited: str | None,
              who: str, now: dt.datetime) -> list[str]:
    """Keep an edited document as the draft's new content; returns notes for the consultant.

    An empty list with nothing saved means there was no change. A document that cannot be
    read raises ConfigError naming the recovery file that holds what was typed.
    """
    from mailflow.render.compose import build_message
    from mailflow.render.templates import inline_css
    before = session.before
    if edited is None or edited == session.document:
        return []
    try:
        subject, text, html = parse_edit(edited, session.parts)
    except ConfigError as err:
        kept = _keep_for_recovery(store, before["key"], edited, now)
        raise ConfigError(f"{err}; what you typed is kept in {kept}") from None
    if not subject or any(c in subject for c in "\r\n"):
        kept = _keep_for_recovery(store, before["key"], edited, now)
        raise ConfigError(f"{before['key']}: the subject must be one non-empty line; nothing "
                          f"was saved (what you typed is kept in {kept})")
    if text is None or text.strip() == session.text.strip():
        text = session.text
    if html is None or html.strip() == session.html.strip():
        html = session.html
    else:
        html = inline_css(html)
    if (subject, text, html) == (before["subject"], session.text, session.html):
        return []
    try:  # checked as it will go out: From the identity the draft was written for
        sender = loaded.identity_of(before, {})
    except ConfigError:
        sender = loaded.config.sender
    build_message(subject=subject, html=html, text=text,
                  sender={"name": sender.name, "email": sender.email}, to=before["to"],
                  cc=before.get("cc") or [], message_id="<edit@mailflow>", date=now,
                  where=before["key"])
    with store.writer() as w:
        msg = w.state.messages[before["key"]]
        if any(msg.get(k) != before.get(k) for k in ("state", "subject", "body")):
            kept = _keep_for_recovery(store, before["key"], edited, now)
            raise StateError(f"{msg['key']} changed while you were editing (now "
                             f"{msg['state'].replace('_', ' ')}); nothing was saved, edit "
                             f"again (what you typed is kept in {kept})")
        apply_edit(w, msg, subject, html, text, who, now)
        w.save()
    notes = [f"edited {before['key']}"]
    if text != session.text and html == session.html:
        notes.append("only the text part changed; the HTML part (what most mail programs "
                     "show) is as before")
    elif html != session.html and text == session.text:
        notes.append("only the HTML part changed; the text part is as before")
    return notes
