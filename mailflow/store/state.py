"""The state in memory, and how one journal event changes it (a fold of the journal)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

TABLES = ("engagements", "messages", "replies", "cursors", "digests")
KEY_FIELD = {"engagements": "id", "messages": "key", "replies": "id", "cursors": "folder",
             "digests": "id"}
# message states no step of a tick acts on (sent, or ended without going out): most of a
# store's messages after a while, and each pass of a tick over all of them was a tenth of the
# idle tick at 10,000 engagements (issue 18); `State.live_messages` leaves them out
AT_REST = frozenset(("sent", "cancelled", "rejected", "bounced"))


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
    # the tables loaded, when a view loaded only some (Store.load_tables); None: all of them
    only: tuple[str, ...] | None = field(default=None, repr=False, compare=False)
    # engagement id -> its message keys, rebuilt when messages were added or moved out (a
    # message's engagement never changes): per-message work must not scan every message
    _keys_by_engagement: dict[str, list[str]] = field(default_factory=dict, repr=False,
                                                      compare=False)
    _indexed: int = field(default=-1, repr=False, compare=False)
    # the messages not at rest by key, in `messages` order; kept by apply_event, rebuilt
    # when None or when messages were added another way (its length is then stale)
    _live: dict[str, dict] | None = field(default=None, repr=False, compare=False)
    _live_of: int = field(default=-1, repr=False, compare=False)  # len(messages) it saw

    def messages_of(self, engagement_id: str) -> list[dict]:
        """The messages of one engagement (in stage/step order of their keys' creation)."""
        self._need_messages()
        if self._indexed != len(self.messages):
            index: dict[str, list[str]] = {}
            for key, m in self.messages.items():
                index.setdefault(m["engagement"], []).append(key)
            self._keys_by_engagement, self._indexed = index, len(self.messages)
        return [self.messages[k] for k in self._keys_by_engagement.get(engagement_id, ())]

    def live_messages(self) -> list[dict]:
        """The messages not at rest (AT_REST), in the order of `messages`: what a tick's
        steps walk (a snapshot: a step may change them as it goes)."""
        self._need_messages()
        live, messages = self._live, self.messages
        if live is None or self._live_of != len(messages):
            try:  # (`m["state"]`: a lazy record's `get` is a Python call, 50,000 of them)
                live = {k: m for k, m in messages.items() if m["state"] not in AT_REST}
            except KeyError:  # a record without a state, which no writer makes
                live = {k: m for k, m in messages.items() if m.get("state") not in AT_REST}
            self._live, self._live_of = live, len(messages)
        return list(live.values())

    def _need_messages(self) -> None:
        if self.only is not None and "messages" not in self.only:
            # a bug, not a user's error: a view loaded the tables it needs, then asked for more
            raise RuntimeError("this state was loaded without its messages")

    def _track(self, record: dict, key: str, new: bool) -> None:
        """Keep the live index in step with one message's change (see apply_event)."""
        live = self._live
        if live is None or self._live_of != len(self.messages) - new:
            self._live = None  # stale already (messages added another way): rebuilt when asked
            return
        if record.get("state") in AT_REST:
            live.pop(key, None)
        elif key not in live:
            if new:  # appended to `messages` too: the order holds
                live[key] = record
            else:  # back from rest: its place is among the others
                self._live = None
        self._live_of = len(self.messages)

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
        new = key not in records
        record = records.setdefault(key, {KEY_FIELD[table]: key})
        changes = change.get("set", {})
        record.update(changes)
        for name, value in change.get("append", {}).items():
            record.setdefault(name, []).append(value)
        if table == "messages" and (new or "state" in changes):
            state._track(record, key, new)


def _drop(state: State, event: dict) -> None:
    """Records moved out of the hot state (into an archive written before the event)."""
    # the per-engagement index is kept up to date rather than rebuilt: moving thousands of
    # engagements out one event each would rebuild it (every message) thousands of times
    valid = state._indexed == len(state.messages)
    if state._live_of != len(state.messages):
        state._live = None
    index = state._keys_by_engagement
    for table, keys in event["drop"].items():
        records = getattr(state, table)
        for key in keys:
            record = records.pop(key, None)
            if table == "messages" and record is not None:
                if state._live is not None:
                    state._live.pop(key, None)
                if valid:
                    owned = index.get(record.get("engagement"), [])
                    if key in owned:
                        owned.remove(key)
    state._indexed = len(state.messages) if valid else -1
    state._live_of = len(state.messages)
    # reply ids count on from the highest ever given, archived ones included; digest ids
    # likewise from the highest forgotten, and replies to a digest older than the forgotten
    # ones are told so (engine/digest.py)
    for name in ("reply_floor", "digest_floor", "digests_before"):
        floor = event.get(name)
        if floor and floor > state.meta.get(name, type(floor)()):
            state.meta[name] = floor
