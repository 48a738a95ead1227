"""The state in memory, and how one journal event changes it (a fold of the journal)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

TABLES = ("engagements", "messages", "replies", "cursors", "digests")
KEY_FIELD = {"engagements": "id", "messages": "key", "replies": "id", "cursors": "folder",
             "digests": "id"}


def now_iso(now: dt.datetime) -> str:
    """A UTC instant as stored: ISO 8601 with seconds, sortable as text."""
    return now.astimezone(dt.UTC).isoformat(timespec="seconds")


@dataclass
class State:
    """The whole database in memory, keyed by natural keys."""

    engagements: dict[str, dict] = field(default_factory=dict)
    messages: dict[str, dict] = field(default_factory=dict)
    replies: dict[str, dict] = field(default_factory=dict)
    cursors: dict[str, dict] = field(default_factory=dict)
    digests: dict[str, dict] = field(default_factory=dict)  # digests sent, replies to them
    meta: dict[str, Any] = field(default_factory=dict)
    # what loading found worth one line (a rebuilt checkpoint, a command that did not finish)
    notes: list[str] = field(default_factory=list, repr=False, compare=False)
    # where archived engagements are read from (store.archive.Shelf), set by the store that
    # loaded this state; None for a state of no store (the in-memory one keeps no archive)
    shelf: Any = field(default=None, repr=False, compare=False)
    # engagement id -> its message keys, rebuilt when messages were added or moved out (a
    # message's engagement never changes): per-message work must not scan every message
    _keys_by_engagement: dict[str, list[str]] = field(default_factory=dict, repr=False,
                                                      compare=False)
    _indexed: int = field(default=-1, repr=False, compare=False)

    def messages_of(self, engagement_id: str) -> list[dict]:
        """The messages of one engagement (in stage/step order of their keys' creation)."""
        if self._indexed != len(self.messages):
            index: dict[str, list[str]] = {}
            for key, m in self.messages.items():
                index.setdefault(m["engagement"], []).append(key)
            self._keys_by_engagement, self._indexed = index, len(self.messages)
        return [self.messages[k] for k in self._keys_by_engagement.get(engagement_id, ())]


    def replies_by_engagement(self) -> dict[str, list[dict]]:
        """Every engagement's replies, grouped in one pass."""
        grouped: dict[str, list[dict]] = {}
        for reply in self.replies.values():
            if reply.get("engagement"):
                grouped.setdefault(reply["engagement"], []).append(reply)
        return grouped


def apply_event(state: State, event: dict) -> None:
    """Apply one journal event's changes to the state (replaying a journal gives the same state)."""
    if "drop" in event:
        _drop(state, event)
        return
    eng = state.engagements.get(event.get("engagement", ""))
    if eng is not None:
        # anything that happens to an engagement may change its plan: see Tick.plan
        eng["rev"] = eng.get("rev", 0) + 1
    for table in TABLES:
        change = event.get(table)
        if not change:
            continue
        records = getattr(state, table)
        key = change["key"]
        record = records.setdefault(key, {KEY_FIELD[table]: key})
        record.update(change.get("set", {}))
        for name, value in change.get("append", {}).items():
            record.setdefault(name, []).append(value)


def _drop(state: State, event: dict) -> None:
    """Records moved out of the hot state (into an archive written before the event)."""
    # the per-engagement index is kept up to date rather than rebuilt: moving thousands of
    # engagements out one event each would rebuild it (every message) thousands of times
    valid = state._indexed == len(state.messages)
    index = state._keys_by_engagement
    for table, keys in event["drop"].items():
        records = getattr(state, table)
        for key in keys:
            record = records.pop(key, None)
            if table == "messages" and record is not None and valid:
                owned = index.get(record.get("engagement"), [])
                if key in owned:
                    owned.remove(key)
    state._indexed = len(state.messages) if valid else -1
    # reply ids count on from the highest ever given, archived ones included; digest ids
    # likewise from the highest forgotten, and replies to a digest older than the forgotten
    # ones are told so (engine/digest.py)
    for name in ("reply_floor", "digest_floor", "digests_before"):
        floor = event.get(name)
        if floor and floor > state.meta.get(name, type(floor)()):
            state.meta[name] = floor
