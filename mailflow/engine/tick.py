"""One tick of `mailflow run`: settle, poll, plan, draft, hold, send, record.

Every decision about a message is recorded as a journal event; the SMTP transaction of each
message sits between two fsynced marks (`sending`, then the outcome), so a crash at any
point leaves a message either untouched, sent, or visibly in doubt, never sent twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from mailflow import timing
from mailflow.config.engagements import hydrate
from mailflow.config.loading import Loaded, schedule
from mailflow.config.rules import Stage
from mailflow.config.settings import Identity
from mailflow.engine import checklist, sending, stored_plan
from mailflow.engine.checklist_of import items_from
from mailflow.engine.outcomes import Delivery, Transport
from mailflow.engine.planner import PlanItem, plan_stored
from mailflow.engine.reactions import RULE_APPROVAL, waits_for_replies
from mailflow.engine.recipients import emails, recipients_of, same_people
from mailflow.engine.records import ENDED, PENDING, EngagementStatus, PlanStatus
from mailflow.engine.records import MessageState as S
from mailflow.engine.records import stored_time as _ts
from mailflow.errors import ConfigError, DependencyError, MailflowError, RenderError
from mailflow.store import State, Writer, now_iso

# engine.wire and render.compose (and with them the email package, a tenth of an idle tick's
# start at 10,000 engagements) are imported where a message is drafted or sent (issue 18)


@dataclass
class TickReport:
    """What one tick did, for the CLI to print (quiet when nothing went wrong)."""

    drafted: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    would_send: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    deferred: int = 0  # due but throttled or outside the window; they go out on a later tick
    problems: list[str] = field(default_factory=list)  # each one line; any makes the exit non-zero
    notes: list[str] = field(default_factory=list)  # worth saying, not failures
    withdrawn: list[str] = field(default_factory=list)  # approvals the new data took back
    replies: int = 0
    unmatched: int = 0  # polled mail that answers nothing we sent
    told: list[str] = field(default_factory=list)  # newly needs the consultant: said once
    waiting: list = field(default_factory=list)  # attention.Need: everything waiting now
    # exit codes of the errors behind `problems` (a server that could not be reached is 6,
    # as the README's table says; any other problem is 1)
    codes: set[int] = field(default_factory=set)

    @property
    def exit_code(self) -> int:
        """0 all is well; else 6 a server not reached, 7 a draft not rendered, 2 bad config, 1."""
        if not (self.problems or self.told):
            return 0
        return next((code for code in (6, 7, 2) if code in self.codes), 1)

    @property
    def ok(self) -> bool:
        """True when nothing needs the consultant's attention."""
        return not self.problems


