"""Drafting, the tick's step between planning and sending: render each message due within the
review period, check its people, keep its words and its prebuilt MIME, and decide whether it
waits for the consultant's approval. Each draft is one journal event; a failure blocks only
that draft (engine/tick.py runs the steps)."""

from __future__ import annotations

import datetime as dt
import hashlib

from mailflow.config.engagements import hydrate
from mailflow.config.loading import Loaded, schedule
from mailflow.config.rules import Stage
from mailflow.config.settings import Identity
from mailflow.engine import checklist
from mailflow.engine.reactions import RULE_APPROVAL
from mailflow.engine.recipients import emails, recipients_of, same_people
from mailflow.engine.records import PENDING, EngagementStatus
from mailflow.engine.records import MessageState as S
from mailflow.engine.records import stored_time as _ts
from mailflow.engine.report import TickReport
from mailflow.errors import ConfigError, DependencyError, RenderError
from mailflow.store import State, Writer, now_iso

# engine.wire and render.compose (and with them the email package, a tenth of an idle tick's
# start at 10,000 engagements) are imported where a message is drafted (issue 18)


class Drafting:
    """The drafting step of a Tick (a mixin: the Tick holds the state, writer and report)."""

    loaded: Loaded
    w: Writer
    state: State
    now: dt.datetime
    report: TickReport
    bodies_written: set[str]  # the bodies this tick kept (sending them need not read them back)

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
        base = hydrate(eng)  # read only: the context and the attachment rules each add theirs
        hydrated = {**base, "invoices": checklist.invoices_as_marked(base)}
        ctx = self.loaded.context_for(eng)
        sent = {m["stage"]: _ts(m["sent_at"]).astimezone(ctx.zone)
                for m in self.state.messages_of(eng["id"]) if m.get("sent_at") and m["step"] == 0}
        to, cc = recipients_of(eng)
        seq = self.loaded.sequence_for(eng)
        try:
            stage = seq.stage(msg["stage"])
            names = self._attachment_names(msg, base, stage)
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
        body = self.w.put_body(rendered.html, rendered.text)
        self.bodies_written.add(body)
        changes = {"subject": subject, "body": body,
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

    def _attachment_names(self, msg: dict, hydrated: dict, stage: Stage) -> tuple[str, ...]:
        """The documents a stage's first email carries (reminders in its thread carry none);
        `hydrated` is the engagement as config.engagements.hydrate gives it."""
        if msg["step"] != 0 or not stage.attach:
            return ()
        return stage.attachments_for({**hydrated, **checklist.planning_facts(hydrated)})

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


def _late_unasked(msg: dict) -> bool:
    """Whether a message is held as late and the consultant has not approved it as such."""
    return bool(msg.get("late_hold")) and msg.get("late_ok_for") != msg.get("late_hold")


def _re(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"
