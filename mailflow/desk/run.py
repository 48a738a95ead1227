"""The I/O shell around a tick: the lock, the SMTP session, IMAP polling and Sent copies."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from mailflow.config.loading import Loaded
from mailflow.config.settings import ImapConfig
from mailflow.engine.outcomes import Transport
from mailflow.engine.tick import Tick, TickReport
from mailflow.errors import MailflowError
from mailflow.store import MemoryWriter, Store, now_iso
from mailflow.transport.protocols import Mailbox


def run_tick(loaded: Loaded, store: Store, now: dt.datetime, *, dry_run: bool = False,
             progress: Callable[[int], AbstractContextManager] | None = None,
             transport: Callable[[], Transport] | None = None,
             mailbox: Callable[[], Mailbox] | None = None) -> TickReport:
    """One `mailflow run`: under the lock (none for a dry run), saving the state once.

    `transport` and `mailbox` open the seams (default: SMTP and IMAP from mailflow.toml);
    tests pass the in-memory ones.
    """
    config = loaded.config
    writer_cm = nullcontext(MemoryWriter(store.load(), store)) if dry_run else store.writer()
    with writer_cm as writer:
        tick = Tick(loaded, writer, now, dry_run=dry_run, progress=progress)
        poll = None
        if config.imap is not None and mailbox is None:
            mailbox = _imap(config.imap)
        if config.imap is not None and not dry_run:
            from mailflow.desk.polling import poll_into
            poll = functools.partial(poll_into, open_mailbox=mailbox)
        if config.smtp is not None and transport is None:
            from mailflow.transport.smtp import SmtpTransport
            transport = functools.partial(SmtpTransport, config.smtp)
        from mailflow.desk.engagement_files import sync_from_files
        # an engagement file edited by hand is read again before anything is planned
        file_notes: list[str] = []
        file_problems = sync_from_files(writer, loaded, now, file_notes)
        report = tick.run(poll=poll, send_with=transport)
        report.problems[:0] = file_problems
        report.notes[:0] = file_notes
        if file_problems:
            report.codes.add(2)
        if transport is not None and not dry_run:
            # the digest and confirmations of digest replies: to the consultant only
            from mailflow.desk.digest import send_outbox
            send_outbox(loaded, tick, transport)
        if config.imap is not None and config.imap.sent_folder and not dry_run:
            _copy_to_sent(loaded, tick, mailbox)
        # the writer commits and saves when this block ends; an exception voids what the
        # tick had not committed yet (sends are committed one by one, around each one)
    if config.smtp is None and tick.unsent and not dry_run:
        report.problems.append(f"{config.path}: [smtp] is not configured; "
                               f"{len(tick.unsent)} message(s) are due")
    return report


# a copy that could not be made (IMAP down) is tried again on later ticks for this long
COPY_WINDOW = dt.timedelta(days=7)


def _imap(cfg: ImapConfig) -> Callable[[], Mailbox]:
    def open_imap() -> Mailbox:
        from mailflow.transport.imap import Mailbox as ImapMailbox
        return ImapMailbox(cfg)
    return open_imap


def _copy_to_sent(loaded: Loaded, tick: Tick, open_mailbox: Callable[[], Mailbox]) -> None:
    """Append each sent message to the IMAP Sent folder, so the thread shows in the mail app.

    Messages sent while IMAP was unreachable keep no `sent_copy` mark and are copied by a
    later tick; when this tick's poll already failed, trying now would only fail again.
    Each copy is announced (`copied_at`, fsynced) before its APPEND: a copy mailflow made
    itself never counts as proof that an in-doubt attempt went out (DESIGN.md, Trust).
    """
    imap = loaded.config.imap
    since = now_iso(tick.now - COPY_WINDOW)
    pending = [m for m in tick.state.messages.values()
               if m.get("sent_at", "") >= since and not m.get("sent_copy") and m.get("body")]
    if not pending or tick.poll_failed:
        return
    sent_now = {msg["key"]: raw for msg, raw in tick.delivered}  # the very bytes sent
    try:
        with open_mailbox() as mb:
            for msg in sorted(pending, key=lambda m: m["sent_at"]):
                raw = sent_now.get(msg["key"]) or tick.wire(msg)[0]
                tick.mark(msg, "message.copying", durable=True, copied_at=now_iso(tick.now))
                mb.append(imap.sent_folder, raw, when=dt.datetime.fromisoformat(msg["sent_at"]))
                tick.mark(msg, "message.copied", sent_copy=imap.sent_folder)
    except MailflowError as err:
        tick.report.problems.append(f"copy to {imap.sent_folder} failed (the messages were "
                                    f"sent; it is tried again next run): {err}")
