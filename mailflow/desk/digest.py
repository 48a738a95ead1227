"""The digest email: what waits for the consultant, sent to them (never to a client).

The decisions (when, what, which number) are in engine/digest.py; this module writes the email,
sends it over the tick's SMTP settings and records it with its secret token and the content
each number binds to. Digests and confirmations are not client messages: they never count
against the client throttle (which counts client messages' attempts only).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from contextlib import closing
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from mailflow import timing
from mailflow.config.loading import Loaded
from mailflow.desk.checklist import done_suggestions
from mailflow.desk.views import attachment_line
from mailflow.engine.digest import (
    MESSAGE_ID_PREFIX,
    PLUS_PREFIX,
    digest_due,
    entries,
    next_id,
)
from mailflow.engine.outcomes import Outcome, Transport
from mailflow.engine.records import MessageState as S
from mailflow.engine.schedule import send_time_for
from mailflow.engine.tick import Tick
from mailflow.errors import MailflowError
from mailflow.render.compose import plus_address
from mailflow.store import now_iso

SUBJECT_MARK = "[mailflow digest]"
DIGEST_MARK = "-- mailflow digest"  # engine.digest_commands stops reading a reply here

# A digest is read on a phone, and is built again on every run while the server refuses it.
# The soonest five drafts go in full (text, HTML and documents attached): a few screens and
# at most a few MB, what one can review in a sitting; the rest, one line each (their numbers
# still approve). Replies likewise: five with their text (cut at REPLY_LINES lines), the rest
# one line; troubles, one line each up to TROUBLES. So the digest's size and the work of
# building it stay bounded however much waits (issue 13).
FULL_DRAFTS = 5
FULL_REPLIES = 5
REPLY_LINES = 25
REPLY_CHARS = 2000
TROUBLES = 20


def consultant_address(loaded: Loaded) -> str:
    """Where digests and confirmations go: [digest] to, else the sender's own address."""
    return loaded.config.digest.to or loaded.config.sender.email


def consultant_zone(loaded: Loaded):  # noqa: ANN201 - ZoneInfo
    """The consultant's own time zone: [digest] time_zone, else the project's."""
    return timing.load_zone(loaded.config.digest.time_zone or loaded.config.time_zone)


def send_outbox(loaded: Loaded, tick: Tick, open_session: Callable[[], Transport]) -> None:
    """Send a digest when one is due, and every confirmation not sent yet, over one session;
    (the digests too old to count were forgotten first: engine.digest.forget_old)."""
    outgoing: list[tuple[str, EmailMessage, dict]] = []
    for record in sorted(tick.state.digests.values(), key=lambda d: d["id"]):
        if record.get("kind") == "reply" and record.get("confirmation") \
                and not record.get("confirmed_at") and not record.get("confirming_at"):
            outgoing.append((record["id"], _confirmation_email(loaded, record, tick.now), {}))
    digest = _due_digest(loaded, tick)
    if digest is not None:
        outgoing.append(digest)
    if not outgoing:
        return
    to = consultant_address(loaded)
    at = now_iso(tick.now)
    try:
        with closing(open_session()) as session:
            session.connect()
            for key, email, record in outgoing:
                # announced and fsynced before the SMTP transaction, as a client message's
                # `sending` mark: after a crash once the server took it, it is never sent
                # again, and a reply to a digest that went out unrecorded still finds it
                if record:
                    tick.w.record("digest.sending", at=tick.now, durable=True,
                                  digests={"key": key, "set": {**record, "outcome": "sending"}})
                else:
                    tick.w.record("digest.confirming", at=tick.now, durable=True, digests={
                        "key": key, "set": {"confirming_at": at,
                                            "confirm_message_id": str(email["Message-ID"])}})
                result = session.send(email.as_bytes(), loaded.config.sender.email, [to])
                if result.having(Outcome.DELIVERED):
                    done = {"outcome": "sent"} if record else {"confirmed_at": at}
                    tick.w.record("digest.sent" if record else "digest.confirmed", at=tick.now,
                                  durable=True, digests={"key": key, "set": done})
                    continue
                tick.report.notes.append(f"digest to {to} not sent (tried again next run): "
                                         f"{result.summary}")
                if result.having(Outcome.IN_DOUBT):
                    continue  # it may have gone: kept as sent, never sent twice
                # refused: it never went, so it neither counts as the last digest nor can
                # be answered (no Message-ID); a confirmation is tried again next run
                undo = {"kind": "unsent", "message_id": None, "outcome": "refused"} if record \
                    else {"confirming_at": None, "confirm_message_id": None}
                tick.w.record("digest.unsent", at=tick.now, durable=True,
                              digests={"key": key, "set": undo})
    except MailflowError as err:
        # a note, not a problem: everything the digest would list is also said on stderr
        # (once, issue 13), so an unreachable server must not make cron mail every run
        tick.report.notes.append(f"digest to {to} not sent (tried again next run): {err}")


