"""The records mailflow keeps, their states, and the one table of allowed state changes.

Every writer goes through `transition()` (the store's `Writer.update_message` calls it), so a
state that no code path may reach cannot be written, and the set of states documented here is
exactly the set emitted.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING

from mailflow.errors import StateError

if TYPE_CHECKING:
    from typing import NotRequired, TypedDict


class MessageState(StrEnum):
    """Where a message is in its life (see DESIGN.md, "Records and their lifecycle")."""

    PLANNED = "planned"                      # due time known, not rendered yet
    BLOCKED = "blocked"                      # could not be rendered or sent as is; needs a fix
    AWAITING_APPROVAL = "awaiting_approval"  # rendered, waits for the consultant
    APPROVED = "approved"                    # goes out at its due time
    REJECTED = "rejected"                    # the consultant said no; later stages go on
    SENDING = "sending"                      # durable mark around the SMTP transaction
    SENT = "sent"                            # the server took it for every recipient
    RETRY = "retry"                          # a temporary refusal; tried again later
    FAILED = "failed"                        # a permanent refusal, or retries ran out
    IN_DOUBT = "in_doubt"                    # may or may not have gone out: the consultant says
    CANCELLED = "cancelled"                  # no longer wanted (engagement ended, client replied)
    BOUNCED = "bounced"                      # a bounce came back for it


S = MessageState
# states after which a message will never be sent again; anything else is still pending
FINAL = frozenset({S.SENT, S.REJECTED, S.FAILED, S.BOUNCED, S.CANCELLED})
PENDING = frozenset({S.PLANNED, S.BLOCKED, S.AWAITING_APPROVAL, S.APPROVED, S.RETRY})
# what the consultant reviews: `mailflow drafts` lists these by default
REVIEW = (S.AWAITING_APPROVAL, S.IN_DOUBT, S.BLOCKED)
# drafts that may still be edited or re-rendered
EDITABLE = frozenset({S.AWAITING_APPROVAL, S.APPROVED, S.BLOCKED})

# The one table of allowed changes. A change to the same state is always allowed (an edit,
# a re-render, a re-dating); anything not listed raises StateError.
TRANSITIONS: dict[MessageState, frozenset[MessageState]] = {
    S.PLANNED: frozenset({S.AWAITING_APPROVAL, S.APPROVED, S.BLOCKED, S.REJECTED, S.CANCELLED}),
    S.BLOCKED: frozenset({S.AWAITING_APPROVAL, S.APPROVED, S.REJECTED, S.CANCELLED}),
    S.AWAITING_APPROVAL: frozenset({S.APPROVED, S.BLOCKED, S.REJECTED, S.CANCELLED}),
    S.APPROVED: frozenset({S.SENDING, S.AWAITING_APPROVAL, S.BLOCKED, S.REJECTED,
                           S.CANCELLED}),
    S.SENDING: frozenset({S.SENT, S.RETRY, S.FAILED, S.IN_DOUBT,
                          # the connection failed before any of the message went out
                          S.APPROVED}),
    S.RETRY: frozenset({S.SENDING, S.AWAITING_APPROVAL, S.BLOCKED, S.FAILED, S.CANCELLED,
                        S.BOUNCED}),
    # the Sent folder or the consultant settles it; a resend is approved again; a copy in
    # Sent after a partial delivery leaves the recipients not yet reached to retry
    S.IN_DOUBT: frozenset({S.SENT, S.APPROVED, S.RETRY, S.BOUNCED}),
    S.SENT: frozenset({S.BOUNCED}),
    S.FAILED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.BOUNCED: frozenset(),
}


def transition(key: str, current: str | None, wanted: str) -> MessageState:
    """The new state if `current -> wanted` is allowed, else a StateError naming all three."""
    try:
        target = MessageState(wanted)
    except ValueError:
        raise StateError(f"{key}: {wanted!r} is not a message state (known: "
                         f"{', '.join(s.value for s in MessageState)})") from None
    if current is None:
        if target is not S.PLANNED:
            raise StateError(f"{key}: a new message starts planned, not {target.value}")
        return target
    source = MessageState(current)
    if target is source or target in TRANSITIONS[source]:
        return target
    raise StateError(f"{key} is {source.value.replace('_', ' ')}; it cannot become "
                     f"{target.value.replace('_', ' ')}")


class PlanStatus(StrEnum):
    """What the planner decided for one (stage, step) of an engagement."""

    SCHEDULED = "scheduled"  # due at a known time
    WAITING = "waiting"      # waits for an earlier email or a reply
    SKIPPED = "skipped"      # the stage's condition is false for this engagement
    STOPPED = "stopped"      # a reminder the client's reply made pointless
    ERROR = "error"          # the engagement's data cannot be planned
    DONE = "done"            # the message is final (sent, rejected, failed, bounced, cancelled)


class EngagementStatus(StrEnum):
    """Where an engagement is."""

    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


ENDED = frozenset({EngagementStatus.CANCELLED, EngagementStatus.COMPLETED})


# The records' shapes, for readers and type checkers only: no code builds or checks them at
# run time, and building their classes was a millisecond of every command's start-up
# (issue 18: a TypedDict makes a ForwardRef of each of its 60 annotations)
if TYPE_CHECKING:
    class Contact(TypedDict):
        """A person on an engagement's To or Cc line."""

        name: str
        email: str


    class Engagement(TypedDict):
        """One client contract, as stored (dates as ISO text)."""

        id: str
        client: str
        status: EngagementStatus
        time_zone: str
        contacts: dict[str, list[Contact]]  # "to", "cc"
        dates: dict[str, str]                # contract_end, handover_date, ...
        data_rev: NotRequired[int]           # bumped by every data change: drafts re-render
        rev: NotRequired[int]                # bumped by every event about it: the plan is redone
        planned: NotRequired[str]            # the signature the current plan was made for
        kept: NotRequired[str]               # that plan's items and open checklist items, as
                                             # one JSON text (engine/stored_plan.py)
        plan: NotRequired[list[list]]        # the same, as kept by an earlier version
        plan_checklist: NotRequired[list[list]]
        bounced: NotRequired[list[str]]      # addresses that bounced; drafts leave them out
        flagged: NotRequired[str]            # why the consultant should look at it


    class HistoryEntry(TypedDict):
        """One state a message entered, and when."""

        at: str
        state: MessageState


    class Message(TypedDict):
        """One email of an engagement: `engagement/stage/step`, its state, and what it holds."""

        key: str
        engagement: str
        stage: str
        step: int                         # 0 for the stage's email, 1.. for reminders
        template: str
        state: MessageState
        approval: bool                    # whether the consultant must approve it
        due: str                          # UTC ISO 8601
        reasons: list[str]                # why it falls when it does
        after: str | None                 # a message that must be final before this one goes
        thread_root: str | None           # the stage's first message, for reminders
        history: list[HistoryEntry]
        subject: NotRequired[str]
        body: NotRequired[str | None]     # content address of the rendered body (store.body)
        to: NotRequired[list[Contact]]
        cc: NotRequired[list[Contact]]
        digest: NotRequired[str | None]   # of subject + body: an approval is for these words
        message_id: NotRequired[str]      # made once, at the first render
        reply_token: NotRequired[str]
        rendered_for: NotRequired[str | None]
        approved_by: NotRequired[str]
        approved_at: NotRequired[str]
        attempts_at: NotRequired[list[str]]
        sent_at: NotRequired[str]
        next_attempt: NotRequired[str]
        remaining: NotRequired[list[str] | None]   # recipients still to deliver after a 4xx
        delivered_to: NotRequired[list[str]]
        server_reply: NotRequired[str]
        error: NotRequired[str | None]
        note: NotRequired[str]


    class Reply(TypedDict):
        """A message that came back, tied to what it answers."""

        id: str
        source: str                       # folder:uidvalidity:uid
        message_id: str | None
        engagement: str
        message: str                      # the key of the message it answers
        stage: str
        kind: str                         # human, auto_reply, bounce, unsubscribe, ...
        received_at: str
        text: str
        raw: str                          # path of the kept .eml
        needs_action: bool
        handled: NotRequired[bool]


def stored_time(value: str | None) -> dt.datetime | None:
    """An instant as records keep it (ISO 8601 text), or None where none is kept."""
    return dt.datetime.fromisoformat(value) if value else None
