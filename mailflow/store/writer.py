"""The one write path: every change is a journal event in a group made visible by a commit.

A command's events are applied in memory as they are written, and become durable and visible
together when the command commits (at the end, or at a `durable` event such as the `sending`
mark and each SMTP outcome, which commit and fsync at once). A command that fails writes an
abort mark and no checkpoint; one that is killed leaves a group without a commit mark. Either
way replay ignores the group: the state is as before the command or after it, never between.
Nothing ever truncates the journal's fsynced events.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Protocol

from mailflow import faults
from mailflow.engine.records import MessageState, transition
from mailflow.errors import StoreError
from mailflow.store.files import AtomicJSONStorage, fault, fsync_dir, io, json_default
from mailflow.store.journal import ABORT, COMMIT, Position, line_hash
from mailflow.store.state import TABLES, State, apply_event, now_iso


class Store(Protocol):
    """What a Writer needs of its store (mailflow.store.Store, or the in-memory one)."""

    journal_path: Path
    db_path: Path

    def body(self, ref: str) -> tuple[str, str]: ...  # noqa: D102
    def put_body(self, html: str, text: str) -> str: ...  # noqa: D102
    def attachment(self, ref: str) -> bytes: ...  # noqa: D102
    def put_attachment(self, content: bytes) -> str: ...  # noqa: D102
    def wire_copy(self, ref: str) -> bytes | None: ...  # noqa: D102
    def put_wire_copy(self, content: bytes) -> str: ...  # noqa: D102
    def make_durable(self) -> None: ...  # noqa: D102


def encode(event: dict) -> bytes:
    """One journal line."""
    return json.dumps(event, ensure_ascii=False, default=json_default).encode("utf-8") + b"\n"


class Writer:
    """Changes to the state under the lock: journal first, checkpoint at the end."""

    saved = False  # whether this writer wrote the checkpoint (it then names self.position)

    def __init__(self, store: Store, state: State, position: Position) -> None:
        self.store = store
        self.state = state
        self.dirty = False
        path = store.journal_path
        existed = path.exists()
        with io(path, "open the journal for writing"):
            _cut_torn_tail(path)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.fchmod(self._fd, 0o600)
            self._size = os.fstat(self._fd).st_size
            if not existed:
                fsync_dir(path.parent)  # a new journal's name must survive a power cut
        faults.synced(path, self._size)
        self.position = position
        self._seq = position.seq
        self._group: int | None = None  # seq of the first event of the open group
        self._buffer: list[bytes] = []
        self._buffered = 0  # bytes in the buffer
        self._last_line: bytes | None = None
        self._broken = False  # a write failed: nothing more is written by this process

    # -- events ------------------------------------------------------------------------------

    def record(self, kind: str, *, at: dt.datetime, durable: bool = False, **parts: Any) -> dict:
        """Append an event to the open group and apply it; `durable` commits and fsyncs."""
        if self._broken:
            raise StoreError(f"{self.store.journal_path}: an earlier write failed; nothing more "
                             "is recorded by this command")
        self._seq += 1
        if self._group is None:
            self._group = self._seq
        event = {"seq": self._seq, "g": self._group, "at": now_iso(at), "kind": kind, **parts}
        self._append(encode(event))
        apply_event(self.state, event)
        self.dirty = True
        if durable:
            self.commit()
        return event

    def create_message(self, fields: dict[str, Any], *, at: dt.datetime) -> dict:
        """Record a new message (planned) and return its record."""
        key = fields["key"]
        state = transition(key, None, MessageState.PLANNED).value
        self.record("message.planned", at=at, engagement=fields["engagement"], messages={
            "key": key, "set": {**fields, "state": state,
                                "history": [{"at": now_iso(at), "state": state}]}})
        return self.state.messages[key]

    def update_message(self, msg: dict, kind: str, *, at: dt.datetime, durable: bool = False,
                       append: dict | None = None, **changes: Any) -> dict:
        """Record a change to one message; a new state must be allowed and goes into history."""
        if "state" in changes:
            changes["state"] = transition(msg["key"], msg.get("state"), changes["state"]).value
            if changes["state"] != msg.get("state"):
                append = {**(append or {}), "history": {"at": now_iso(at),
                                                        "state": changes["state"]}}
        part: dict[str, Any] = {"key": msg["key"], "set": changes}
        if append:
            part["append"] = append
        return self.record(kind, at=at, durable=durable, engagement=msg["engagement"],
                           messages=part)

    def commit(self, sync: bool = True) -> None:
        """Close the open group with its commit mark (fsynced unless `sync` is false)."""
        if self._group is not None:
            self._seq += 1
            self._append(encode({"seq": self._seq, "g": self._group, "kind": COMMIT}))
            self._group = None
        if sync:
            self.sync()

    def abort(self) -> None:
        """A failed command: mark its open group void (best effort; replay ignores it anyway)."""
        if self._broken or self._group is None:
            return
        self._seq += 1
        try:
            self._append(encode({"seq": self._seq, "g": self._group, "kind": ABORT}))
            self.sync()
        except StoreError:
            pass  # the group has no commit mark: ignored at replay all the same
        self._group = None

    def _append(self, line: bytes) -> None:
        faults.point("journal append")
        self.position.last_start = self._size + self._buffered
        self._buffer.append(line)
        self._buffered += len(line)
        self._last_line, self.position.line = line, self.position.line + 1
        if len(self._buffer) >= 512:
            self._flush()

    def flush(self) -> None:
        """Hand every line written so far to the kernel, without fsync: a kill of this process
        keeps them, a power cut or OS crash may not (the send path's write-through)."""
        self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        # the bodies these lines may refer to are durable before any of the lines is written
        self.store.make_durable()
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        try:
            view = memoryview(data)
            while view:
                faults.point("journal write")
                view = view[os.write(self._fd, view):]
        except OSError as err:
            self._broken = True
            raise fault(self.store.journal_path, "append to the journal", err) from err
        self._size += len(data)

    def sync(self) -> None:
        """Make every event written so far durable."""
        self._flush()
        try:
            faults.point("journal fsync")
            os.fsync(self._fd)
        except OSError as err:
            self._broken = True
            raise fault(self.store.journal_path, "make the journal durable", err) from err
        faults.synced(self.store.journal_path, self._size)

    # -- bodies and checkpoint -----------------------------------------------------------------

    def put_body(self, html: str, text: str) -> str:
        """Keep a rendered body (before any event refers to it); returns its reference."""
        return self.store.put_body(html, text)

    def body(self, ref: str) -> tuple[str, str]:
        """A kept body as (html, text)."""
        return self.store.body(ref)

    def put_attachment(self, content: bytes) -> str:
        """Keep an attachment (before any event refers to it); returns its reference."""
        return self.store.put_attachment(content)

    def attachment(self, ref: str) -> bytes:
        """A kept attachment's bytes."""
        return self.store.attachment(ref)

    def put_wire_copy(self, content: bytes) -> str:
        """Keep a draft's prebuilt message (a cache: see Store.put_wire_copy)."""
        return self.store.put_wire_copy(content)

    def wire_copy(self, ref: str) -> bytes | None:
        """A draft's prebuilt message, or None when it must be built again."""
        return self.store.wire_copy(ref)

    def save(self) -> None:
        """Commit, then write the checkpoint once if anything changed."""
        self.commit()
        if not self.dirty:
            return
        self.position.offset, self.position.seq = self._size, self._seq
        if self._last_line is not None:  # hashed once here, not per event
            self.position.hash = line_hash(self._last_line)
        write_checkpoint(self.store.db_path, self.state, self.position)
        self.dirty = False
        self.saved = True  # the checkpoint on disk now names self.position

    def close(self) -> None:
        """Close the journal file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def write_checkpoint(db: Path, state: State, position: Position) -> None:
    """The checkpoint: the fold's tables and the identity of the last event it holds."""
    state.meta.update(position.as_meta())
    data: dict[str, dict[str, Any]] = {}
    for table in TABLES:
        records = getattr(state, table)
        data[table] = {str(i): doc for i, doc in enumerate(records.values(), start=1)}
    data["meta"] = {"1": state.meta}
    AtomicJSONStorage(db).write(data)


def _cut_torn_tail(path: Path) -> None:
    """Drop a torn last line (a crash mid-append) before appending after it.

    Appended to as is, the next event would share a line with the fragment, be unreadable,
    and be taken for damage. The torn event never completed, was never fsynced whole, and so
    never happened: cutting it off loses nothing that was durable.
    """
    try:
        f = open(path, "r+b")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        cut, pos = 0, size
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            i = f.read(step).rfind(b"\n")
            if i >= 0:
                cut = pos + i + 1
                break
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())


