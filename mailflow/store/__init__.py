"""The project's state: an append-only, fsynced journal (the truth) and a checkpoint (a cache).

Every change is a journal event (`writer.Writer`), grouped per command and made visible by a
commit mark; folding the journal from the start gives the state. The TinyDB file is a
checkpoint of that fold, written once at the end of a command, naming the position, sequence
number and hash of the last event it holds; loading checks that identity and replays what
follows. A checkpoint that does not match its journal is set aside and the state rebuilt from
an older matching one or from the journal, with a one-line note.
"""

from __future__ import annotations

import fcntl
import gc
import hashlib
import heapq
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from mailflow import faults
from mailflow.errors import LockedError, StoreError
from mailflow.store.archive import ARCHIVE_DIR, Shelf, subject
from mailflow.store.checkpoint import LINES_START, Lined
from mailflow.store.files import (
    AtomicJSONStorage,
    fsync_all,
    fsync_dir,
    io,
    write_deferred,
)
from mailflow.store.journal import Position, committed
from mailflow.store.segments import chain_from, full_chain, load_base, replay_chain
from mailflow.store.segments import segments as old_segments  # the module keeps its name
from mailflow.store.state import KEY_FIELD, TABLES, State, apply_event, now_iso
from mailflow.store.writer import MemoryWriter, Writer, write_checkpoint

__all__ = ["AtomicJSONStorage", "MemoryWriter", "State", "Store", "Writer", "apply_event",
           "now_iso"]

DB_NAME = "state.json"
JOURNAL_NAME = "events.jsonl"
BODIES_DIR = "bodies"
LOCK_NAME = "lock"


def _from_checkpoint(data: dict) -> State:
    state = State()
    for table in TABLES:
        key_field = KEY_FIELD[table]
        records = getattr(state, table)
        for doc in (data.get(table) or {}).values():
            records[doc[key_field]] = doc
    state.meta = next(iter((data.get("meta") or {}).values()), {}) or {}
    return state


def read_checkpoint(path: Path, usable: Callable[[dict, Position], bool],
                    only: tuple[str, ...] | None = None) -> tuple[State | None, Position] | None:
    """A checkpoint's state and position; the state is None when `usable(meta, position)`
    says no (its records are then not even parsed); None when there is no file. With `only`,
    only those tables are read (a lined checkpoint's alone: else the state is None)."""
    try:
        with io(path, "read"):
            f = path.open("rb")
    except StoreError as err:
        if isinstance(err.__cause__, FileNotFoundError):
            return None
        raise
    with f:
        try:
            with io(path, "read"):
                first = f.readline()
                if first != LINES_START:  # a compact document (older mailflow, or edited)
                    if only is not None:
                        return None, Position.from_meta({})
                    data = orjson.loads(first + f.read())
                    if not isinstance(data, dict):
                        raise ValueError("not a JSON object")
                    state = _from_checkpoint(data)
                    pos = Position.from_meta(state.meta)
                    return (state if usable(state.meta, pos) else None), pos
                reader = Lined(f)
                meta = reader.meta()
                pos = Position.from_meta(meta)
                if not usable(meta, pos):
                    return None, pos
                state = State(meta=meta, only=only)
                wanted = set(KEY_FIELD if only is None else only)
                for table in reader.tables():
                    if table in wanted:
                        reader.fill(table, getattr(state, table), KEY_FIELD[table])
                        wanted.discard(table)
                        if only is not None and not wanted:
                            break  # the rest (the messages) is never read
                    else:
                        reader.skip()  # a table this version does not know, or not wanted
                return state, pos
        except (ValueError, KeyError, TypeError) as err:  # orjson's errors are ValueErrors
            raise StoreError(f"{path}: the database is damaged ({err}); nothing was "
                             "changed: `mailflow doctor --repair` rebuilds it from the "
                             "journal (the damaged file is kept beside it)") from err


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


