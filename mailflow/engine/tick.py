"""One tick of `mailflow run`: settle, poll, plan, draft, hold, send, record.

Every decision about a message is recorded as a journal event; the SMTP transaction of each
message sits between two fsynced marks (`sending`, then the outcome), so a crash at any
point leaves a message either untouched, sent, or visibly in doubt, never sent twice.
Planning is here; drafting is engine/drafting.py, holding and sending engine/dispatch.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager

from mailflow.config.loading import Loaded
from mailflow.config.settings import Identity
from mailflow.engine import sending, stored_plan
from mailflow.engine.checklist_of import items_from
from mailflow.engine.dispatch import Dispatch
from mailflow.engine.drafting import Drafting
from mailflow.engine.outcomes import Transport
from mailflow.engine.planner import PlanItem, plan_stored
from mailflow.engine.records import ENDED, FINAL, PENDING, EngagementStatus, PlanStatus
from mailflow.engine.records import MessageState as S
from mailflow.engine.report import TickReport
from mailflow.errors import MailflowError
from mailflow.store import State, Writer, now_iso

__all__ = ["Tick", "TickReport"]

# what the planner reads of a message besides a final state (engine/planner.py)
_PLANNED_FROM = ("sent_at", "out_of_office_until")


class Tick(Drafting, Dispatch):
    """The steps of one run over the state held by a Writer."""

    def __init__(self, loaded: Loaded, writer: Writer, now: dt.datetime, *, dry_run: bool = False,
                 progress: Callable[[int], AbstractContextManager] | None = None) -> None:
        self.loaded = loaded
        self.w = writer
        self.state: State = writer.state
        self.now = now.astimezone(dt.UTC)
        self.dry_run = dry_run
        self.report = TickReport()
        self.progress = progress  # total -> a progress bar (a context with .update(n))
        self.delivered: list[tuple[dict, bytes]] = []  # sent this tick, for the Sent copy
        self.unsent: list[dict] = []  # due, but no way to send was given
        self.poll_failed = False  # IMAP was unreachable this tick (any identity's)
        self.poll_failed_for: set[str] = set()  # the identities (emails) whose poll failed
        # the [imap] of the mailbox being read: its authserv_id judges the mail found there
        self.polling_imap = None
        # engagements whose stored plan is current: id -> the rev it stays current at, moved
        # on by each change of this tick that the planner does not read (see keep_plans)
        self._current: dict[str, int] = {}
        self._kept: set[str] = set()  # those of them changed since (their stamp to renew)
        self.bodies_written: set[str] = set()

    # -- the steps -------------------------------------------------------------------------

    def run(self, poll: Callable[[Tick], None] | None = None,
            send_with: Callable[[Identity], Transport] | None = None) -> TickReport:
        """Every step in order; `poll` plugs in the mailboxes, `send_with` opens the
        transport of one sender identity."""
        self.settle_interrupted()
        if poll is not None:
            poll(self)
        self.plan()
        self.draft()
        self.hold_overdue()
        self.hold_late()
        due = self.due_messages()
        if due:
            if self.dry_run:
                self.report.would_send.extend(m["key"] for m in due)
            elif send_with is not None:
                self.delivered = self.send(due, send_with)
            else:
                self.unsent = due
        if not self.dry_run:
            self.tell()
            self.keep_plans()
        return self.report

    def tell(self) -> None:
        """Say each thing that newly needs the consultant once (see engine/told.py)."""
        from mailflow.engine.told import tell
        tell(self)

    def settle_interrupted(self) -> None:
        """Messages left `sending` by a process that died: the one that may have been in
        flight is in doubt; those it never offered go back (engine/sending.py)."""
        left = [m for m in self.state.live_messages() if m.get("state") == S.SENDING]
        if not left:
            return
        from mailflow.boot import boot_id
        doubt, never = sending.settle_interrupted(left, boot_id())
        for msg in doubt:
            self.mark(msg, "message.in_doubt", **sending.interrupted(msg, self.now))
            self.report.problems.append(
                f"{msg['key']}: in doubt (interrupted while sending); check your Sent "
                f"folder, then `mailflow drafts resolve {msg['key']} --sent|--resend`")
        for msg in never:
            self.mark(msg, "message.not_attempted", **sending.not_attempted(msg))
            self.report.notes.append(f"{msg['key']}: not offered to the server before "
                                     "mailflow stopped; it goes out as planned")
        self.w.commit()  # settled before anything else happens

    def plan(self) -> None:
        """Plan every active engagement whose inputs changed, and bring its messages in line."""
        # snapshots, not State.messages_of: planning adds messages, and each addition would
        # make that index rebuild over the whole store; made when first needed, as most ticks
        # plan nothing (a walk over every message was a twentieth of the idle tick at 10,000)
        snapshots: dict[str, dict[str, dict[str, dict]]] = {}

        def messages_of(eid: str, live: bool) -> dict[str, dict]:
            name = "live" if live else "all"
            if name not in snapshots:
                grouped: dict[str, dict[str, dict]] = {}
                for msg in (self.state.live_messages() if live else
                            self.state.messages.values()):
                    grouped.setdefault(msg["engagement"], {})[msg["key"]] = msg
                snapshots[name] = grouped
            return snapshots[name].get(eid, {})

        replies: dict[str, list[dict]] | None = None
        for eng in self.state.engagements.values():
            if eng.get("status") != EngagementStatus.ACTIVE:
                if eng.get("status") in ENDED:  # (its pending messages are all live ones)
                    self._cancel_pending(messages_of(eng["id"], True),
                                         f"engagement {eng['status']}")
                continue
            if eng.get("planned") == self._signature(eng):
                self._current[eng["id"]] = eng.get("rev", 0)
                continue  # nothing that planning depends on changed since the last tick
            msgs = messages_of(eng["id"], False)
            if replies is None:
                replies = self.state.replies_by_engagement()
            try:
                items = self.plan_one(eng, msgs, replies.get(eng["id"], []))
            except MailflowError as err:
                self.report.problems.append(str(err))
                continue
            self._apply_plan(eng, items, msgs)
            if not any(i.status == PlanStatus.ERROR for i in items):
                # journaled too (the checkpoint holds nothing the journal lacks), yet without
                # `engagement=`: that would bump the engagement's rev and void the signature
                # the items too, so that views show this plan without planning again
                # and its open checklist items, which depend on nothing else (status)
                open_items = items_from(self.loaded, eng, msgs.values(),
                                        replies.get(eng["id"], []))
                self.w.record("engagement.planned", at=self.now, engagements={
                    "key": eng["id"], "set": {
                        "planned": self._signature(eng),
                        "kept": stored_plan.pack_kept(items, open_items)}})
                self._current[eng["id"]] = eng.get("rev", 0)

    def plan_one(self, eng: dict, msgs: dict[str, dict], replies: list[dict]) -> list[PlanItem]:
        """The planner's items for one engagement (pure)."""
        return plan_stored(self.loaded, eng, msgs, replies)

    def _signature(self, eng: dict) -> str:
        return stored_plan.signature(self.loaded, eng)

    def _apply_plan(self, eng: dict, items: list[PlanItem], msgs: dict[str, dict]) -> None:
        for item in items:
            msg = msgs.get(item.key)
            if item.status == PlanStatus.ERROR:
                self.report.problems.append(f"engagement {eng['id']}: {item.stage}: "
                                            f"{'; '.join(item.reasons)}")
                continue
            if item.status == PlanStatus.SCHEDULED:
                due = now_iso(item.due)
                if msg is None:
                    # a journal event like any other change: replay must recreate it whole
                    msg = msgs[item.key] = self.w.create_message({
                        "key": item.key, "engagement": item.engagement, "stage": item.stage,
                        "step": item.step, "template": item.template, "approval": item.approval,
                        "due": due, "reasons": list(item.reasons), "after": item.after,
                        "thread_root": item.thread_root, "late_hold": item.hold}, at=self.now)
                elif msg["state"] in PENDING and (msg.get("due") != due
                                                  or msg.get("after") != item.after
                                                  or msg.get("late_hold") != item.hold):
                    self.mark(msg, "message.redated", due=due, reasons=list(item.reasons),
                              after=item.after, late_hold=item.hold)
            elif item.status in (PlanStatus.SKIPPED, PlanStatus.STOPPED) and msg \
                    and msg["state"] in PENDING:
                self.mark(msg, "message.cancelled", state=S.CANCELLED,
                          note="; ".join(item.reasons))
                self.report.cancelled.append(item.key)
            elif item.status == PlanStatus.WAITING and msg and msg["state"] in PENDING \
                    and msg.get("after") != item.after:
                self.mark(msg, "message.redated", after=item.after, reasons=list(item.reasons))

    def _cancel_pending(self, msgs: dict[str, dict], why: str) -> None:
        for msg in msgs.values():
            if msg["state"] in PENDING:
                self.mark(msg, "message.cancelled", state=S.CANCELLED, note=why)
                self.report.cancelled.append(msg["key"])

    # -- recording -------------------------------------------------------------------------

    def mark(self, msg: dict, kind: str, *, durable: bool = False, append: dict | None = None,
             **changes: object) -> None:
        """Record a change to a message, at this tick's time (durable: fsynced at once)."""
        eid = msg["engagement"]
        if eid in self._current:
            if _moves_plan(msg, changes):
                del self._current[eid]
            else:  # the event bumps the engagement's rev by one: the plan stays current
                self._current[eid] += 1
                self._kept.add(eid)
        self.w.update_message(msg, kind, at=self.now, durable=durable, append=append, **changes)

    def keep_plans(self) -> None:
        """Renew the plan stamp of engagements whose only changes this tick were ones the
        planner does not read (a draft, an approval, a hold, a retry), so the next tick does
        not plan them again (issue 18: the send path re-planned every engagement it drafted).
        The open checklist kept beside the plan reads no more of a message than the planner
        (a carrier stage's send), so it holds as well.

        Any other event about the engagement (a send, its data, a reply, anything recorded
        outside Tick.mark) leaves its rev off the count, and it is planned again as before."""
        for eid in sorted(self._kept):
            eng = self.state.engagements.get(eid)
            if eng is None or eid not in self._current or eng.get("rev", 0) != self._current[eid]:
                continue
            self.w.record("engagement.planned", at=self.now,
                          engagements={"key": eid, "set": {"planned": self._signature(eng)}})
        self._kept.clear()


def _moves_plan(msg: dict, changes: dict) -> bool:
    """Whether a change to a message may change its engagement's plan (or its kept checklist):
    they read a message's final state (with its due and reasons), its send time and an
    out-of-office date."""
    if msg.get("state") in FINAL or changes.get("state") in FINAL:
        return True
    return any(name in changes for name in _PLANNED_FROM)
