"""Polling IMAP for clients' replies: record each once, tie it to what it answers, hand it over.

The UID cursor of a folder moves only past messages that were fully recorded, and replies are
keyed by (folder, UIDVALIDITY, UID) and by Message-ID, so a poll cut short, repeated, or
restarted by a UIDVALIDITY change never records a reply twice. What a reply changes is
decided by `mailflow.engine.reactions.react`; this module only reads, records and applies.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

from mailflow.config.loading import Loaded
from mailflow.config.settings import Identity
from mailflow.desk.replies import apply_changes, stage_of
from mailflow.engine import sending
from mailflow.engine.reactions import (
    Reaction,
    ReplyFacts,
    ReportedRecipient,
    Trust,
    is_contact,
    react,
)
from mailflow.engine.records import MessageState as S
from mailflow.engine.tick import Tick, TickReport
from mailflow.errors import MailflowError, StoreError
from mailflow.inbound.authenticity import auth_failures, is_mail_system, read_trust_headers
from mailflow.inbound.intent import suggest_intent
from mailflow.inbound.matching import Match, SentIndex, SentRef
from mailflow.inbound.message import Inbound, parse_inbound
from mailflow.store import MemoryWriter, Store, now_iso
from mailflow.store.files import io, write_streamed
from mailflow.transport.protocols import Mailbox

CURSOR_EVERY = 200  # journal the cursor this often during a long poll


def poll_once(loaded: Loaded, store: Store, now: dt.datetime) -> TickReport:
    """`mailflow poll`: one poll under the lock, saved once."""
    if not any(i.imap for i in loaded.config.identities):
        report = TickReport()
        report.problems.append(f"{loaded.config.path}: [imap] is not configured")
        report.codes.add(2)
        return report
    with store.writer() as w:
        tick = Tick(loaded, w, now)
        poll_into(tick)
        if loaded.config.smtp is not None:
            # confirmations of digest replies go out with the poll that acted on them
            from mailflow.desk.digest import send_outbox
            from mailflow.transport.smtp import SmtpTransport
            send_outbox(loaded, tick, functools.partial(SmtpTransport, loaded.config.smtp))
    return tick.report


def poll_into(tick: Tick, open_mailbox: Callable[[Identity], Mailbox] | None = None) -> None:
    """Settle in-doubt sends and record new replies from every identity's watched folders.

    Each identity's mailbox is read over its own connection: one that cannot be reached
    (or whose secret is missing) is one problem naming it, and the others are read all the
    same (issue 15).
    """
    state = tick.state
    index = _sent_index(tick)
    seen_uids = {r["source"] for r in state.replies.values() if r.get("source")}
    seen_ids = {r["message_id"] for r in state.replies.values() if r.get("message_id")}
    # reply ids follow the replies themselves, never an unjournaled counter
    # (archived replies' ids included: `reply_floor`, kept when they were moved out)
    highest = max((int(k) for k in state.replies if k.isdigit()), default=0)
    ids = itertools.count(max(highest, state.meta.get("reply_floor", 0)) + 1)
    identities = [i for i in tick.loaded.config.identities if i.imap is not None]
    # who has sent anything at all, in one pass (an identity that has not skips old mail)
    by_engagement: dict[str, str] = {}
    senders = set()
    for msg in state.messages.values():
        if _went_out(msg):
            if not msg.get("sender_email") and msg["engagement"] not in by_engagement:
                by_engagement[msg["engagement"]] = _sent_as(tick, msg)
            senders.add((msg.get("sender_email") or "").lower()
                        or by_engagement[msg["engagement"]])
    for ident in identities:
        try:
            _poll_identity(tick, ident, open_mailbox, index, seen_uids, seen_ids, ids,
                           nothing_sent=ident.email.lower() not in senders)
        except StoreError:
            raise  # the state cannot be written: not a mail server's problem
        except MailflowError as err:
            # the cursor stays where the last fully recorded message left it
            tick.poll_failed = True
            tick.poll_failed_for.add(ident.email.lower())
            who = f"{ident.label}: " if len(tick.loaded.config.identities) > 1 else ""
            tick.report.problems.append(f"poll: {who}{err}")
            tick.report.codes.add(err.exit_code)
    if tick.report.unmatched:
        tick.report.notes.append(f"{tick.report.unmatched} new message(s) answer nothing "
                                 "mailflow sent; left alone")


def _poll_identity(tick: Tick, ident: Identity,  # noqa: PLR0913 - the poll's shared sets
                   open_mailbox: Callable[[Identity], Mailbox] | None, index: SentIndex,
                   seen_uids: set[str], seen_ids: set[str], ids: Iterator[int], *,
                   nothing_sent: bool) -> None:
    from mailflow.transport.imap import Cursor
    from mailflow.transport.imap import Mailbox as ImapMailbox
    imap = ident.imap
    state = tick.state
    with (functools.partial(open_mailbox, ident) if open_mailbox
          else functools.partial(ImapMailbox, imap))() as mb:
        _settle_in_doubt(tick, mb, ident)
        tick.polling_imap = imap
        for folder in imap.folders:
            key = ident.cursor_key(folder)
            stored = state.cursors.get(key)
            cursor = Cursor(folder, stored["uidvalidity"], stored["last_uid"]) if stored \
                else None
            if cursor is None and nothing_sent:
                # no reply can predate our first email: skip the mail already there
                # rather than fetching a whole existing inbox
                uidvalidity, uidnext = mb.folder_state(folder)
                cursor = Cursor(folder, uidvalidity, uidnext - 1)
                _move_cursor(tick, key, cursor)
            poll = mb.poll(folder, cursor)
            for done, fetched in enumerate(poll, start=1):
                source = f"{key}:{fetched.uidvalidity}:{fetched.uid}"
                if source not in seen_uids:
                    _record(tick, fetched, source, index, seen_ids, ids)
                    seen_uids.add(source)
                if done % CURSOR_EVERY == 0:
                    _move_cursor(tick, key, fetched.cursor)
            if poll.cursor is not None and (cursor is None or poll.cursor != cursor):
                _move_cursor(tick, key, poll.cursor)
            if cursor is not None and poll.cursor is not None \
                    and poll.cursor.uidvalidity != cursor.uidvalidity:
                tick.report.notes.append(
                    f"{key}: UIDVALIDITY changed ({cursor.uidvalidity} -> "
                    f"{poll.cursor.uidvalidity}): the folder was read again from the "
                    "start; replies already recorded were skipped")


def _sent_as(tick: Tick, msg: dict) -> str:
    from mailflow.engine.senders import identity_key
    return identity_key(tick, msg)


def _move_cursor(tick: Tick, key: str, cursor) -> None:  # noqa: ANN001
    # committed with the replies read before it: a long poll killed later keeps its progress
    tick.w.record("cursor.moved", at=tick.now, durable=True, cursors={
        "key": key, "set": {"uidvalidity": cursor.uidvalidity, "last_uid": cursor.last_uid}})


def _settle_in_doubt(tick: Tick, mb: Mailbox, ident: Identity) -> None:
    """A message in doubt whose Message-ID is in its identity's Sent folder did go out...

    ...unless mailflow put that copy there itself (after an earlier, partial delivery of the
    same message): then it proves nothing, and the message stays in doubt for the consultant.
    """
    folder = ident.imap.sent_folder
    if not folder:
        return
    mine = ident.email.lower()
    for msg in list(tick.state.messages.values()):
        if msg["state"] != S.IN_DOUBT or not msg.get("message_id"):
            continue
        if _sent_as(tick, msg) != mine:
            continue  # its copy would be in the Sent folder of the identity it went out as
        try:
            found = mb.find_message_id(folder, msg["message_id"])
        except MailflowError as err:
            tick.report.notes.append(f"{msg['key']}: could not look in {folder}: {err}")
            return
        settled = sending.settle_from_sent(msg, found, folder, tick.now)
        if settled is not None:
            tick.mark(msg, "message.settled", **settled)
        elif found:
            tick.report.notes.append(
                f"{msg['key']}: still in doubt: the copy in {folder} is one mailflow made "
                "itself, so it proves nothing; `mailflow drafts resolve "
                f"{msg['key']} --sent|--resend`")


def _went_out(msg: dict) -> bool:
    """Whether a message may have reached the client, so that a reply may answer it."""
    return bool(msg.get("message_id")) and bool(
        msg.get("sent_at") or msg["state"] in (S.IN_DOUBT, S.SENDING))


def _sent_index(tick: Tick, only: str | None = None) -> SentIndex:
    refs = []
    for m in tick.state.messages.values():
        if _went_out(m) and (only is None or m["key"] == only):
            rcpts = tuple(p["email"].lower() for p in (m.get("to") or []) + (m.get("cc") or []))
            refs.append(SentRef(key=m["key"], message_id=m["message_id"],
                                reply_token=m.get("reply_token"), recipients=rcpts,
                                subject=m.get("subject") or "", engagement=m["engagement"],
                                sent_at=dt.datetime.fromisoformat(m["sent_at"])
                                if m.get("sent_at") else None))
    return SentIndex(refs, sub_address=any(i.reply_to_token
                                           for i in tick.loaded.config.identities))


def _record(tick: Tick, fetched, source: str, index: SentIndex,  # noqa: ANN001
            seen_ids: set[str], ids: Iterator[int]) -> None:
    today = tick.now.date()
    inbound = parse_inbound(fetched.raw, today=today)
    for problem in (*fetched.notes, *inbound.problems):
        tick.report.notes.append(f"{source}: {problem}")
    if inbound.message_id and inbound.message_id in seen_ids:
        return  # the same reply seen again (a UIDVALIDITY change, or a copy in another folder)
    from mailflow.desk.digest_replies import handle_digest_reply
    if handle_digest_reply(tick, inbound, fetched.raw, source):
        return  # the consultant answering a digest (issue 13): commands, not a client's reply
    match = index.match(inbound)
    if match is None and not inbound.unreadable:
        tick.report.unmatched += 1  # not ours: left alone, counted
        return
    rid = str(next(ids))
    raw_path = _keep_raw(tick, rid, fetched)
    msg = tick.state.messages[match.key] if match else {}
    eng = (tick.state.engagements.get(match.engagement) or {}) if match else {}
    received = inbound.date or fetched.internal_date or tick.now
    trust = _trust(tick, fetched.raw, inbound, match, eng) if match else None
    # an unreadable message, or one that matches nothing, is never acted on: the consultant
    # reads the kept .eml
    reaction = react(_facts(rid, inbound), msg, stage_of(tick.loaded, eng, msg["stage"]), eng,
                     trust, root=tick.state.messages.get(msg.get("thread_root") or "")
                     ) if match and trust else Reaction(needs_action=True)
    record = {
        "source": source, "message_id": inbound.message_id, "from": inbound.from_addr,
        "from_name": inbound.from_name, "subject": inbound.subject,
        "date": inbound.date.isoformat() if inbound.date else None,
        "received_at": now_iso(received), "engagement": match.engagement if match else None,
        "message": match.key if match else None, "stage": msg.get("stage"),
        "how": match.how if match else None, "kind": inbound.kind,
        "kind_reason": inbound.kind_reason, "text": inbound.text, "raw": str(raw_path),
        "attachments": list(inbound.attachments),
        "return_date": inbound.return_date.isoformat() if inbound.return_date else None,
        "bounce": _bounce_dict(inbound), "problems": list(inbound.problems),
        "intent": _intent(inbound, eng, msg["stage"], received.date()) if match else None,
        "needs_action": reaction.needs_action, "trusted": reaction.trusted,
        "distrust": reaction.distrust,
        "auth_failures": list(trust.auth_failures) if trust else [],
    }
    if inbound.unreadable:
        tick.report.problems.append(f"{source}: a message mailflow cannot read was kept as "
                                    f"{raw_path} (reply {rid}); read it yourself")
    tick.w.record(f"reply.{inbound.kind}", at=tick.now,
                  engagement=match.engagement if match else None,
                  replies={"key": rid, "set": record})
    # the reply first: a change it causes is never journaled without the reply behind it
    apply_changes(tick.w, reaction.changes, tick.now)
    tick.report.problems.extend(reaction.problems)
    if inbound.message_id:
        seen_ids.add(inbound.message_id)
    tick.report.replies += 1


def _intent(inbound: Inbound, eng: dict, stage: str, today: dt.date) -> dict | None:
    """A suggestion for the consultant (never acted on), for a person's reply only."""
    if inbound.kind != "human":
        return None
    names = [d["name"] for d in eng.get("deliverables") or [] if d.get("name")]
    found = suggest_intent(inbound.text, deliverables=names, stage=stage, today=today)
    return found.as_dict() if found else None