class Tick:
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

    def draft(self) -> None:
        """Render messages due within the review period, so the consultant can approve early."""
        horizon = self.now + dt.timedelta(days=schedule(self.loaded.config, "review_days"))
        for msg in self.state.live_messages():
            state = msg["state"]
            if state not in PENDING:
                continue
            if state in (S.PLANNED, S.BLOCKED) and _ts(msg["due"]) > horizon:
                continue  # (first: most live messages are planned for later)
            eng = self.state.engagements.get(msg["engagement"])
            if eng is None or eng.get("status") != EngagementStatus.ACTIVE:
                continue
            if state not in (S.PLANNED, S.BLOCKED) \
                    and msg.get("rendered_for") == self._render_signature(eng) \
                    and msg.get("rendered_hold") == msg.get("late_hold"):
                continue  # rendered from the current data and templates
            if state == S.RETRY and msg.get("sent_at"):
                continue  # partly delivered: the others must get the very same message
            if msg.get("edited") and state not in ("planned", "blocked"):
                # the words are the consultant's and stay; the people follow the data
                if state in ("awaiting_approval", "approved") \
                        and msg.get("rendered_for") != self._render_signature(eng):
                    self.readdress(msg, eng)
                continue
            self.render(msg, eng)

    def _render_signature(self, eng: dict) -> str:
        return f"{eng.get('data_rev', 0)}:{self.loaded.renderer_digest}"

    def readdress(self, msg: dict, eng: dict) -> None:
        """Bring a hand-edited draft's recipients in line with the engagement's contacts."""
        to, cc = recipients_of(eng)
        changes: dict = {"rendered_for": self._render_signature(eng)}
        if (emails(to), emails(cc)) == (emails(msg.get("to")), emails(msg.get("cc"))):
            self.mark(msg, "message.rerendered", **changes)
            return
        if not to:
            self.mark(msg, "message.blocked", state=S.BLOCKED, **changes,
                      error=f"engagement {eng['id']}: {msg['key']}: every recipient in "
                            "contacts.to has bounced")
            return
        changes.update(to=to, cc=cc)
        if msg["state"] == S.APPROVED and not same_people(msg, to, cc, eng):
            changes.update(state=S.AWAITING_APPROVAL,
                           note="approval withdrawn: the recipients changed")
            self.report.held.append(msg["key"])
            self._withdrawn(msg, changes["note"])
        self.mark(msg, "message.readdressed", **changes)

    def _withdrawn(self, msg: dict, note: str) -> None:
        # not a problem of the run: the draft waits for approval like any other, and is told
        # as such; the command that changed the data says why at once
        self.report.withdrawn.append(f"{msg['key']}: {note}; approve it again to send it "
                                     f"(`mailflow drafts approve {msg['key']}`)")
        self.report.notes.append(f"{msg['key']}: {note}")

    # Long on purpose: rendering, recipient checks and the approval decision are one atomic
    # step per draft (one journal event), and each failure blocks only this draft.
    def render(self, msg: dict, eng: dict) -> bool:
        """Render one message and move it to awaiting approval (or approved when none needed)."""
        from mailflow.render.context import template_context
        hydrated = hydrate(eng)
        hydrated["invoices"] = checklist.invoices_as_marked(hydrated)
        ctx = self.loaded.context_for(eng)
        sent = {m["stage"]: _ts(m["sent_at"]).astimezone(ctx.zone)
                for m in self.state.messages_of(eng["id"]) if m.get("sent_at") and m["step"] == 0}
        to, cc = recipients_of(eng)
        seq = self.loaded.sequence_for(eng)
        try:
            stage = seq.stage(msg["stage"])
            names = self._attachment_names(msg, eng, stage)
            if not to:
                raise RenderError(f"{msg['key']}: every recipient in contacts.to has bounced")
            # the lead's own identity: From, Reply-To, Message-ID and signature agree
            ident = self.loaded.identity_for(eng)
            reminder = stage.reminder_at(msg["step"]) if msg["step"] else None
            if reminder is not None and not reminder.cc:
                cc = []  # the rule sends this reminder to the To recipients only
            context = template_context(
                hydrated, sender_name=ident.name,
                sender_email=ident.email, stage_id=stage.id,
                stage_name=stage.name, step=msg["step"], now_local=self.now.astimezone(ctx.zone),
                sent=sent, recipient=to[0], to=to, cc=cc,
                locale=eng.get("locale") or self.loaded.config.locale,
                sends_on=max(_ts(msg["due"]), self.now).astimezone(ctx.zone).date(),
                attached=names)
            rendered = self.loaded.renderer.render(msg["template"], context)
            attachments = self._attachments(msg, eng, stage, names)
            subject = rendered.subject
            root = self.state.messages.get(msg.get("thread_root") or "")
            if root is not None:
                subject = _re(root.get("subject") or subject)
            # a bad address is found at review time, not when sending (the subject was
            # checked by the renderer); the message itself is built once, when it goes out
            from mailflow.render.compose import address
            for field, people in (("contacts.to", to), ("contacts.cc", cc)):
                for person in people:
                    address(person, f"engagement {eng['id']}: {field}")
        except (RenderError, DependencyError, ConfigError, KeyError) as err:
            error = f"engagement {eng['id']}: {msg['key']}: {err}".replace(
                f"engagement {eng['id']}: {msg['key']}: engagement {eng['id']}: ",
                f"engagement {eng['id']}: {msg['key']}: ")
            if msg.get("error") != error or msg["state"] != S.BLOCKED:
                self.mark(msg, "message.blocked", state=S.BLOCKED, error=error)
            self.report.problems.append(error)
            self.report.codes.add(getattr(err, "exit_code", RenderError.exit_code))
            return False
        kept = [{"name": name, "filename": filename, "content_type": ctype, "size": len(data),
                 "ref": self.w.put_attachment(data)}
                for name, (filename, ctype, data) in attachments]
        # an attachment is part of what the consultant approves: a new one withdraws approval
        digest = hashlib.sha256("\x00".join((subject, rendered.html, rendered.text,
                                             *(a["ref"] for a in kept))).encode()
                                ).hexdigest()[:16]
        changes = {"subject": subject, "body": self.w.put_body(rendered.html, rendered.text),
                   "attachments": kept,
                   "to": to, "cc": cc, "digest": digest,
                   "rendered_for": self._render_signature(eng), "error": None,
                   "sender_email": ident.email,
                   # held as late: rendered again, so no "before <date>" is already past
                   "rendered_hold": msg.get("late_hold")}
        if not msg.get("message_id"):
            from mailflow.render.compose import make_message_id, make_reply_token
            changes["message_id"] = make_message_id(ident.domain, self.now)
            changes["reply_token"] = make_reply_token()
        changes["prebuilt"] = self._prebuild(
            msg, changes, rendered.html, rendered.text, ident,
            tuple((a["filename"], a["content_type"], data)
                  for a, (_, (_, _, data)) in zip(kept, attachments, strict=True)))
        kept_people = same_people(msg, to, cc, eng)
        if msg["state"] in (S.APPROVED, S.RETRY) and msg.get("digest") == digest and kept_people:
            # same words to the same people: the approval (and a retry's schedule) stands
            self.mark(msg, "message.rerendered", **changes)
            return True
        needs_approval = msg.get("approval", True) or _late_unasked(msg)
        new_state = S.AWAITING_APPROVAL if needs_approval else S.APPROVED
        extra = {} if needs_approval else {"approved_by": RULE_APPROVAL,
                                           "approved_at": now_iso(self.now)}
        if msg["state"] == "approved" and needs_approval:
            what = [name for name, changed in (
                ("recipients", not kept_people), ("subject", subject != msg.get("subject")),
                ("body", changes["body"] != msg.get("body"))) if changed]
            extra["note"] = f"approval withdrawn: the {' and '.join(what) or 'draft'} changed"
            self._withdrawn(msg, extra["note"])
        self.mark(msg, "message.drafted", state=new_state, **changes, **extra)
        self.report.drafted.append(msg["key"])
        if needs_approval:
            self.report.held.append(msg["key"])
        return True

    def _attachment_names(self, msg: dict, eng: dict, stage: Stage) -> tuple[str, ...]:
        """The documents a stage's first email carries (reminders in its thread carry none)."""
        if msg["step"] != 0 or not stage.attach:
            return ()
        data = hydrate(eng)
        data.update(checklist.planning_facts(data))
        return stage.attachments_for(data)

    def _attachments(self, msg: dict, eng: dict, stage: Stage, names: tuple[str, ...]
                     ) -> list[tuple[str, tuple[str, str, bytes]]]:
        """The named documents, rendered as of the email's send time (`mailflow doc`'s code:
        the attachment and the command cannot disagree); jinja2 loads only when needed."""
        if not names:
            return []
        from mailflow.engine.documents import draft_attachments
        files = draft_attachments(self.loaded.project, self.state, self.loaded, eng, names,
                                  stage.attach_format, max(_ts(msg["due"]), self.now))
        return list(zip(names, files, strict=True))

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
        # approved words must stay in the store for `drafts show` and the audit
        body = self.w.body(msg["body"])
        files = tuple((a["filename"], a["content_type"], self.w.attachment(a["ref"]))
                      for a in msg.get("attachments") or ())
        kept = msg.get("prebuilt") or {}
        if kept.get("key") == prebuilt_key(msg, sender, ident.reply_to_token):
            raw = self.w.wire_copy(kept["ref"])  # None: gone or damaged, built afresh
            if raw is not None:
                return wire_message(msg, root, siblings, None, sender, ident.reply_to_token,
                                    self.now, prebuilt=(raw, kept["envelope"]))
        return wire_message(msg, root, siblings, body, sender, ident.reply_to_token, self.now,
                            files)

    def _prebuild(self, msg: dict, changes: dict, html: str, text: str, ident: Identity,
                  files: tuple[tuple[str, str, bytes], ...]) -> dict | None:
        """The draft's MIME bytes, built now and kept, so that sending it later is a read."""
        from mailflow.engine.wire import prebuild, prebuilt_key
        draft = {**msg, **changes}
        sender = {"name": ident.name, "email": ident.email}
        try:
            raw, envelope = prebuild(draft, (html, text), sender, ident.reply_to_token, files)
        except RenderError:
            return None  # said when it is sent, by the full build, as before
        return {"ref": self.w.put_wire_copy(raw), "envelope": envelope,
                "key": prebuilt_key(draft, sender, ident.reply_to_token)}

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

    # -- recording -------------------------------------------------------------------------

    def mark(self, msg: dict, kind: str, *, durable: bool = False, append: dict | None = None,
             **changes: object) -> None:
        """Record a change to a message, at this tick's time (durable: fsynced at once)."""
        self.w.update_message(msg, kind, at=self.now, durable=durable, append=append, **changes)


def _late_unasked(msg: dict) -> bool:
    """Whether a message is held as late and the consultant has not approved it as such."""
    return bool(msg.get("late_hold")) and msg.get("late_ok_for") != msg.get("late_hold")


def _re(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"