def _due_digest(loaded: Loaded, tick: Tick) -> tuple[str, EmailMessage, dict] | None:
    cfg = loaded.config.digest
    waiting = tick.report.waiting
    digests = [d for d in tick.state.digests.values() if d.get("kind") == "digest"]
    last = max(digests, key=lambda d: d["sent_at"], default=None)
    urgent = {n.key for n in waiting if n.urgent and n.table in ("messages", "replies")
              and not n.mark.startswith(("in_doubt", "failed"))}
    why = digest_due(tick.now, cfg, consultant_zone(loaded), last, waiting, urgent)
    if why is None:
        return None
    listed = entries(tick.state, {n.key for n in waiting})
    troubles = [tick.state.messages[n.key] for n in waiting if n.table == "messages"
                and tick.state.messages[n.key]["state"] in ("in_doubt", "failed")]
    token = secrets.token_hex(16)
    did = next_id(tick.state.digests, tick.state.meta.get("digest_floor", 0))
    message_id = f"{MESSAGE_ID_PREFIX}{token}@{loaded.config.sender.domain}>"
    email, subject = _digest_email(loaded, tick, listed, troubles, message_id, token)
    record = {"kind": "digest", "token": token, "message_id": message_id, "subject": subject,
              "sent_at": now_iso(tick.now), "to": consultant_address(loaded), "why": why,
              "entries": [{"n": e.n, "kind": e.kind, "key": e.key, "content": e.content}
                          for e in listed],
              "urgent": sorted(urgent)}
    return did, email, record