def _bounce_dict(inbound: Inbound) -> dict | None:
    b = inbound.bounce
    if b is None and not inbound.delivery:
        return None
    return {"recipient": b.recipient if b else None, "status": b.status if b else None,
            "diagnostic": b.diagnostic if b else None, "action": b.action if b else None,
            "recipients": [{"address": r.address, "status": r.status, "action": r.action,
                            "diagnostic": r.diagnostic} for r in inbound.delivery]}


def _facts(rid: str, inbound: Inbound) -> ReplyFacts:
    """What a reaction needs to know of a parsed reply."""
    b = inbound.bounce
    return ReplyFacts(id=rid, kind=inbound.kind, sender=inbound.from_addr, text=inbound.text,
                      return_date=inbound.return_date,
                      bounce_recipient=b.recipient if b else None,
                      bounce_status=b.status if b else None,
                      bounce_diagnostic=b.diagnostic if b else None,
                      delivery=tuple(ReportedRecipient(r.address, r.action, r.status, r.diagnostic)
                                     for r in inbound.delivery))


def _trust(tick: Tick, raw: bytes, inbound: Inbound, match: Match, eng: dict) -> Trust:
    """What the poller knows about who sent a reply, for the reaction to weigh."""
    # the mailbox's own server vouches for its mail (issue 15: each identity has its own);
    # None for `replies add` in a project without IMAP
    imap = tick.polling_imap or tick.loaded.config.imap
    headers = read_trust_headers(raw)
    return Trust(
        from_contact=is_contact(inbound.from_addr, eng,
                                bool(imap and imap.trust_contact_domains)),
        auth_failures=auth_failures(headers.auth_results, imap.authserv_id if imap else None),
        mail_system=is_mail_system(inbound.from_addr, headers.return_path, headers.from_field),
        carries_our_message=match.how == "bounce-original",
        authors=inbound.from_addrs if len(inbound.from_addrs) > 1 else ())


