"""What a reply does: (reply, matched message, stage rules, engagement, trust) -> changes. Pure.

The poller reads mail and moves the IMAP cursor; this module alone decides what a reply
changes, and returns the changes as typed records for the caller to apply through the
store's Writer. Nothing here reads a clock, a file or a socket, so every reaction is tested
directly (tests/unit/test_reactions.py).

Trust comes first: mailflow acts on its own (pauses, completes, suppresses an address,
pushes or stops a reminder) only on mail it can attribute. A reply counts when it comes
from one of the engagement's contacts (or their domain, when `mailflow.toml` allows it)
and the consultant's own mail server did not report a failed DKIM, SPF or DMARC check; a
bounce counts when it carries a Message-ID we sent and comes from a mail system. Anything
else is recorded and flagged, and `mailflow replies accept ID` acts on it by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mailflow.config.rules import Sequence, Stage

# reply kinds (mailflow.inbound.classify), kept as strings: records store them that way
HUMAN, AUTO_REPLY, BOUNCE, UNSUBSCRIBE = "human", "auto_reply", "bounce", "unsubscribe"
REPORT, DELIVERED, DELAY, UNREADABLE = "report", "delivered", "delay", "unreadable"


@dataclass(frozen=True)
class ReportedRecipient:
    """One recipient a delivery report names: address, action (failed, delayed...), status."""

    address: str
    action: str
    status: str | None = None
    diagnostic: str | None = None


@dataclass(frozen=True)
class ReplyFacts:
    """The parts of a recorded reply a reaction depends on."""

    id: str
    kind: str
    sender: str | None
    text: str = ""
    return_date: dt.date | None = None
    bounce_recipient: str | None = None
    bounce_status: str | None = None
    bounce_diagnostic: str | None = None
    delivery: tuple[ReportedRecipient, ...] = ()  # every recipient a delivery report names

    @classmethod
    def from_record(cls, rid: str, record: Mapping[str, Any]) -> ReplyFacts:
        """The facts of a stored reply record (as `mailflow replies accept` reads them)."""
        bounce = record.get("bounce") or {}
        back = record.get("return_date")
        return cls(id=rid, kind=record.get("kind") or HUMAN, sender=record.get("from"),
                   text=record.get("text") or "",
                   return_date=dt.date.fromisoformat(back) if back else None,
                   bounce_recipient=bounce.get("recipient"), bounce_status=bounce.get("status"),
                   bounce_diagnostic=bounce.get("diagnostic"), delivery=tuple(
                       ReportedRecipient(r["address"], r.get("action") or "", r.get("status"),
                                r.get("diagnostic"))
                       for r in bounce.get("recipients") or [] if r.get("address")))


@dataclass(frozen=True)
class Trust:
    """What is known about who sent a reply, gathered by the poller."""

    from_contact: bool
    auth_failures: tuple[str, ...] = ()  # "dmarc=fail"... from the trusted server only
    mail_system: bool = False  # null sender or a mailer daemon
    carries_our_message: bool = False  # a bounce's returned Message-ID is one we sent
    accepted_by: str | None = None  # the consultant accepted it: act as if trusted
    authors: tuple[str, ...] = ()  # every From address, when the message names more than one


@dataclass(frozen=True)
class MessageChange:
    """A change to one message: a journal event `kind` setting `changes`."""

    key: str
    kind: str
    changes: Mapping[str, Any]


@dataclass(frozen=True)
class EngagementChange:
    """A change to one engagement: a journal event `kind` setting `changes`."""

    engagement: str
    kind: str
    changes: Mapping[str, Any]


Change = MessageChange | EngagementChange


@dataclass(frozen=True)
class Reaction:
    """What a reply changes, whether it needs the consultant, and why it was not acted on."""

    changes: tuple[Change, ...] = ()
    needs_action: bool = False
    trusted: bool = True
    distrust: str | None = None  # why nothing was done on its own
    problems: tuple[str, ...] = field(default=())  # one line each, told once (exit non-zero)


def is_contact(sender: str | None, engagement: Mapping[str, Any], allow_domain: bool) -> bool:
    """Whether a sender is one of the engagement's contacts (or shares a contact's domain)."""
    if not sender or "@" not in sender:
        return False
    sender = sender.strip().lower()
    contacts = engagement.get("contacts") or {}
    emails = {p["email"].strip().lower() for p in (contacts.get("to") or [])
              + (contacts.get("cc") or []) if p.get("email")}
    if sender in emails:
        return True
    if not allow_domain:
        return False
    domains = {e.rpartition("@")[2] for e in emails}
    return sender.rpartition("@")[2] in domains


def _recipients(msg: Mapping[str, Any]) -> set[str]:
    return {p["email"].strip().lower() for p in (msg.get("to") or []) + (msg.get("cc") or [])
            if p.get("email")}


def distrust_reason(reply: ReplyFacts, msg: Mapping[str, Any], trust: Trust) -> str | None:
    """Why this reply must not be acted on automatically, or None when it may be."""
    if trust.accepted_by:
        return None
    if trust.auth_failures:
        return f"your mail server reports {', '.join(trust.auth_failures)}"
    if len(trust.authors) > 1:
        return f"its From names {len(trust.authors)} senders ({', '.join(trust.authors)})"
    if reply.kind == BOUNCE:
        if not trust.carries_our_message:
            return "a delivery failure report that does not carry a Message-ID mailflow sent"
        if not trust.mail_system:
            return "a delivery failure report not sent by a mail system (null or daemon sender)"
        return None
    if not trust.from_contact:
        return f"{reply.sender or 'an unknown sender'} is not a contact of this engagement"
    return None


def react(reply: ReplyFacts, msg: Mapping[str, Any], stage: Stage | None,
          engagement: Mapping[str, Any], trust: Trust,
          root: Mapping[str, Any] | None = None) -> Reaction:
    """The changes a reply to `msg` makes (root: the first message of its thread)."""
    eid = engagement["id"]
    if reply.kind in (DELAY, DELIVERED):
        return Reaction()  # still being tried, or arrived: never suppresses an address
    if reply.kind == REPORT:
        # an abuse/feedback report is about mail we sent, never a reply: only the consultant acts
        return Reaction(changes=(EngagementChange(eid, "engagement.changed", {
            "flagged": f"a feedback (abuse) report about {msg['stage']} arrived (reply "
                       f"{reply.id}); read it"}),), needs_action=True)
    if reply.kind == UNREADABLE:
        return Reaction(needs_action=True)  # the consultant reads the kept .eml
    why = distrust_reason(reply, msg, trust)
    if why is not None:
        return Reaction(needs_action=True, trusted=False, distrust=why, problems=(
            f"reply {reply.id} ({reply.kind.replace('_', ' ')} about {msg['key']}) was not acted "
            f"on: {why}; `mailflow replies accept {reply.id}` acts on it",))
    if reply.kind == AUTO_REPLY:
        if reply.return_date is None:
            return Reaction()
        thread = root or msg
        return Reaction(changes=(MessageChange(thread["key"], "message.out_of_office", {
            "out_of_office_until": reply.return_date.isoformat()}),))  # never stops anything
    if reply.kind == BOUNCE:
        return _bounced(reply, msg, engagement)
    if reply.kind == UNSUBSCRIBE:
        return Reaction(changes=(EngagementChange(eid, "engagement.changed", {
            "status": "paused",
            "flagged": f"{reply.sender} asked to stop receiving emails (reply {reply.id}); "
                       "paused until you decide"}),), needs_action=True)
    if reply.kind != HUMAN or stage is None:
        # a kind this module does not know yet (a new report type), or a stage that left
        # the rules since the message went out: recorded, and the consultant decides
        return Reaction(needs_action=True)
    action = stage.on_reply
    changes: tuple[Change, ...] = ()
    if action == "feedback":
        changes = (EngagementChange(eid, "engagement.changed", {
            "feedback": reply.text, "feedback_reply": reply.id}),)
    elif action == "pause":
        changes = (EngagementChange(eid, "engagement.changed", {
            "status": "paused", "flagged": f"paused by a reply to {stage.id} (reply {reply.id})"}),)
    elif action == "complete":
        changes = (EngagementChange(eid, "engagement.changed", {"status": "completed"}),)
    return Reaction(changes=changes, needs_action=action in ("needs_action", "pause"))


def failed_recipients(reply: ReplyFacts, msg: Mapping[str, Any]) -> list[str]:
    """Failed recipients of a bounce that this message was sent to (never anyone else)."""
    sent_to = sorted(_recipients(msg))
    failed = [d.address.lower() for d in reply.delivery if d.action == "failed"]
    if not reply.delivery and reply.bounce_recipient:
        failed = [reply.bounce_recipient.lower()]  # a record from before per-recipient reports
    if not failed and len(sent_to) == 1:
        return sent_to  # a failure for a one-recipient message can only be about that one
    return [a for a in dict.fromkeys(failed) if a in sent_to]


def _bounced(reply: ReplyFacts, msg: Mapping[str, Any],
             engagement: Mapping[str, Any]) -> Reaction:
    failed = failed_recipients(reply, msg)
    if not failed:
        return Reaction(changes=(EngagementChange(engagement["id"], "engagement.changed", {
            "flagged": f"a delivery failure for {msg['stage']} names no recipient of it (reply "
                       f"{reply.id}); check it"}),), needs_action=True)
    by_address = {d.address.lower(): d for d in reply.delivery}

    def detail(address: str) -> str:
        found = by_address.get(address)
        status, diagnostic = ((found.status, found.diagnostic) if found
                              else (reply.bounce_status, reply.bounce_diagnostic))
        return f"{address}: {status or ''} {diagnostic or ''}".strip()

    who = ", ".join(failed)
    return Reaction(changes=(
        MessageChange(msg["key"], "message.bounced", {
            "state": "bounced", "note": "; ".join(detail(a) for a in failed)}),
        # a data change: unsent drafts are rendered again without the address
        EngagementChange(engagement["id"], "engagement.changed", {
            "bounced": sorted({*engagement.get("bounced", []), *failed}),
            "flagged": f"{who} bounced ({msg['stage']}); check the address",
            "data_rev": engagement.get("data_rev", 0) + 1}),
    ), needs_action=True, problems=(f"{msg['key']}: bounced for {who}",))


RULE_APPROVAL = "rule (no approval needed)"  # approved_by of a message no person approved


def waits_for_replies(msg: Mapping[str, Any], seq: Sequence,
                      messages: Iterable[Mapping[str, Any]]) -> str | None:
    """Why an automatic message must not go out while replies cannot be read, or None.

    A reply mailflow has not read could make it pointless or wrong: a reminder is sent only
    when no one answered, a stage timed from a reply depends on which replies came, a reply
    to an earlier stage that pauses or completes the engagement would stop it, and once
    anything went out, an opt-out may be waiting. The first email of an engagement answers
    nothing and goes out. `messages` are the engagement's messages.
    """
    if msg.get("approved_by") != RULE_APPROVAL:
        return None  # the consultant approved it knowing what they know
    if msg.get("step", 0) > 0:
        return "a reminder goes out only if no one replied"
    stage = seq.stage(msg["stage"])
    if (stage.due.anchor or "").startswith("reply"):
        return "it is timed from a reply"
    sent = [m for m in messages if m.get("sent_at")]
    went_out = {m["stage"] for m in sent if m.get("step") == 0}
    for before in seq.stages[:seq.stages.index(stage)]:
        if before.id in went_out and before.on_reply in ("pause", "complete"):
            return f"a reply to {before.id} would {before.on_reply} the engagement"
    if sent:
        last = max(sent, key=lambda m: m["sent_at"])
        return f"a reply to {last['stage']} (an opt-out, say) could stop it"
    return None
