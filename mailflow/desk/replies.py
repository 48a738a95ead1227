"""Applying reply reactions through the Writer, and accepting a reply mailflow did not trust."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from mailflow.config.loading import Loaded
from mailflow.engine.reactions import (
    Change,
    EngagementChange,
    Reaction,
    ReplyFacts,
    Trust,
    react,
)
from mailflow.engine.records import ENDED
from mailflow.errors import NotFoundError, StateError
from mailflow.store import Writer, now_iso


def apply_changes(w: Writer, changes: Iterable[Change], now: dt.datetime) -> None:
    """Record each change of a reaction as a journal event."""
    for change in changes:
        if isinstance(change, EngagementChange):
            changes = dict(change.changes)
            if changes.get("status") in ENDED:  # when it moves out of the hot state
                changes["ended_at"] = now_iso(now)
            w.record(change.kind, at=now, engagement=change.engagement,
                     engagements={"key": change.engagement, "set": changes})
        else:
            w.update_message(w.state.messages[change.key], change.kind, at=now,
                             **dict(change.changes))


def stage_of(loaded: Loaded, engagement: dict, stage_id: str):  # noqa: ANN201 - Stage | None
    """The rule stage a message belongs to, or None when it is no longer in the rules."""
    try:
        return loaded.sequence_for(engagement).stage(stage_id)
    except KeyError:
        return None


def accept_reply(w: Writer, loaded: Loaded, rid: str, who: str, now: dt.datetime) -> Reaction:
    """Act on a reply that was flagged instead of acted on, as if it had been trusted."""
    record = w.state.replies.get(rid)
    if record is None:
        raise NotFoundError(f"no reply {rid!r} (see `mailflow replies`)")
    if record.get("trusted", True):
        how = f"accepted by {record['accepted_by']}" if record.get("accepted_by") else \
            "acted on when it arrived"
        raise StateError(f"reply {rid} was already {how}; there is nothing to accept")
    msg = w.state.messages.get(record.get("message") or "")
    eng = w.state.engagements.get(record.get("engagement") or "")
    if msg is None or eng is None:
        raise StateError(f"reply {rid} answers no message mailflow still knows")
    root = w.state.messages.get(msg.get("thread_root") or "")
    reaction = react(ReplyFacts.from_record(rid, record), msg, stage_of(loaded, eng, msg["stage"]),
                     eng, Trust(from_contact=False, accepted_by=who), root=root)
    apply_changes(w, reaction.changes, now)
    w.record("reply.accepted", at=now, engagement=eng["id"], replies={"key": rid, "set": {
        "trusted": True, "accepted_by": who, "accepted_at": now_iso(now),
        "needs_action": reaction.needs_action, "handled": None if reaction.needs_action
        else now_iso(now)}})
    return reaction
