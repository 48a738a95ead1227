"""The project's state: a TinyDB checkpoint plus an append-only, fsynced event journal.

TinyDB rewrites its whole file on every write, so mailflow never writes it per change:
every change that must survive a crash is appended to `events.jsonl` (fsynced when it
matters, e.g. around each SMTP transaction) and applied in memory; the TinyDB file is
written once at the end of a command, atomically, and records how much of the journal it
already contains. Opening the store replays whatever the checkpoint lacks.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import gc
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from tinydb import TinyDB
from tinydb.storages import Storage

from mailflow.errors import LockedError, StoreError

TABLES = ("engagements", "messages", "replies", "cursors", "digests")
DB_NAME = "state.json"
JOURNAL_NAME = "events.jsonl"
BODIES_DIR = "bodies"
LOCK_NAME = "lock"


class AtomicJSONStorage(Storage):
    """TinyDB storage that replaces its file atomically (temp, fsync, rename), mode 0600.

    The previous good file is kept as a hard link `<name>.bak` so a damaged file can be
    recovered by hand; a crash at any moment leaves either the old or the new file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]] | None:
        """The whole database, or None when the file does not exist yet."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StoreError(f"{self.path}: cannot read: {err.strerror}") from err
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:  # orjson.JSONDecodeError is a ValueError
            backup = self.path.with_name(self.path.name + ".bak")
            hint = (f"the last good copy is {backup}" if backup.exists()
                    else "no backup exists")
            raise StoreError(f"{self.path}: the database is damaged ({err}); {hint}. Nothing "
                             "was changed: inspect it, or copy the backup over it") from err
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        """Replace the file atomically with `data`."""
        payload = orjson.dumps(data, default=_json_default)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        backup = self.path.with_name(self.path.name + ".bak")
        if self.path.exists():
            backup.unlink(missing_ok=True)
            os.link(self.path, backup)
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

    def close(self) -> None:
        """Nothing to release: the file is not held open."""


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__}")


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
    # engagement id -> its message keys, rebuilt when messages were added (none are ever
    # removed, and a message's engagement never changes): per-message work must not scan
    # every message in the store
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


_KEY_FIELD = {"engagements": "id", "messages": "key", "replies": "id", "cursors": "folder",
              "digests": "id"}


def apply_event(state: State, event: dict) -> None:
    """Apply one journal event's changes to the state (replaying a journal gives the same state)."""
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
        record = records.setdefault(key, {_KEY_FIELD[table]: key})
        record.update(change.get("set", {}))
        for name, value in change.get("append", {}).items():
            record.setdefault(name, []).append(value)


class Store:
    """Reading and writing a project's state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.db_path = state_dir / DB_NAME
        self.journal_path = state_dir / JOURNAL_NAME

    def load(self) -> State:
        """The checkpoint plus every journal event written after it (read-only)."""
        # parsing makes millions of acyclic dicts, lists and strings: the cyclic collector can
        # free none of them, yet it would run dozens of times over the growing heap (about
        # half the load time of a large store)
        enabled = gc.isenabled()
        gc.disable()
        try:
            state = self._load()
        finally:
            if enabled:
                gc.enable()
        # the loaded state lives as long as the command: move it out of the collector's
        # generations, or every full collection during the tick walks all of it again
        # (that made the tick grow faster than the store)
        gc.freeze()
        return state

    def _load(self) -> State:
        data = AtomicJSONStorage(self.db_path).read() or {}
        state = State()
        for table in TABLES:
            key_field = _KEY_FIELD[table]
            records = getattr(state, table)
            for doc in (data.get(table) or {}).values():
                records[doc[key_field]] = doc
        state.meta = next(iter((data.get("meta") or {}).values()), {}) or {}
        for event in self.events(since=state.meta.get("journal_offset", 0)):
            apply_event(state, event)
        return state

    def events(self, since: int = 0) -> Iterator[dict]:
        """Journal events from a byte offset on; a torn last line (crash mid-write) is ignored."""
        try:
            f = self.journal_path.open("rb")
        except FileNotFoundError:
            return
        with f:
            f.seek(since)
            for line in f:
                if not line.endswith(b"\n"):
                    break  # torn write: the event never completed, so it never happened
                try:
                    yield json.loads(line)
                except ValueError:
                    continue

    def body_path(self, ref: str) -> Path:
        """Where the body (HTML and text) with this content address is kept."""
        return self.dir / BODIES_DIR / ref[:2] / f"{ref}.json"

    def body(self, ref: str) -> tuple[str, str]:
        """A rendered body as (html, text), by the reference a message record keeps."""
        path = self.body_path(ref)
        try:
            data = json.loads(path.read_bytes())
            return data["html"], data["text"]
        except FileNotFoundError:
            raise StoreError(f"{path}: a draft's body is missing") from None
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise StoreError(f"{path}: a draft's body is unreadable ({err})") from err

    def put_body(self, html: str, text: str) -> str:
        """Keep a rendered body once, durably, under its content address; return the address.

        Bodies are most of a project's bytes (inlined HTML): kept out of the checkpoint, they
        cost nothing to the tick that loads it, and the journal refers to them by address.
        """
        payload = json.dumps({"html": html, "text": text}, ensure_ascii=False).encode("utf-8")
        ref = hashlib.sha256(payload).hexdigest()[:32]
        path = self.body_path(ref)
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        return ref

    @contextmanager
    def writer(self) -> Iterator[Writer]:
        """Hold the project's write lock and give a Writer; a second writer fails at once."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_fd = os.open(self.dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(lock_fd, 32, 0).decode(errors="replace").strip() or "?"
                raise LockedError(f"{self.dir.parent}: another mailflow process (pid {holder}) "
                                  "is working on this project; nothing was done") from None
            os.ftruncate(lock_fd, 0)
            os.pwrite(lock_fd, f"{os.getpid()}\n".encode(), 0)
            w = Writer(self, self.load())
            try:
                yield w
            except BaseException:
                w.rollback()  # a command that fails leaves nothing half-done behind
                raise
            finally:
                w.close()
        finally:
            os.close(lock_fd)  # closing releases the flock; the kernel does so on a crash too


