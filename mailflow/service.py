"""The I/O shell around a tick: the lock, the SMTP session, IMAP polling and Sent copies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from .errors import MailflowError, TransportError
from .loading import Loaded
from .runner import Tick, TickReport
from .store import MemoryWriter, Store


def run_tick(loaded: Loaded, store: Store, now: dt.datetime, *, dry_run: bool = False,
             progress: Callable[[int], AbstractContextManager] | None = None) -> TickReport:
    """One `mailflow run`: under the lock (none for a dry run), saving the state once."""
    config = loaded.config
    writer_cm = nullcontext(MemoryWriter(store.load(), store)) if dry_run else store.writer()
    with writer_cm as writer:
        tick = Tick(loaded, writer, now, dry_run=dry_run, progress=progress)
        poll = None
        if config.imap is not None and not dry_run:
            from .polling import poll_into
            poll = poll_into
        send_with = None
        if config.smtp is not None:
            from .smtp import SmtpSession
            send_with = lambda: SmtpSession(config.smtp)  # noqa: E731
        try:
            report = tick.run(poll=poll, send_with=send_with)
            if tick.delivered and config.imap is not None and config.imap.sent_folder:
                _copy_to_sent(loaded, tick, tick.delivered)
        finally:
            writer.save()
    if config.smtp is None and tick.unsent and not dry_run:
        report.problems.append(f"{config.path}: [smtp] is not configured; "
                               f"{len(tick.unsent)} message(s) are due")
    return report


def _copy_to_sent(loaded: Loaded, tick: Tick, delivered: list[tuple[dict, bytes]]) -> None:
    """Append each sent message to the IMAP Sent folder, so the thread shows in the mail app."""
    from .imap import Mailbox
    imap = loaded.config.imap
    try:
        with Mailbox(imap) as mb:
            for msg, raw in delivered:
                mb.append(imap.sent_folder, raw, when=tick.now)
                tick.mark(msg, "message.copied", sent_copy=imap.sent_folder)
    except (TransportError, MailflowError) as err:
        tick.report.problems.append(f"copy to {imap.sent_folder} failed (the messages were "
                                    f"sent): {err}")