# Long on purpose: the digest reads top to bottom like the email it builds (drafts, replies,
# troubles, what happens if nothing is done); splitting it would scatter one message's text.
def _digest_email(loaded: Loaded, tick: Tick, listed, troubles: list[dict],  # noqa: ANN001
                  message_id: str, token: str) -> tuple[EmailMessage, str]:
    state, zone = tick.state, consultant_zone(loaded)
    cfg = loaded.config
    drafts = [e for e in listed if e.kind == "draft"]
    replies = [e for e in listed if e.kind == "reply"]
    parts = []
    if drafts:
        parts.append(f"{len(drafts)} draft{'s' if len(drafts) != 1 else ''} to approve")
    if replies:
        parts.append(f"{len(replies)} repl{'ies' if len(replies) != 1 else 'y'} need you")
    if troubles:
        parts.append(f"{len(troubles)} in doubt or failed")
    subject = f"{SUBJECT_MARK} {', '.join(parts) or 'nothing waits'}"
    valid = tick.now + dt.timedelta(days=cfg.digest.valid_for_days)
    lines = [f"What waits for you, {timing.format_local(tick.now, zone)}.", ""]
    own = cfg.identity(cfg.sender.email) or cfg.identities[0]
    if own.imap is None:
        # on by default, so also where no mailbox is read: never invite a reply nobody reads
        lines += ["mailflow reads no mailbox here ([imap] is not set up in mailflow.toml), "
                  "so a reply to this email does nothing: approve with `mailflow drafts "
                  "approve ID` (each draft's Id is below)."]
    else:
        lines += ["Reply to this email, one command per line (a reply is as good as the CLI):",
                  "    approve 1 3  |  approve all  |  reject 2 not needed",
                  "    pause ENGAGEMENT-ID  |  handled 4   (a reply dealt with)",
                  f"Replies count until {timing.format_local(valid, zone)}, from "
                  f"{consultant_address(loaded)} only, and only for drafts unchanged since "
                  "this digest."]
    lines += ["If you do nothing, the drafts wait: nothing goes out unapproved.", ""]
    attachments = []
    if drafts:
        lines += ["DRAFTS TO APPROVE", ""]
    for e in drafts[:FULL_DRAFTS]:
        msg = state.messages[e.key]
        lines += _draft_head(loaded, tick, e, msg)
        # the client gets the documents too: the consultant approves them with the words
        for a in msg.get("attachments") or ():
            lines.append(f"    Attached: {attachment_line(a)}, here as {e.n}-{a['filename']}")
            attachments.append((f"{e.n}-{a['filename']}", a["content_type"],
                                tick.w.attachment(a["ref"])))
        html, text = tick.w.body(msg["body"])
        lines += ["", text.strip(),
                  "", f"    (the HTML version is attached as {e.n}-{msg['stage']}.html)", ""]
        attachments.append((f"{e.n}-{msg['stage']}.html", "text/html", html.encode("utf-8")))
    if drafts[FULL_DRAFTS:]:
        lines += [f"{len(drafts) - FULL_DRAFTS} more, in short (see each with `mailflow drafts "
                  "show ID`; its number approves it as well):", ""]
    for e in drafts[FULL_DRAFTS:]:
        lines += _draft_head(loaded, tick, e, state.messages[e.key], short=True)
    if drafts[FULL_DRAFTS:]:
        lines.append("")
    if replies:
        lines += ["REPLIES THAT NEED YOU", ""]
    for i, e in enumerate(replies):
        r = state.replies[e.key]
        eng = state.engagements.get(r.get("engagement") or "") or {}
        lines.append(f"[{e.n}] {r.get('from_name') or ''} <{r.get('from')}> "
                     f"({eng.get('client', '?')}, {r.get('stage')}), {r.get('received_at')}")
        if i >= FULL_REPLIES:
            lines.append(f"    Subject: {_short(r.get('subject'))}; read it with "
                         f"`mailflow replies show {r['id']}`")
            continue
        suggestion = r.get("suggestion") or r.get("intent")
        if suggestion:
            lines.append(f"    Suggested: {_suggestion(suggestion)}")
        lines += [f"    Mark it? {command}" for command in done_suggestions(state, loaded, r)]
        lines += [f"    Subject: {r.get('subject')}", ""]
        lines += [f"    {t}" for t in _cut(r.get("text") or "", r["id"])] + [""]
    if replies[FULL_REPLIES:]:
        lines.append("")
    if troubles:
        lines += ["IN DOUBT OR FAILED (settle these with the CLI)", ""]
    for m in troubles[:TROUBLES]:
        why = m.get("note") or m.get("server_reply") or ""
        lines.append(f"- {m['key']}: {m['state'].replace('_', ' ')}: {_short(why)}")
        if m["state"] == S.IN_DOUBT:
            lines.append(f"  mailflow drafts resolve {m['key']} --sent|--resend")
    if troubles[TROUBLES:]:
        lines.append(f"- and {len(troubles) - TROUBLES} more: `mailflow status` lists them all")
    lines += ["", DIGEST_MARK]
    email = EmailMessage(policy=SMTP)
    email["From"] = f"mailflow <{cfg.sender.email}>"
    email["To"] = consultant_address(loaded)
    if cfg.sender.reply_to_token:
        email["Reply-To"] = plus_address(cfg.sender.email, PLUS_PREFIX + token)
    email["Subject"] = subject
    email["Date"] = format_datetime(tick.now)
    email["Message-ID"] = message_id
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    email.set_content("\n".join(lines) + "\n", charset="utf-8", cte="quoted-printable")
    for name, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        email.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return email, subject


