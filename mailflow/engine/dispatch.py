"""Dispatch, the tick's last steps: hold what is overdue or late, pick what may go out now
(window, order, throttle, replies unreadable), and send it in durable groups over each
identity's connection (engine/senders.py), recording every outcome (engine/tick.py runs the
steps)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from mailflow import timing
from mailflow.config.loading import Loaded, schedule
from mailflow.config.settings import Identity
from mailflow.engine import sending
from mailflow.engine.drafting import _late_unasked
from mailflow.engine.outcomes import Delivery, Transport
from mailflow.engine.reactions import waits_for_replies
from mailflow.engine.records import EngagementStatus
from mailflow.engine.records import MessageState as S
from mailflow.engine.records import stored_time as _ts
from mailflow.engine.report import TickReport
from mailflow.store import State, Writer, now_iso


class Dispatch:
    """The holding and sending steps of a Tick (a mixin: the Tick holds state and writer)."""

    loaded: Loaded
    w: Writer
    state: State
    now: dt.datetime
    report: TickReport
    progress: Callable[[int], AbstractContextManager] | None
    poll_failed: bool
    poll_failed_for: set[str]
    bodies_written: set[str]

    def hold_overdue(self) -> None:
        """After downtime, a message far past its time waits for the consultant (no burst)."""
        days, business = timing.parse_duration(str(schedule(self.loaded.config, "grace")))
        for msg in self.state.live_messages():
            if msg["state"] != S.APPROVED or msg.get("late_ok") or msg.get("sent_at"):
                continue
            if not self._predecessor_done(msg):
                continue  # its date is a projection until the earlier stage goes out
            eng = self.state.engagements.get(msg["engagement"])
            if eng is None or eng.get("status") != EngagementStatus.ACTIVE:
                continue
            stage = self.loaded.sequence_for(eng).stage(msg["stage"])
            if stage.late == "send":
                continue
            ctx = self.loaded.context_for(eng)
            due_local = _ts(msg["due"]).astimezone(ctx.zone).date()
            today = self.now.astimezone(ctx.zone).date()
            late = (timing.business_days_between(due_local, today, ctx.calendar) if business
                    else (today - due_local).days)
            if late > days:
                self.mark(msg, "message.held", state=S.AWAITING_APPROVAL, overdue=True,
                          note=f"overdue by {late} {'business ' if business else ''}days; "
                               "approve it again to send it now")
                self.report.held.append(msg["key"])
                self.report.problems.append(
                    f"{msg['key']}: overdue by {late} days, held for you "
                    f"(`mailflow drafts approve {msg['key']}` sends it at the next opening)")

    def hold_late(self) -> None:
        """A stage now falling after the date it is timed before waits for the consultant,
        whatever its approval setting (issue 13: never late without asking)."""
        for msg in self.state.live_messages():
            if msg["state"] != S.APPROVED or msg.get("sent_at") or not _late_unasked(msg):
                continue
            eng = self.state.engagements.get(msg["engagement"])
            if eng is None or eng.get("status") != "active":
                continue
            self.mark(msg, "message.held", state=S.AWAITING_APPROVAL, note=msg["late_hold"])
            self.report.held.append(msg["key"])

    def due_messages(self) -> list[dict]:
        """Approved messages that may go out now: due, in order, in the window, under the limit."""
        from mailflow.engine.senders import budgets
        budget, group_of = budgets(self)  # each identity has its own limits
        picked = sending.select_due(self.state.messages, self.state.engagements, self.now,
                                    budget, self._window_opens, group_of=group_of,
                                    among=self.state.live_messages())
        self.report.deferred += picked.deferred
        if picked.deferred and (picked.over_limit or any(
                budget.get(g, 0) <= n for g, n in picked.taken.items())):
            self.report.notes.append(f"{self.report.deferred} due message(s) wait for the send "
                                     "window or the rate limit")
        return [m for m in picked.due
                if not self._held_for_replies(m, self.state.engagements[m["engagement"]])]

    def _window_opens(self, msg: dict, eng: dict) -> dt.datetime:
        stage = self.loaded.sequence_for(eng).stage(msg["stage"])
        ctx = self.loaded.context_for(eng)
        return timing.next_opening(self.now, ctx.zone, stage.window, ctx.calendar)[0]

    def _held_for_replies(self, msg: dict, eng: dict) -> bool:
        """Hold an automatic follow-up that a reply could stop while replies cannot be read.

        Said once per outage (a mark on the message), not on every tick of cron; the mark is
        cleared by the first tick whose poll succeeded, and the message goes out then.
        """
        from mailflow.engine.senders import identity_key
        # only the mailbox of the identity it goes out as matters (issue 15)
        unread = self.poll_failed and (not self.poll_failed_for
                                       or identity_key(self, msg) in self.poll_failed_for)
        if not unread:
            if msg.get("held_for_replies"):
                self.mark(msg, "message.released", held_for_replies=None,
                          note="replies were read again")
            return False
        why = waits_for_replies(msg, self.loaded.sequence_for(eng),
                                self.state.messages_of(eng["id"]))
        if why is None:
            return False
        self.report.deferred += 1
        if not msg.get("held_for_replies"):
            self.mark(msg, "message.held_for_replies", held_for_replies=now_iso(self.now),
                      note=f"held while replies cannot be read: {why}")
            self.report.problems.append(
                f"{msg['key']}: held while replies cannot be read ({why}); it goes out on the "
                "first run after a successful poll, if still due")
        return True

    def _predecessor_done(self, msg: dict) -> bool:
        return sending.predecessor_done(msg, self.state.messages)

    def send(self, due: list[dict], open_transport: Callable[[Identity], Transport]
             ) -> list[tuple[dict, bytes]]:
        """Send each identity's due messages over its own connection; returns what went out.

        One message that cannot be built or offered fails alone; a server that cannot be
        reached at all (or whose secret is missing) stops only its identity's batch: the
        rest wait for the next tick, untouched, and the other identities go on.
        """
        from mailflow.engine.senders import by_identity, send_as
        delivered: list[tuple[dict, bytes]] = []
        bar_cm = self.progress(len(due)) if self.progress and len(due) > 3 else nullcontext()
        with bar_cm as bar:
            for ident, batch in by_identity(self, due):
                delivered += send_as(self, ident, batch, open_transport, bar)
        return delivered

    def wire(self, msg: dict) -> tuple[bytes, list[str]]:
        """The message as it goes on the wire, and its envelope recipients (engine/wire.py):
        from the copy prebuilt when it was drafted, else built now."""
        from mailflow.engine.wire import prebuilt_key, wire_message
        root = self.state.messages.get(msg.get("thread_root") or "")
        siblings = self.state.messages_of(msg["engagement"]) if root is not None else []
        ident = self.loaded.identity_of(msg, self.state.engagements.get(msg["engagement"], {}))
        sender = {"name": ident.name, "email": ident.email}
        # read even when prebuilt: a draft whose body or document is lost is blocked, as the
        # approved words must stay in the store for `drafts show` and the audit (a body this
        # tick has just written is there: read only if the prebuilt copy cannot serve)
        body = None if msg["body"] in self.bodies_written else self.w.body(msg["body"])
        files = tuple((a["filename"], a["content_type"], self.w.attachment(a["ref"]))
                      for a in msg.get("attachments") or ())
        kept = msg.get("prebuilt") or {}
        if kept.get("key") == prebuilt_key(msg, sender, ident.reply_to_token):
            raw = self.w.wire_copy(kept["ref"])  # None: gone or damaged, built afresh
            if raw is not None:
                return wire_message(msg, root, siblings, None, sender, ident.reply_to_token,
                                    self.now, prebuilt=(raw, kept["envelope"]))
        return wire_message(msg, root, siblings, body or self.w.body(msg["body"]), sender,
                            ident.reply_to_token, self.now, files)

    def _record_result(self, msg: dict, result: Delivery, *, durable: bool = True) -> bool:
        """Journal one attempt's per-recipient outcomes; True when someone got it just now.

        `durable` false: the caller commits them with the rest of its send group."""
        lifetime = dt.timedelta(hours=schedule(self.loaded.config, "retry_lifetime_hours"))
        rec = sending.record_delivery(msg, result, self.now, lifetime)
        if rec.bounced:
            eng = self.state.engagements[msg["engagement"]]
            changes = {"bounced": sorted(set(eng.get("bounced", []) + rec.bounced)),
                       "flagged": f"{', '.join(rec.bounced)} refused by the server",
                       "data_rev": eng.get("data_rev", 0) + 1}  # redraft without them
            self.w.record("engagement.bounced", at=self.now,
                          engagements={"key": eng["id"], "set": changes})
        self.mark(msg, rec.kind, durable=durable, **rec.changes)
        if rec.delivered:
            self.report.sent.append(msg["key"])
        if rec.retrying:
            self.report.retrying.append(msg["key"])
        self.report.problems.extend(rec.problems)
        self.report.notes.extend(rec.notes)
        return rec.delivered
