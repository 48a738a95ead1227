"""The state-store seam: the protocol every store implements, and the in-memory store.

The engine and the desk need four things of a store: load the state, write changes under a
lock through a Writer (events in a group that commits at the end, or voids on an exception),
and keep and read rendered bodies. `Store` does it on disk; `MemoryStore` keeps the same
journal lines and the same fold in memory, so engine tests run without files in milliseconds,
and `tests/contract/test_state_store.py` holds both to one contract.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, runtime_checkable

from mailflow.errors import LockedError, StoreError
from mailflow.store.journal import Position, replay_lines
from mailflow.store.state import State, apply_event
from mailflow.store.writer import Writer


@runtime_checkable
class StateStore(Protocol):
    """What the engine and the desk may ask of a state store."""

    notes: list[str]

    def load(self) -> State:
        """The state: every committed change, in order (read-only)."""
        ...

    def writer(self) -> AbstractContextManager[Writer]:
        """The write lock and a Writer; commits at the end, voids the group on an exception."""
        ...

    def body(self, ref: str) -> tuple[str, str]:
        """A kept body as (html, text); StoreError naming it when missing."""
        ...

    def put_body(self, html: str, text: str) -> str:
        """Keep a body under its content address and return the address."""
        ...

    def attachment(self, ref: str) -> bytes:
        """A kept attachment's bytes; StoreError naming it when missing."""
        ...

    def put_attachment(self, content: bytes) -> str:
        """Keep an attachment under its content address and return the address."""
        ...

    def wire_copy(self, ref: str) -> bytes | None:
        """A draft's prebuilt message, or None when gone or damaged (it is built again)."""
        ...

    def make_durable(self) -> None:
        """Make the bodies and attachments kept so far durable (before events refer to them)."""
        ...

    def put_wire_copy(self, content: bytes) -> str:
        """Keep a draft's prebuilt message under its content address; return the address."""
        ...


class MemoryStore:
    """A state store in memory: the journal's lines in a list, bodies in a dict."""

    def __init__(self) -> None:  # noqa: D107
        self.lines: list[bytes] = []
        self.bodies: dict[str, bytes] = {}
        self.attachments: dict[str, bytes] = {}
        self.wire_copies: dict[str, bytes] = {}
        self.notes: list[str] = []
        self._locked = False

    def load(self) -> State:
        """The fold of the committed journal lines."""
        state, _ = self._fold()
        return state

    def _fold(self) -> tuple[State, Position]:
        state = State()
        found = replay_lines(iter(self.lines), Position(), lambda e: apply_event(state, e),
                             where="memory journal")
        for line, count, _ in found.abandoned:
            state.notes.append(f"memory journal: line {line}: {count} event(s) of a command "
                               "that did not finish were ignored")
        self.notes.extend(n for n in state.notes if n not in self.notes)
        return state, found.position

    @contextmanager
    def writer(self) -> Iterator[Writer]:
        """One writer at a time, as the file store's lock allows."""
        if self._locked:
            raise LockedError("memory store: another writer is open; nothing was done")
        self._locked = True
        try:
            state, position = self._fold()
            w = _MemoryJournalWriter(self, state, position)
            try:
                yield w
                w.save()
            except BaseException:
                w.abort()
                raise
        finally:
            self._locked = False

    def body(self, ref: str) -> tuple[str, str]:
        """A kept body, by content address."""
        try:
            data = json.loads(self.bodies[ref])
        except KeyError:
            raise StoreError(f"body {ref}: a draft's body is missing") from None
        return data["html"], data["text"]

    def put_body(self, html: str, text: str) -> str:
        """Keep a body once under its content address (the file store's addresses)."""
        payload = json.dumps({"html": html, "text": text}, ensure_ascii=False).encode("utf-8")
        ref = hashlib.sha256(payload).hexdigest()[:32]
        self.bodies.setdefault(ref, payload)
        return ref

    def attachment(self, ref: str) -> bytes:
        """A kept attachment, by content address."""
        try:
            return self.attachments[ref]
        except KeyError:
            raise StoreError(f"attachment {ref}: a draft's attachment is missing") from None

    def put_attachment(self, content: bytes) -> str:
        """Keep an attachment once under its content address (the file store's addresses)."""
        ref = hashlib.sha256(content).hexdigest()[:32]
        self.attachments.setdefault(ref, content)
        return ref


    def make_durable(self) -> None:
        """Bodies in memory are as durable as memory gets."""

    def wire_copy(self, ref: str) -> bytes | None:
        """A prebuilt message, by content address (None: not kept)."""
        return self.wire_copies.get(ref)

    def put_wire_copy(self, content: bytes) -> str:
        """Keep a prebuilt message under its content address (the file store's addresses)."""
        ref = hashlib.sha256(content).hexdigest()[:32]
        self.wire_copies.setdefault(ref, content)
        return ref


class _MemoryJournalWriter(Writer):
    """The Writer's events and groups, appended to the memory store's lines."""

    def __init__(self, store: MemoryStore, state: State, position: Position) -> None:
        self.store = store  # type: ignore[assignment] - a StateStore, not a file Store
        self.state = state
        self.dirty = False
        self.position = position
        self._seq = position.seq
        self._group = None
        self._buffer = []
        self._buffered = 0
        self._last_line = None
        self._size = position.offset
        self._broken = False

    def _flush(self) -> None:
        self.store.lines.extend(self._buffer)
        self._size += self._buffered
        self._buffer.clear()
        self._buffered = 0

    def sync(self) -> None:
        """Everything in the list is as durable as memory gets."""
        self._flush()

    def save(self) -> None:
        """Commit; there is no checkpoint to write."""
        self.commit()
        self.dirty = False

    def close(self) -> None:
        """Nothing to close."""