def _draft_head(loaded: Loaded, tick: Tick, e, msg: dict, short: bool = False  # noqa: ANN001
                ) -> list[str]:
    """A listed draft's number, client, stage and when it goes out; in full, also who gets
    it, why it needs you, the subject and the Id; short, one line with the Id to look it up."""
    eng = tick.state.engagements[msg["engagement"]]
    when = send_time_for(loaded, tick.state, msg, tick.now)
    shown = timing.format_local(when, loaded.context_for(eng).zone) if when else "?"
    head = f"[{e.n}] {eng.get('client')}: {_stage_name(loaded, eng, msg)}"
    if short:
        late = ", held: late" if msg.get("late_hold") else (
            ", past due" if msg.get("overdue") else "")
        return [f"{head}, goes out {shown}{late}; Id: {msg['key']}"]
    lines = [head, f"    To: {', '.join(_person(p) for p in msg.get('to') or [])}"]
    if msg.get("cc"):
        lines.append(f"    Cc: {', '.join(_person(p) for p in msg['cc'])}")
    lines.append(f"    Goes out once approved: {shown}")
    if msg.get("late_hold"):
        lines.append(f"    Why you: {msg['late_hold']}")
    elif msg.get("overdue"):
        lines.append(f"    Why you: {msg.get('note') or 'past due'}")
    return lines + [f"    Subject: {msg.get('subject')}", f"    Id: {msg['key']}"]


def _cut(text: str, rid: str) -> list[str]:
    """A reply's text for the digest: whole when short, else its start and where to read on."""
    lines = text.strip().splitlines()
    kept, size = [], 0
    for line in lines[:REPLY_LINES]:
        if size + len(line) > REPLY_CHARS:
            break
        kept.append(line)
        size += len(line)
    if len(kept) < len(lines):
        kept.append(f"[... {len(lines) - len(kept)} more line(s): `mailflow replies show {rid}`]")
    return kept


def _short(text: object, limit: int = 160) -> str:
    """One line of at most `limit` characters."""
    one = " ".join(str(text or "").split())
    return one if len(one) <= limit else one[:limit - 3] + "..."


def _stage_name(loaded: Loaded, eng: dict, msg: dict) -> str:
    try:
        name = loaded.sequence_for(eng).stage(msg["stage"]).name
    except (KeyError, MailflowError):
        name = msg["stage"]
    return name + (f" (reminder {msg['step']})" if msg.get("step") else "")


def _suggestion(value: object) -> str:
    """An intent suggestion as the digest says it: what, the detail, and the words behind it."""
    if isinstance(value, dict):
        what = value.get("label") or str(value.get("kind") or "").replace("_", " ")
        detail = f" {value['detail']}" if value.get("detail") else ""
        words = ", ".join(f'"{t}"' for t in value.get("triggers") or [])
        return f"{what}{detail}" + (f" (from {words})" if words else "")
    return str(value)


def _person(p: dict) -> str:
    return f"{p['name']} <{p['email']}>" if p.get("name") else p["email"]


def _confirmation_email(loaded: Loaded, record: dict, now: dt.datetime) -> EmailMessage:
    cfg = loaded.config
    email = EmailMessage(policy=SMTP)
    email["From"] = f"mailflow <{cfg.sender.email}>"
    email["To"] = consultant_address(loaded)
    subject = record.get("digest_subject") or f"{SUBJECT_MARK} your reply"
    email["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    email["Date"] = format_datetime(now)
    email["Message-ID"] = f"<mailflow-confirm.{secrets.token_hex(8)}@{cfg.sender.domain}>"
    refs = [r for r in (record.get("digest_message_id"), record.get("message_id")) if r]
    if refs:
        email["In-Reply-To"] = refs[-1]
        email["References"] = " ".join(refs)
    email["Auto-Submitted"] = "auto-replied"
    email.set_content(record["confirmation"] + "\n", charset="utf-8", cte="quoted-printable")
    return email