def _keep_raw(tick: Tick, rid: str, fetched) -> Path:  # noqa: ANN001 - imap.Fetched
    if isinstance(tick.w, MemoryWriter):
        return Path("(dry run)")
    folder = tick.w.store.dir / "raw" / tick.now.strftime("%Y-%m")
    path = folder / f"reply-{rid}.eml"
    with io(folder, "create a folder"):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    # kept durably (file and name) before the reply is recorded: nothing is ever lost; a
    # large message comes from the server in chunks, straight into the file
    write_streamed(path, fetched.copy_raw)
    return path


def record_reply_file(loaded: Loaded, store: Store, now: dt.datetime, ref: str, path: Path
                      ) -> TickReport:
    """`replies add ID FILE.eml`: record a reply saved from a mail program, without IMAP.

    It goes through the same steps as a polled reply (kept raw, classified, acted on under
    the same trust rules), tied to the message `ref` it answers. Adding the same file twice
    records it once.
    """
    import hashlib
    from types import SimpleNamespace

    from mailflow.desk.actions import find_message
    from mailflow.errors import ConfigError, NotFoundError, StateError
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    with store.writer() as w:
        tick = Tick(loaded, w, now)
        msg = find_message(w.state, ref)
        if not _went_out(msg):
            raise StateError(f"{msg['key']} is {msg['state'].replace('_', ' ')}; only a message "
                             "that went out can have replies")
        source = f"file:{hashlib.sha256(raw).hexdigest()[:16]}"
        known = [r["id"] for r in w.state.replies.values() if r.get("source") == source]
        if known:
            raise StateError(f"{path}: already recorded as reply {known[0]}")
        index = _sent_index(tick, only=msg["key"])
        ids = itertools.count(max((int(k) for k in w.state.replies if k.isdigit()),
                                  default=0) + 1)
        seen = {r["message_id"] for r in w.state.replies.values() if r.get("message_id")}
        before = len(w.state.replies)
        # a reply as the poller hands it over, from a file instead of the server
        fetched = SimpleNamespace(raw=raw, internal_date=None, notes=[],
                                  copy_raw=lambda f: f.write(raw))
        _record(tick, fetched, source, index, seen, ids)
        if len(w.state.replies) == before:
            raise NotFoundError(f"{path}: does not answer {msg['key']} (no In-Reply-To, "
                                "References, reply token or sender and subject of it), or it "
                                "was recorded already")
        w.save()
    return tick.report
