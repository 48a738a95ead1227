"""Records loaded from the checkpoint with their cold fields still as JSON bytes.

An idle tick walks every message and engagement but reads only a few fields of most of them
(a message's state, key and engagement; an engagement's status and plan signature). Parsing
every field of every record was most of the tick at 10,000 engagements, and their objects most
of its memory. A `LazyRecord` is a dict holding only its table's hot fields; the others stay in
the record's checkpoint line and are parsed the first time anything asks for one of them, or
changes the record. It is a `dict` for every caller: `state.messages` and its records keep their
API, and a record equals the one a replay of the journal builds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

# the fields the idle tick and the listings read of every record; any other field, asked for
# or changed, parses the whole record once (correct either way: this list is only about speed)
HOT: dict[str, frozenset[str]] = {
    "messages": frozenset((
        "key", "engagement", "stage", "step", "state", "due", "sent_at", "attempts_at",
        "sender_email")),
    "engagements": frozenset((
        "id", "client", "status", "archived", "archived_at", "rev", "data_rev", "planned",
        "time_zone", "holidays", "sequence", "flagged", "feedback", "locale", "source",
        "source_stamp", "source_hash",
        # views' fields; a name joins this list only if no checkpoint ever held it in a
        # record's cold part (the loader takes a hot name missing from the hot part as absent):
        # `kept` and `shown` were new with it, and `moved_out` is only ever set on a record
        # read back from an archive for one command, never saved (store/archive.py)
        "kept", "moved_out", "shown")),
}
# a waiting message is read further by every tick (drafting, holding, telling: see
# engine/tick.py and engine/attention.py); a finished one, most of the store's bytes, only
# by the views that show it
WAITING_HOT = HOT["messages"] | {
    "history", "told", "late_hold", "late_ok", "late_ok_for", "overdue", "rendered_for",
    "rendered_hold", "edited", "next_attempt", "held_for_replies", "after", "approval",
    "template", "thread_root"}
FINISHED = frozenset(("sent", "cancelled", "rejected", "failed", "bounced"))

_MISSING = object()


def hot_names(table: str, doc: dict[str, Any]) -> frozenset[str] | None:
    """The fields of this record that load at once (None: the whole record does)."""
    if table == "messages" and doc.get("state") not in FINISHED:
        return WAITING_HOT
    return HOT.get(table)


class LazyRecord(dict):
    """A record whose non-hot fields are parsed from its JSON on first use."""

    __slots__ = ("_blob", "_hot")  # the cold fields as a JSON object; the hot names

    # made by `decode` without an __init__ of its own: a Python-level one per record was a
    # fifth of loading 56,000 of them

    # -- the cold fields ---------------------------------------------------------------------

    def thaw(self) -> None:
        """Parse the whole record into this dict (once); it is a plain dict afterwards."""
        blob = self._blob
        if blob is not None:
            self._blob = None
            # the hot values stay the very objects callers may already hold
            for key, value in orjson.loads(blob).items():
                if not dict.__contains__(self, key):
                    dict.__setitem__(self, key, value)

    def frozen(self) -> tuple[bytes, int] | None:
        """The record's JSON and cut (see `encode`) while it was never thawed: unchanged
        since loading, its cold fields are written back as they were read, unparsed."""
        if self._blob is None:
            return None
        head = orjson.dumps(dict(dict.items(self)))
        return head[:-1] + b"," + self._blob[1:], len(head) - 1

    def __missing__(self, key: str) -> Any:
        if self._blob is None or key in self._hot:
            raise KeyError(key)
        self.thaw()
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:  # noqa: D102
        value = dict.get(self, key, _MISSING)
        if value is not _MISSING:
            return value
        if self._blob is None or key in self._hot:
            return default
        self.thaw()
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        if dict.__contains__(self, key):
            return True
        if self._blob is None or key in self._hot:
            return False
        self.thaw()
        return dict.__contains__(self, key)

    # -- every other read sees the whole record ----------------------------------------------

    def __iter__(self) -> Iterator[str]:
        self.thaw()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self.thaw()
        return dict.__len__(self)

    def __bool__(self) -> bool:  # `record or {}` must not parse it: it has its hot fields
        return self._blob is not None or dict.__len__(self) > 0

    def __reversed__(self) -> Iterator[str]:
        self.thaw()
        return dict.__reversed__(self)

    def keys(self):  # noqa: ANN201, D102
        self.thaw()
        return dict.keys(self)

    def values(self):  # noqa: ANN201, D102
        self.thaw()
        return dict.values(self)

    def items(self):  # noqa: ANN201, D102
        self.thaw()
        return dict.items(self)

    def copy(self) -> dict:  # noqa: D102
        self.thaw()
        return dict(dict.items(self))

    def __eq__(self, other: object) -> bool:
        self.thaw()
        if isinstance(other, LazyRecord):
            other.thaw()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # as dict

    def __repr__(self) -> str:
        self.thaw()
        return dict.__repr__(self)

    def __or__(self, other: Any) -> dict:
        return {**self.copy(), **other}

    def __ror__(self, other: Any) -> dict:
        return {**other, **self.copy()}

    def __reduce__(self) -> tuple:
        return (dict, (self.copy(),))

    def __reduce_ex__(self, protocol: int) -> tuple:  # copy, deepcopy and pickle: a dict
        return self.__reduce__()

    # -- every change first makes the record whole -------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        self.thaw()
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self.thaw()
        dict.__delitem__(self, key)

    def __ior__(self, other: Any) -> LazyRecord:
        self.thaw()
        dict.update(self, other)
        return self

    def update(self, *args: Any, **kwargs: Any) -> None:  # noqa: D102
        self.thaw()
        dict.update(self, *args, **kwargs)

    def setdefault(self, key: str, default: Any = None) -> Any:  # noqa: D102
        self.thaw()
        return dict.setdefault(self, key, default)

    def pop(self, key: str, *default: Any) -> Any:  # noqa: D102
        self.thaw()
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:  # noqa: D102
        self.thaw()
        return dict.popitem(self)

    def clear(self) -> None:  # noqa: D102
        self._blob = None
        dict.clear(self)


def encode(table: str, doc: dict[str, Any], default: Any = None) -> tuple[bytes, int]:
    """A record's checkpoint JSON and, when it may load lazily, the length of its hot part
    (0: it loads whole). The hot fields come first: `json[:cut] + b"}"` is them alone."""
    if isinstance(doc, LazyRecord):
        frozen = doc.frozen()
        if frozen is not None:
            return frozen  # unchanged since loading: its bytes as they were, unparsed
    names = hot_names(table, doc)
    if names is None:
        return orjson.dumps(doc, default=default), 0
    hot = {k: v for k, v in doc.items() if k in names}
    cold = {k: v for k, v in doc.items() if k not in names}
    if not hot or not cold:
        return orjson.dumps(doc, default=default), 0
    head = orjson.dumps(hot, default=default)
    return head[:-1] + b"," + orjson.dumps(cold, default=default)[1:], len(head) - 1


def decode(table: str, body: bytes, cut: int) -> dict[str, Any]:
    """A record from its checkpoint JSON: whole, or (with a cut) lazily."""
    if not cut:
        return orjson.loads(body)
    hot = orjson.loads(body[:cut] + b"}")
    record = LazyRecord(hot)
    record._hot = hot_names(table, hot)
    record._blob = b"{" + body[cut + 1:]  # only the cold part: the hot one is in the dict
    return record
