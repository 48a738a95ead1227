"""The I/O shell around a tick: the lock, the SMTP session, IMAP polling and Sent copies."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from mailflow.config.loading import Loaded
from mailflow.config.settings import Identity, ImapConfig
from mailflow.engine.digest import forget_old, outbox_empty
from mailflow.engine.outcomes import Transport
from mailflow.engine.tick import Tick, TickReport
from mailflow.errors import ConfigError, MailflowError
from mailflow.store import MemoryWriter, Store, now_iso
from mailflow.transport.protocols import Mailbox


def run_tick(loaded: Loaded, store: Store, now: dt.datetime, *, dry_run: bool = False,
             progress: Callable[[int], AbstractContextManager] | None = None,
             transport: Callable[[], Transport] | None = None,
             mailbox: Callable[[], Mailbox] | None = None,
             transports: Callable[[Identity], Transport] | None = None,
             mailboxes: Callable[[Identity], Mailbox] | None = None) -> TickReport:
    """One `mailflow run`: under the lock (none for a dry run), saving the state once.

    `transports` and `mailboxes` open the seams of each sender identity (default: its SMTP
    and IMAP from mailflow.toml), each only when it is needed; `transport` and `mailbox`
    open one seam for every identity. Tests pass the in-memory ones.
    """
    config = loaded.config
    if transports is None:
        transports = (lambda ident: transport()) if transport is not None else _smtp
    if mailboxes is None:
        mailboxes = (lambda ident: mailbox()) if mailbox is not None else _imap
    polled = [i for i in config.identities if i.imap is not None]
    moved: set[str] = set()  # bodies only engagements moved out this run referred to
    if dry_run:
        writer_cm = nullcontext(MemoryWriter(store.load(), store))
    else:
        from mailflow.desk.history import housekeeping
        writer_cm = store.writer(after=housekeeping(store, lambda: moved))
    with writer_cm as writer:
        tick = Tick(loaded, writer, now, dry_run=dry_run, progress=progress)
        poll = None
        if polled and not dry_run:
            from mailflow.desk.polling import poll_into
            poll = functools.partial(poll_into, open_mailbox=mailboxes)
        digest_transport = None  # the digest goes through the project's own [sender] account
        if config.smtp is not None or transport is not None:
            own = config.identity(config.sender.email) or config.identities[0]
            digest_transport = functools.partial(transports, own)
        can_send = transport is not None or any(i.smtp for i in config.identities)
        from mailflow.desk.engagement_files import sync_from_files
        # an engagement file edited by hand is read again before anything is planned
        file_notes: list[str] = []
        file_problems = sync_from_files(writer, loaded, now, file_notes)
        report = tick.run(poll=poll, send_with=transports if can_send else None)
        report.problems[:0] = file_problems
        report.notes[:0] = file_notes
        if file_problems:
            report.codes.add(2)
        if not dry_run:
            forget_old(writer, now, config.digest)
        if digest_transport is not None and not dry_run and not outbox_empty(
                tick.state, config.digest, tick.report.waiting):
            # the digest and confirmations of digest replies: to the consultant only
            from mailflow.desk.digest import send_outbox
            send_outbox(loaded, tick, digest_transport)
        if not dry_run:
            for ident in polled:
                if ident.imap.sent_folder:
                    _copy_to_sent(loaded, tick, ident, functools.partial(mailboxes, ident))
        if not dry_run:
            # drafts, sends, notices and Sent copies are events of their engagements, which
            # void the plans the tick kept: planning those again now (what the next run would
            # do first; the planner does not read `now`) keeps the plans views read fresh
            # between runs, so `status` after a busy run plans nothing (issue 18)
            tick.plan()
            # and the summaries `status` shows, made as it would make them (issue 18)
            from mailflow.desk.status import keep_summaries
            keep_summaries(writer, loaded, now)
        if not dry_run:  # last: what this run did is in the archive of what it moves out
            from mailflow.desk.history import move_out
            moved |= move_out(writer, store, now, config.archive_after_days)
        # the writer commits and saves when this block ends; an exception voids what the
        # tick had not committed yet (sends are committed one by one, around each one)
    if not can_send and tick.unsent and not dry_run:
        report.problems.append(f"{config.path}: [smtp] is not configured; "
                               f"{len(tick.unsent)} message(s) are due")
    return report


# a copy that could not be made (IMAP down) is tried again on later ticks for this long
COPY_WINDOW = dt.timedelta(days=7)


def _smtp(ident: Identity) -> Transport:
    """The SMTP transport of one identity (not connected yet)."""
    if ident.smtp is None:
        raise ConfigError(f"{ident.email} has no [smtp] account in mailflow.toml; its "
                          "messages wait")
    from mailflow.transport.smtp import SmtpTransport
    return SmtpTransport(ident.smtp)


def _imap(ident: Identity) -> Mailbox:
    """The IMAP mailbox of one identity (opened by its context manager)."""
    from mailflow.transport.imap import Mailbox as ImapMailbox
    cfg: ImapConfig = ident.imap
    return ImapMailbox(cfg)


def _copy_to_sent(loaded: Loaded, tick: Tick, ident: Identity,
                  open_mailbox: Callable[[], Mailbox]) -> None:
    """Append each sent message to the IMAP Sent folder, so the thread shows in the mail app.

    Messages sent while IMAP was unreachable keep no `sent_copy` mark and are copied by a
    later tick; when this tick's poll already failed, trying now would only fail again.
    Each copy is announced (`copied_at`, fsynced) before its APPEND: a copy mailflow made
    itself never counts as proof that an in-doubt attempt went out (DESIGN.md, Trust).
    """
    from mailflow.engine.senders import identity_key
    imap = ident.imap
    since = now_iso(tick.now - COPY_WINDOW)
    mine = ident.email.lower()
    # each identity's messages go to its own Sent folder, so the lead sees their thread
    pending = [m for m in tick.state.messages.values()
               if m.get("sent_at", "") >= since and not m.get("sent_copy") and m.get("body")
               and identity_key(tick, m) == mine]
    if not pending or mine in tick.poll_failed_for:
        return
    sent_now = {msg["key"]: raw for msg, raw in tick.delivered}  # the very bytes sent
    try:
        with open_mailbox() as mb:
            for msg in sorted(pending, key=lambda m: m["sent_at"]):
                if not _already_filed(mb, imap.sent_folder, msg):
                    raw = sent_now.get(msg["key"]) or tick.wire(msg)[0]
                    tick.mark(msg, "message.copying", durable=True,
                              copied_at=now_iso(tick.now))
                    mb.append(imap.sent_folder, raw,
                              when=dt.datetime.fromisoformat(msg["sent_at"]))
                tick.mark(msg, "message.copied", sent_copy=imap.sent_folder)
    except MailflowError as err:
        who = f"{ident.label}: " if len(loaded.config.identities) > 1 else ""
        tick.report.problems.append(f"{who}copy to {imap.sent_folder} failed (the messages "
                                    f"were sent; it is tried again next run): {err}")


def _already_filed(mb: Mailbox, folder: str, msg: dict) -> bool:
    """Whether a copy announced by an earlier run (which may have died right after its
    APPEND, before marking it made) is in the folder: a second APPEND would file it twice."""
    if not (msg.get("copied_at") and msg.get("message_id")):
        return False
    try:
        return mb.find_message_id(folder, msg["message_id"])
    except MailflowError:
        return False  # e.g. no such folder yet: the APPEND creates it, or says what failed
