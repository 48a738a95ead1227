"""`mailflow watch`: record replies within seconds of their arrival, beside cron's `run`.

One connection IDLEs (RFC 2177) on the first watched folder; when the server announces new
mail, the ordinary poll (desk/polling.py) runs on its own connection under the project lock,
which is held only while mail is handled, so `mailflow run` keeps working beside it. IDLE is
re-issued every 25 minutes, before the 29 minutes after which RFC 2177 lets a server log the
client off, and each renewal also polls every folder (with several folders, it renews every
minute, so the others wait no longer than that). A server without IDLE is polled every
minute. A dropped connection is retried with growing pauses. Signal handlers only set
`StopFlag.stopped`; the loop looks at it at least once a second.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from mailflow.config.loading import Loaded
from mailflow.engine.tick import TickReport
from mailflow.errors import ConfigError, LockedError, TransportError
from mailflow.store import Store

IDLE_RENEW = 25 * 60.0  # seconds; RFC 2177: clients re-issue IDLE at least every 29 minutes
POLL_EVERY = 60.0  # seconds between polls where the server lacks IDLE
RETRY_LOCKED = 5.0  # seconds before trying again when cron's run holds the lock
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)  # pauses before reconnecting
TICK = 1.0  # the longest the loop goes without looking at the stop flag


class StopFlag:
    """Set by a signal handler (and nothing else happens in the handler)."""

    def __init__(self) -> None:
        self.stopped = False
        self.signal: int | None = None

    def __call__(self, signum: int, frame: object = None) -> None:
        """The signal handler: remember that we were asked to stop."""
        self.stopped = True
        self.signal = signum


@dataclass(frozen=True)
class WatchSettings:
    """How the watcher paces itself (defaults for real servers; tests shorten them)."""

    idle_renew: float = IDLE_RENEW
    poll_every: float = POLL_EVERY
    retry_locked: float = RETRY_LOCKED
    backoff: tuple[float, ...] = BACKOFF
    use_idle: bool = True


def backoff_delay(failures: int, steps: tuple[float, ...] = BACKOFF) -> float:
    """The pause before reconnect attempt number `failures` (1, 2, ...), capped at the last."""
    return steps[min(max(failures, 1), len(steps)) - 1]


def running_clock(start: dt.datetime | None) -> Callable[[], dt.datetime]:
    """The system clock; or, under --now, that time moving forward from the start."""
    if start is None:
        return lambda: dt.datetime.now(dt.UTC)
    began = time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - began)


def sleep_until_stopped(seconds: float, stop: StopFlag) -> None:
    """Sleep, looking at the stop flag at least once a second."""
    end = time.monotonic() + seconds
    while not stop.stopped and (left := end - time.monotonic()) > 0:
        time.sleep(min(TICK, left))


class Watcher:
    """The watch loop of one project. `say(kind, text)` reports: note, debug or problem."""

    def __init__(self, loaded: Loaded, store: Store, clock: Callable[[], dt.datetime],
                 stop: StopFlag, say: Callable[[str, str], None],
                 on_report: Callable[[TickReport], None],
                 settings: WatchSettings = WatchSettings()) -> None:
        if loaded.config.imap is None:
            raise ConfigError(f"{loaded.config.path}: [imap] is not configured; "
                              "watch needs it")
        self.loaded, self.store, self.clock, self.stop = loaded, store, clock, stop
        self.say, self.on_report, self.settings = say, on_report, settings
        self.imap = loaded.config.imap
        self.pending = True  # mail may have come while nothing watched: handle it first
        self._last_try = 0.0

    def run(self) -> None:
        """Watch until stopped; connection failures are retried, never fatal."""
        from mailflow.transport.imap_idle import IdleMailbox
        failures = 0
        while not self.stop.stopped:
            try:
                with IdleMailbox(self.imap) as mb:
                    if failures:
                        self.say("note", f"imap {self.imap.address}: connected again")
                    failures = 0
                    if self.settings.use_idle and mb.supports_idle():
                        self._idle_loop(mb)
                        continue
                self.say("note", f"imap {self.imap.address}: no IDLE; polling every "
                                 f"{self.settings.poll_every:g} s")
                self._poll_loop()
            except TransportError as err:
                failures += 1
                # an outage is told once, when it starts; its later attempts only at -vv
                self.say("problem" if failures == 1 else "debug",
                         f"{err} (trying again, with pauses up to "
                         f"{self.settings.backoff[-1]:g} s)")
                sleep_until_stopped(backoff_delay(failures, self.settings.backoff), self.stop)

    def handle(self) -> None:
        """Poll every folder once under the lock; when cron's run holds it, try again soon."""
        self._last_try = time.monotonic()
        from mailflow.desk.polling import poll_once
        try:
            report = poll_once(self.loaded, self.store, self.clock())
        except LockedError:
            return  # `run` is polling right now; we look again in RETRY_LOCKED seconds
        self.pending = False
        self.on_report(report)

    def _due_retry(self) -> bool:
        return self.pending and time.monotonic() - self._last_try >= self.settings.retry_locked

    def _renew_after(self) -> float:
        """Seconds of IDLE before renewing: sooner when other folders (or other identities'
        mailboxes, which are polled but not IDLEd on) need polling too."""
        mailboxes = sum(1 for i in self.loaded.config.identities if i.imap is not None)
        if len(self.imap.folders) > 1 or mailboxes > 1:
            return min(self.settings.idle_renew, self.settings.poll_every)
        return self.settings.idle_renew

    def _idle_loop(self, mb) -> None:  # noqa: ANN001 - IdleMailbox
        # selected before the first poll: whatever arrives after this moment is announced
        folder = self.imap.folders[0]
        renew = self._renew_after()
        mb.select(folder)
        first = True
        while not self.stop.stopped:
            if self.pending:
                mb.forget_news()  # imaplib keeps EXISTS from EXAMINE and DONE; polled now
                self.handle()
            news = mb.idle()
            self.say("note" if first else "debug", f"waiting for new mail in {folder} (IDLE)")
            first = False
            started = time.monotonic()
            while not (news or self.stop.stopped or self._due_retry()
                       or time.monotonic() - started >= renew):
                news = mb.wait(TICK)
            news = mb.done() or news
            # a renewal polls too: it covers the other folders, which are not IDLEd on
            if news or time.monotonic() - started >= renew:
                self.pending = True

    def _poll_loop(self) -> None:
        while not self.stop.stopped:
            self.pending = True
            self.handle()
            wait = self.settings.retry_locked if self.pending else self.settings.poll_every
            sleep_until_stopped(wait, self.stop)