class Store:
    """Reading and writing a project's state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.db_path = state_dir / DB_NAME
        self.journal_path = state_dir / JOURNAL_NAME
        self.notes: list[str] = []  # what loading found worth one line, for the CLI to say
        self.shelf = Shelf(state_dir / ARCHIVE_DIR)  # engagements moved out of the hot state
        # the event the checkpoint found at loading names (its segment must stay), 0: none
        self.checkpoint_seq = 0
        self._chain: list[Path] = [self.journal_path]  # what to replay after the checkpoint
        # bodies and attachments written but not yet durable, and folders made for them:
        # made durable together (make_durable) before any journal line is written after them
        self._unsynced: dict[Path, None] = {}
        self._new_dirs: dict[Path, None] = {}

    def load(self) -> State:
        """The checkpoint plus every committed journal event written after it (read-only)."""
        state, _ = self.load_at()
        return state

    def load_tables(self, only: tuple[str, ...]) -> State | None:
        """Only these tables, for a read-only view that can answer from them: read from the
        checkpoint when it holds the whole state (no event after it in the journal), else
        None (then `load` the whole state). Never saved: the state says what it lacks."""
        enabled = gc.isenabled()
        gc.disable()  # as load_at: nothing to collect while parsing
        try:
            found = read_checkpoint(self.db_path, self._usable, only)
        finally:
            if enabled:
                gc.enable()
        if found is None or found[0] is None:
            return None
        state, pos = found
        if self._chain != [self.journal_path] or _size(self.journal_path) != pos.offset:
            return None  # events after the checkpoint (or a command writing them now)
        state.shelf = self.shelf
        return state

    def load_at(self, *, tolerate: bool = False, trust_checkpoint: bool = True,
                writing: bool = False) -> tuple[State, Position]:
        """The state and the journal position it stands at (the end of the journal)."""
        # parsing makes millions of acyclic dicts, lists and strings: the cyclic collector can
        # free none of them, yet it would run dozens of times over the growing heap (about
        # half the load time of a large store)
        enabled = gc.isenabled()
        gc.disable()
        try:
            state, position = self._load(tolerate, trust_checkpoint, writing)
        finally:
            if enabled:
                gc.enable()
        # the loaded state lives as long as the command: move it out of the collector's
        # generations, or every full collection during the tick walks all of it again
        gc.freeze()
        return state, position

    def _load(self, tolerate: bool, trust_checkpoint: bool, writing: bool
              ) -> tuple[State, Position]:
        if trust_checkpoint:
            state, start, chain = self._checkpoint()
        else:
            state, start, chain = self._from_base()
        found = replay_chain(chain, start, lambda e: apply_event(state, e), tolerate=tolerate)
        result = found[-1][1]
        abandoned = [a for _, r in found for a in r.abandoned]
        state.shelf = self.shelf
        if result.open_tail and not writing and self._writer_alive():
            abandoned = abandoned[:-1]  # a command still running: not ours to judge
        for line, count, _ in abandoned:
            state.notes.append(f"{self.journal_path}: line {line}: {count} event(s) of a command "
                               "that did not finish were ignored (it changed nothing)")
        self.notes.extend(n for n in state.notes if n not in self.notes)
        return state, result.position

    def _writer_alive(self) -> bool:
        """Whether another process holds the write lock right now."""
        try:
            fd = os.open(self.dir / LOCK_NAME, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # releases the shared lock taken to look
        return False

    def journal_chain(self) -> tuple[State, Position, list[Path]]:
        """The fold of deleted segments, and every file to replay after it (doctor)."""
        return self._from_base()

    def _from_base(self) -> tuple[State, Position, list[Path]]:
        """The fold of deleted segments, and every file to replay after it."""
        state, base = load_base(self.dir)
        start = Position(0, 0, base.seq, base.hash, 0)
        self.checkpoint_seq = 0  # no checkpoint to keep the segment of
        return state, start, full_chain(self.dir, self.journal_path, base)

    def _checkpoint(self) -> tuple[State, Position, list[Path]]:
        """The newest checkpoint that matches the journal (and the files to replay after it),
        else the fold of the journal from its base."""
        found = read_checkpoint(self.db_path, self._usable)
        if found is None:
            return self._from_base()
        state, pos = found
        if state is not None:
            return state, pos, self._chain
        if pos.offset and not self.journal_path.exists() and not old_segments(self.dir):
            # rebuilding from nothing would forget what was sent: the journal must come back
            raise StoreError(f"{self.journal_path}: the journal is missing (the checkpoint "
                             f"holds its first {pos.seq} events); nothing was changed: put it "
                             "back where it was")
        why = (f"{self.db_path}: the checkpoint does not match {self.journal_path.name} "
               f"(it names event {pos.seq} at byte {pos.offset})")
        backup = self.db_path.with_name(self.db_path.name + ".bak")
        try:
            older = read_checkpoint(backup, lambda meta, pos: "hash" in meta and self._usable(
                meta, pos))
            if older is not None and older[0] is not None:
                self.checkpoint_seq = 0  # the newest checkpoint is not the one loaded
                older[0].notes.append(f"{why}; rebuilt from the older checkpoint and the "
                                      "journal")
                return older[0], older[1], self._chain
        except (StoreError, OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        state, start, chain = self._from_base()
        state.notes.append(f"{why}; rebuilt from the journal")
        return state, start, chain

    def _usable(self, meta: dict, pos: Position) -> bool:
        """Whether a checkpoint with this meta stands on this project's journal (or on a
        segment of it); the files to replay after it are kept in `_chain`."""
        if "hash" not in meta and 0 < pos.offset <= _size(self.journal_path):
            self._chain, self.checkpoint_seq = [self.journal_path], 0
            return True  # written before checkpoints named their last event
        chain = chain_from(self.dir, self.journal_path, pos)
        if chain is None:
            return False
        self._chain, self.checkpoint_seq = chain, pos.seq
        return True

    def events(self, since: int = 0, hot: set[str] | None = None) -> Iterator[dict]:
        """The committed journal events from a byte offset on, in order (the audit log).

        Events of a command that failed or was killed are not shown: they never happened.
        `since` is an offset in the current segment; without it, the audit log is whole:
        the archived engagements' events (but those of ids in `hot`) and every segment's,
        merged in journal order.
        """
        if since:
            yield from committed(self.journal_path, since)
            return
        journal = (e for path in self.journal_files() for e in committed(path))
        # archives of engagements still in the hot state (a run cut short after writing
        # one) are left out: their journal events are the truth
        archived = sorted(self.shelf.events(skip=hot or set()), key=lambda e: e["seq"])
        last = 0
        for event in heapq.merge(journal, archived, key=lambda e: e["seq"]):
            if event["seq"] != last:  # in an archive and a segment not folded yet
                last = event["seq"]
                yield event

    def events_of(self, eid: str, *, hot: bool) -> Iterator[dict]:
        """One engagement's committed events in journal order: from the journal while it is
        in the hot state, else from its archive."""
        data = None if hot else self.shelf.read(eid)
        if data is not None:
            yield from data.get("events") or ()
            return
        for path in self.journal_files():
            yield from (e for e in committed(path) if subject(e) == eid)

    def journal_files(self) -> list[Path]:
        """The old segments not folded yet, then the current one (lists the folder)."""
        return [p for _, p in old_segments(self.dir)] + [self.journal_path]

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
            raise StoreError(f"{path}: a draft's body is missing; `mailflow doctor --repair` "
                             "renders it again") from None
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise StoreError(f"{path}: a draft's body is unreadable ({err}); `mailflow doctor "
                             "--repair` renders it again") from err

    def put_body(self, html: str, text: str) -> str:
        """Keep a rendered body once, durably, under its content address; return the address.

        Bodies are most of a project's bytes (inlined HTML): kept out of the checkpoint, they
        cost nothing to the tick that loads it, and the journal refers to them by address.
        """
        payload = json.dumps({"html": html, "text": text}, ensure_ascii=False).encode("utf-8")
        ref = hashlib.sha256(payload).hexdigest()[:32]
        self._keep(self.body_path(ref), payload)
        return ref

    def _keep(self, path: Path, content: bytes) -> None:
        """Write content-addressed bytes once; durable at the next make_durable, which the
        Writer calls before it writes any journal line (so before any event refers to them).

        One fsync per file and one per folder for a whole tick's bodies, instead of two per
        body (issue 18). A file already there is kept only when it holds these very bytes: a
        body torn by a power cut before it was made durable is written again.
        """
        if path in self._unsynced:
            return
        try:
            if path.read_bytes() == content:
                return
        except FileNotFoundError:
            pass
        except OSError as err:
            raise StoreError(f"{path}: cannot read ({err})") from err
        faults.point("body write")
        with io(path.parent, "create a folder"):
            if not path.parent.exists():
                path.parent.mkdir(mode=0o700, parents=True)
                self._new_dirs[path.parent.parent] = None
        write_deferred(path, content)
        self._unsynced[path] = None

    def make_durable(self) -> None:
        """Make the bodies and attachments kept since the last call durable: each file, then
        each folder that got a new name."""
        if not self._unsynced:
            return
        folders = dict.fromkeys(p.parent for p in self._unsynced) | self._new_dirs
        fsync_all(list(self._unsynced))
        fsync_all(list(folders), folders=True)
        self._unsynced.clear()
        self._new_dirs.clear()

    def attachment_path(self, ref: str) -> Path:
        """Where an attachment's bytes with this content address are kept (beside the bodies)."""
        return self.dir / BODIES_DIR / ref[:2] / f"{ref}.bin"

    def attachment(self, ref: str) -> bytes:
        """A kept attachment's bytes, by the reference a message record keeps."""
        path = self.attachment_path(ref)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{path}: a draft's attachment is missing; `mailflow doctor "
                             "--repair` renders it again") from None
        except OSError as err:
            raise StoreError(f"{path}: a draft's attachment is unreadable ({err})") from err

    def put_attachment(self, content: bytes) -> str:
        """Keep an attachment (a document a stage attaches) once, durably, by content address."""
        ref = hashlib.sha256(content).hexdigest()[:32]
        self._keep(self.attachment_path(ref), content)
        return ref

    def wire_copy_path(self, ref: str) -> Path:
        """Where a prebuilt message's bytes with this content address are kept."""
        return self.dir / BODIES_DIR / ref[:2] / f"{ref}.eml"

    def wire_copy(self, ref: str) -> bytes | None:
        """A prebuilt message's bytes, or None when gone or not what its address says."""
        try:
            content = self.wire_copy_path(ref).read_bytes()
        except OSError:
            return None
        return content if hashlib.sha256(content).hexdigest()[:32] == ref else None

    def put_wire_copy(self, content: bytes) -> str:
        """Keep a prebuilt message by content address; a cache, so not fsynced: a copy lost
        or torn by a power cut fails its address check and the message is built again."""
        ref = hashlib.sha256(content).hexdigest()[:32]
        path = self.wire_copy_path(ref)
        if path.exists():
            return ref
        faults.point("body write (prebuilt message)")
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with io(path, "write"):
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # not announced to the power-cut simulation (faults.replacing): a copy a power cut
            # undid or tore only misses the cache (tests/contract/test_send_batches.py), and
            # announcing it would make every later point of a crash scenario "exposed"
            try:
                with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                    f.write(content)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return ref

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Hold the project's write lock; a second holder fails at once (exit 75)."""
        with io(self.dir, "create the state folder"):
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with io(self.dir / LOCK_NAME, "open the lock file"):
            lock_fd = os.open(self.dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(lock_fd, 32, 0).decode(errors="replace").strip() or "?"
                raise LockedError(f"{self.dir.parent}: another mailflow process (pid {holder}) "
                                  "is working on this project; nothing was done") from None
            with io(self.dir / LOCK_NAME, "write the lock file"):
                os.ftruncate(lock_fd, 0)
                os.pwrite(lock_fd, f"{os.getpid()}\n".encode(), 0)
            self._sweep_tmp()
            yield
        finally:
            os.close(lock_fd)  # closing releases the flock; the kernel does so on a crash too

    @contextmanager
    def writer(self, after: Callable[[Writer], None] | None = None) -> Iterator[Writer]:
        """Hold the project's write lock and give a Writer.

        The command's events are committed and the checkpoint written when the block ends
        normally; an exception of any type voids the command's uncommitted events instead.
        `after(writer)` then runs, still under the lock (journal rotation and folding).
        """
        with self.writer_lock():
            state, position = self.load_at(writing=True)
            w = Writer(self, state, position)
            try:
                yield w
                w.save()
            except BaseException:
                w.abort()  # a command that fails leaves nothing half-done behind
                raise
            finally:
                w.close()
            if after is not None:
                after(w)

    def _sweep_tmp(self) -> None:
        """Temp files of a process that died mid-write (we hold the lock: none is in use)."""
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink(missing_ok=True)


def rebuild_checkpoint(store: Store, state: State, position: Position) -> None:
    """Write a checkpoint of `state` standing at `position` (doctor --repair)."""
    write_checkpoint(store.db_path, state, position)


__all__ += ["fsync_dir", "rebuild_checkpoint"]