class MemoryWriter(Writer):
    """A Writer that changes the state in memory only: for dry runs and previews."""

    def __init__(self, state: State, store: Store | None = None) -> None:  # noqa: D107
        self.state = state
        self.store = store  # read-only here: bodies already kept
        self.dirty = False
        self._seq = state.meta.get("seq", 0)
        self._group = None
        self._broken = False
        self.position = Position()
        self._bodies: dict[str, tuple[str, str]] = {}
        self._attachments: dict[str, bytes] = {}

    def put_body(self, html: str, text: str) -> str:
        """Keep a body in memory only."""
        ref = "mem-" + hashlib.sha256(f"{html}\x00{text}".encode()).hexdigest()[:28]
        self._bodies[ref] = (html, text)
        return ref

    def body(self, ref: str) -> tuple[str, str]:
        """A body kept in memory, else on disk."""
        if ref in self._bodies:
            return self._bodies[ref]
        if self.store is None:
            raise StoreError(f"body {ref} is not available in a preview")
        return self.store.body(ref)

    def put_attachment(self, content: bytes) -> str:
        """Keep an attachment in memory only."""
        ref = "mem-" + hashlib.sha256(content).hexdigest()[:28]
        self._attachments[ref] = content
        return ref

    def attachment(self, ref: str) -> bytes:
        """An attachment kept in memory, else on disk."""
        if ref in self._attachments:
            return self._attachments[ref]
        if self.store is None:
            raise StoreError(f"attachment {ref} is not available in a preview")
        return self.store.attachment(ref)

    def put_wire_copy(self, content: bytes) -> str:
        """Keep a prebuilt message in memory only (beside the attachments: bytes by content)."""
        return self.put_attachment(content)

    def wire_copy(self, ref: str) -> bytes | None:
        """A prebuilt message kept in memory, else on disk."""
        if ref in self._attachments:
            return self._attachments[ref]
        return None if self.store is None else self.store.wire_copy(ref)

    def _append(self, line: bytes) -> None:
        """Nothing is written."""

    def flush(self) -> None:
        """Nothing is written."""

    def sync(self) -> None:
        """Nothing to make durable."""

    def save(self) -> None:
        """Nothing is saved."""

    def abort(self) -> None:
        """Nothing to abort."""

    def close(self) -> None:
        """Nothing to close."""
