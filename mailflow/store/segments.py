"""Journal segments: the journal rotated once it is folded into a checkpoint, old ones folded away.

The journal is `events.jsonl` (the current segment, the only one ever appended to) and older
segments `events.<seq>.jsonl`, each named by the sequence number of its last line, so their
names sort in journal order and a checkpoint that names event `seq` at the end of a segment
finds it by name, without listing the folder. A segment is made by renaming `events.jsonl`
when the checkpoint covers all of it and it passed a size: nothing is copied or rewritten.
A segment no checkpoint can name any more is kept compressed (`.jsonl.gz`).

An old segment is deleted ("folded") once every event in it that the audit log needs lives in
an archive: the events of engagements moved out of the hot state. The other events in a
segment (IMAP cursors, digests, replies that matched no engagement) are folded away: their
effect stays in the state, their lines leave the global log. Before the first deletion the
fold writes `base.json.gz`, the state as of the end of the newest deleted segment (the fold of
everything deleted), so the state can still be rebuilt from the journal: base + segments +
`events.jsonl`. Every step is a rename, a whole-file atomic write or an unlink of a file the
base already holds; a crash between any two leaves a state that loads to the same fold.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import orjson

from mailflow import faults
from mailflow.errors import StoreError
from mailflow.store.archive import subject
from mailflow.store.files import fsync_dir, io, json_default, write_atomically
from mailflow.store.journal import Position, Replay, committed, matches, replay
from mailflow.store.state import KEY_FIELD, TABLES, State, apply_event

BASE_NAME = "base.json.gz"  # compressed: read only to rebuild the state from the journal
# the journal is rotated (the checkpoint covering it all) once it is as big as the checkpoint,
# within these bounds: what stays on disk then follows the working state, not the history
SEGMENT_BYTES = 4 << 20
MIN_SEGMENT_BYTES = 256 << 10


def rotation_size(checkpoint: Path, limit: int | None = None) -> int:
    """How big the journal may grow before it is rotated."""
    top = SEGMENT_BYTES if limit is None else limit
    return min(top, max(min(MIN_SEGMENT_BYTES, top), _size(checkpoint)))
# an old segment is compressed once no checkpoint can name it (`.gz`): read only by rebuilds,
# folds and the audit log, never by a tick
_SEGMENT = re.compile(r"events\.(\d{12})\.jsonl(\.gz)?")


def segment_path(folder: Path, seq: int) -> Path:
    """The segment whose last line is event `seq`."""
    return folder / f"events.{seq:012d}.jsonl"


def segments(folder: Path) -> list[tuple[int, Path]]:
    """The old segments, oldest first, as (seq of their last line, path); lists the folder."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    found: dict[int, Path] = {}
    for name in names:
        if m := _SEGMENT.fullmatch(name):
            seq = int(m[1])
            # both forms after a crash mid-compression: the plain one is whole for sure
            if seq not in found or not m[2]:
                found[seq] = folder / name
    return sorted(found.items())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def chain_from(folder: Path, journal: Path, pos: Position) -> list[Path] | None:
    """The files to replay after `pos` (the first from `pos.offset`), or None when no file
    holds the event `pos` names. The common cases look at one or two files, never the folder."""
    if matches(journal, pos):
        return [journal]
    if pos.seq <= 0:
        return None
    named = segment_path(folder, pos.seq)
    if _size(named) == pos.offset and matches(named, pos):
        return [named, journal]  # the journal was rotated right after this checkpoint
    # an older checkpoint (the .bak) may stand inside a segment: look for it by order
    later = [p for seq, p in segments(folder) if seq >= pos.seq]
    if later and matches(later[0], pos):
        return [*later, journal]
    return None


def replay_chain(chain: list[Path], start: Position, apply: Callable[[dict], None], *,
                 tolerate: bool = False) -> list[tuple[Path, Replay]]:
    """Replay each file of a chain in turn (the first from `start`); one Replay per file."""
    out: list[tuple[Path, Replay]] = []
    pos = start
    for i, path in enumerate(chain):
        before = pos
        if i:  # a later file starts at its first byte and must go on from the event before
            pos = Position(0, 0, pos.seq, pos.hash, 0)
        found = replay(path, pos, apply, tolerate=tolerate)
        first = found.first_seq
        if pos.offset == 0 and first is not None and first != pos.seq + 1:
            problem = (f"{path}: begins with event {first}, but the journal before it ends "
                       f"with event {pos.seq}: a journal segment is missing")
            if not tolerate:
                raise StoreError(f"{problem}; nothing was changed: put it back, or run "
                                 "`mailflow doctor`")
            found.gaps.append(problem)
        if i and found.position.offset == 0:
            # nothing after the segment before (a journal just rotated): the fold stands at
            # that segment's last event, which a checkpoint can name and find again
            found.position = Position(**vars(before))
        out.append((path, found))
        pos = found.position
    return out