def _cut_torn_tail(path: Path) -> None:
    """Drop a torn last line (a crash mid-append) before appending after it.

    Appended to as is, the next event would share a line with the fragment, be unreadable,
    and be skipped on replay: a durable `sending` mark could vanish and the message be sent
    again. The torn event never completed, so it never happened: cut it off.
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


class Writer:
    """Changes to the state under the lock: journal first, checkpoint at the end."""

    def __init__(self, store: Store, state: State) -> None:
        self.store = store
        self.state = state
        self.dirty = False
        _cut_torn_tail(store.journal_path)
        self._journal = open(store.journal_path, "ab")  # noqa: SIM115 - closed in close()
        os.chmod(store.journal_path, 0o600)
        self._seq = state.meta.get("seq", 0)
        self._start = self._journal.tell()
        self._durable = False  # once something durable happened, it is never taken back

    def record(self, kind: str, *, at: dt.datetime, durable: bool = False, **parts: Any) -> dict:
        """Append an event (and apply its changes); `durable` fsyncs before returning."""
        self._seq += 1
        event = {"seq": self._seq, "at": now_iso(at), "kind": kind, **parts}
        self._journal.write(json.dumps(event, ensure_ascii=False, default=_json_default)
                            .encode("utf-8") + b"\n")
        if durable:
            self.sync()
            self._durable = True
        apply_event(self.state, event)
        self.dirty = True
        return event

    def update_message(self, msg: dict, kind: str, *, at: dt.datetime, durable: bool = False,
                       append: dict | None = None, **changes: Any) -> dict:
        """Record a change to one message; a new state also goes into its history."""
        if "state" in changes and changes["state"] != msg.get("state"):
            append = {**(append or {}), "history": {"at": now_iso(at),
                                                    "state": changes["state"]}}
        part: dict[str, Any] = {"key": msg["key"], "set": changes}
        if append:
            part["append"] = append
        return self.record(kind, at=at, durable=durable, engagement=msg["engagement"],
                           messages=part)

    def put_body(self, html: str, text: str) -> str:
        """Keep a rendered body (before any event refers to it); returns its reference."""
        return self.store.put_body(html, text)

    def body(self, ref: str) -> tuple[str, str]:
        """A kept body as (html, text)."""
        return self.store.body(ref)

    def touch(self) -> None:
        """Mark the state changed without an event (derived data such as plans and drafts)."""
        self.dirty = True

    def sync(self) -> None:
        """Make every event written so far durable."""
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def save(self) -> None:
        """Write the checkpoint once, if anything changed."""
        if not self.dirty:
            return
        self.sync()
        self.state.meta["journal_offset"] = self._journal.tell()
        self.state.meta["seq"] = self._seq
        data: dict[str, dict[str, Any]] = {}
        for table in TABLES:
            records = getattr(self.state, table)
            data[table] = {str(i): doc for i, doc in enumerate(records.values(), start=1)}
        data["meta"] = {"1": self.state.meta}
        db = TinyDB(self.store.db_path, storage=AtomicJSONStorage)
        db.storage.write(data)
        self.dirty = False

    def rollback(self) -> None:
        """Forget this command's events, unless one was durable (e.g. a message went out)."""
        if self._durable or self._journal.closed:
            return
        self._journal.flush()
        self._journal.truncate(self._start)
        self.dirty = False

    def close(self) -> None:
        """Close the journal file."""
        self._journal.close()


class MemoryWriter(Writer):
    """A Writer that changes the state in memory only: for dry runs and previews."""

    def __init__(self, state: State, store: Store | None = None) -> None:  # noqa: D107
        self.state = state
        self.store = store  # read-only here: bodies already kept
        self.dirty = False
        self._seq = state.meta.get("seq", 0)
        self._bodies: dict[str, tuple[str, str]] = {}

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

    def record(self, kind: str, *, at: dt.datetime, durable: bool = False, **parts: Any) -> dict:
        """Apply the event's changes without writing them anywhere."""
        self._seq += 1
        event = {"seq": self._seq, "at": now_iso(at), "kind": kind, **parts}
        apply_event(self.state, event)
        return event

    def sync(self) -> None:
        """Nothing to make durable."""

    def save(self) -> None:
        """Nothing is saved."""

    def close(self) -> None:
        """Nothing to close."""