def load_base(folder: Path) -> tuple[State, Position]:
    """The fold of every deleted segment (an empty state before any was deleted)."""
    path = folder / BASE_NAME
    try:
        with io(path, "read"):
            raw = path.read_bytes()
    except StoreError as err:
        if isinstance(err.__cause__, FileNotFoundError):
            return State(), Position()
        raise
    import gzip  # (on use: views never need it, and start-up counts, issue 18)
    try:
        data = orjson.loads(gzip.decompress(raw))
        state = State(meta=data["meta"])
        for table in TABLES:
            records = getattr(state, table)
            for record in data["tables"].get(table, ()):
                records[record[KEY_FIELD[table]]] = record
    except (OSError, EOFError, ValueError, KeyError, TypeError) as err:
        raise StoreError(f"{path}: the fold of the deleted journal segments is damaged "
                         f"({err}); the checkpoint still works: keep state.json") from err
    return state, Position.from_meta(state.meta)


def _write_base(folder: Path, state: State, end: Position) -> None:
    import gzip  # (on use: views never need it, and start-up counts, issue 18)
    data = {"meta": {**state.meta, **end.as_meta()},
            "tables": {t: list(getattr(state, t).values()) for t in TABLES}}
    write_atomically(folder / BASE_NAME, gzip.compress(
        orjson.dumps(data, default=json_default), compresslevel=6, mtime=0))


def full_chain(folder: Path, journal: Path, base: Position) -> list[Path]:
    """Every segment not yet folded into the base, then the journal (lists the folder)."""
    return [p for seq, p in segments(folder) if seq > base.seq] + [journal]


def rotate(folder: Path, journal: Path, pos: Position, limit: int = SEGMENT_BYTES) -> Path | None:
    """Start a new journal when the checkpoint at `pos` covers all of a big enough one."""
    size = _size(journal)
    if size < limit or pos.offset != size or pos.seq <= 0 or not matches(journal, pos):
        return None
    target = segment_path(folder, pos.seq)
    if target.exists():
        return None  # never replace a segment (it cannot be: seq only grows)
    with io(journal, "start a new journal segment"):
        faults.point("rotate journal")
        faults.replacing(journal)
        faults.replacing(target)
        os.rename(journal, target)
        # the current segment always exists (empty until the next command appends to it)
        os.close(os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        fsync_dir(folder)
    return target


def engagements_in(path: Path) -> set[str]:
    """The engagements the committed events of one segment are about."""
    return {eid for e in committed(path) if (eid := subject(e))}


def fold(folder: Path, hot: State, keep: int) -> list[Path]:
    """Delete the oldest segments no engagement of the hot state has events in; returns them.

    The segment ending with event `keep` (the one the checkpoint names, just rotated) stays:
    the checkpoint is found by it, without reading the base. Only a run that moved
    engagements out or rotated calls this: it reads old segments.
    """
    base_state, base_pos = load_base(folder)
    done: list[Path] = []  # already folded into the base (a crash before their unlink)
    new: list[Path] = []
    kept: list[tuple[int, Path]] = []
    for seq, path in segments(folder):
        if kept or seq >= keep:
            kept.append((seq, path))
            continue
        if seq <= base_pos.seq:
            done.append(path)
            continue
        if engagements_in(path) & hot.engagements.keys():
            kept.append((seq, path))  # an engagement still in the hot state: its history
            continue                  # stays in the journal (and so does every later one)
        new.append(path)
    if new:
        found = replay_chain(new, Position(0, 0, base_pos.seq, base_pos.hash, 0),
                             lambda e: apply_event(base_state, e))
        _write_base(folder, base_state, found[-1][1].position)
    gone = done + new
    for path in gone:
        with io(path, "delete a folded journal segment"):
            faults.point("delete segment")
            faults.replacing(path)
            path.unlink(missing_ok=True)
    if gone:
        fsync_dir(folder)
    _compress(folder, [(seq, p) for seq, p in kept if seq < keep])
    return gone


def _compress(folder: Path, kept: list[tuple[int, Path]]) -> None:
    """Compress the old segments no checkpoint names (written whole, then the plain one gone)."""
    import gzip  # (on use: views never need it, and start-up counts, issue 18)
    plain = [p for _, p in kept if p.suffix == ".jsonl"]
    for path in plain:
        with io(path, "compress a journal segment"):
            payload = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
        write_atomically(path.with_name(path.name + ".gz"), payload, sync_dir=False)
    if not plain:
        return
    fsync_dir(folder)  # every compressed copy durable before a plain one goes
    for path in plain:
        with io(path, "delete a compressed journal segment"):
            faults.point("delete segment")
            faults.replacing(path)
            path.unlink(missing_ok=True)
    fsync_dir(folder)
