"""Reading the journal: committed groups of events, identities, and damage named by line.

Each event carries `seq` (one more than the line before) and `g`, the seq of the first event
of its command's group; a `commit` mark naming the group makes it visible, an `abort` mark (a
command that failed) or the start of another group (a command that was killed) leaves it out.
Events without `g` come from journals written before groups existed: each stands alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import orjson

from mailflow.errors import StoreError
from mailflow.store.files import io

COMMIT, ABORT = "commit", "abort"


def line_hash(line: bytes) -> str:
    """The identity of one journal line (its bytes, newline included)."""
    return hashlib.sha256(line).hexdigest()[:16]


@dataclass
class Position:
    """Where a fold of the journal stands: after byte `offset`, line `line`, event `seq`."""

    offset: int = 0
    line: int = 0
    seq: int = 0
    hash: str = ""
    last_start: int = 0  # where the last line begins, to check `hash` without reading it all

    def as_meta(self) -> dict:
        """The fields a checkpoint keeps to name the last event it holds."""
        return {"journal_offset": self.offset, "journal_line": self.line, "seq": self.seq,
                "hash": self.hash, "last_start": self.last_start}

    @classmethod
    def from_meta(cls, meta: dict) -> Position:
        """The position a checkpoint claims."""
        return cls(int(meta.get("journal_offset", 0)), int(meta.get("journal_line", 0)),
                   int(meta.get("seq", 0)), str(meta.get("hash", "")),
                   int(meta.get("last_start", 0)))


@dataclass
class Damage:
    """A journal line that is not a whole event."""

    line: int
    offset: int
    text: bytes


@dataclass
class Replay:
    """What a fold found besides the events it applied."""

    position: Position
    abandoned: list[tuple[int, int, int]] = field(default_factory=list)  # (line, events, seq)
    damage: list[Damage] = field(default_factory=list)
    torn_tail: bool = False
    open_tail: bool = False  # the last group has no commit mark (yet: its writer may be alive)
    first_seq: int | None = None  # the first whole event read (segments must follow on)
    gaps: list[str] = field(default_factory=list)  # segments that do not follow on (doctor)


def open_journal(path: Path) -> BinaryIO:
    """A journal segment for reading (an old one may be compressed)."""
    if path.suffix == ".gz":
        import gzip  # (on use: views never need it, and start-up counts, issue 18)
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def matches(path: Path, pos: Position) -> bool:
    """Whether the journal's line ending at `pos.offset` is the event `pos` names."""
    if pos.offset == 0:
        return pos.seq == 0
    try:
        with open_journal(path) as f:
            f.seek(pos.last_start)
            line = f.read(pos.offset - pos.last_start)
    except (OSError, ValueError, EOFError):
        return False
    if len(line) != pos.offset - pos.last_start or not line.endswith(b"\n") \
            or line_hash(line) != pos.hash:
        return False
    try:
        return orjson.loads(line).get("seq") == pos.seq
    except ValueError:
        return False


def replay(path: Path, start: Position, apply: Callable[[dict], None], *,
           tolerate: bool = False) -> Replay:
    """Apply every committed event after `start`; damage raises unless `tolerate` (doctor)."""
    try:
        f = open_journal(path)
    except FileNotFoundError:
        return Replay(Position(**vars(start)))
    with io(path, "read"), f:
        f.seek(start.offset)
        return replay_lines(f, start, apply, tolerate=tolerate, where=str(path))


def replay_lines(lines: Iterable[bytes], start: Position, apply: Callable[[dict], None], *,
                 tolerate: bool = False, where: str = "journal") -> Replay:
    """Apply every committed event of `lines` (the journal from `start.offset` on)."""
    out = Replay(Position(**vars(start)))
    pos = out.position
    pending: list[dict] = []
    group: int | None = None
    first_line = 0
    offset = start.offset
    for raw in lines:
        if not raw.endswith(b"\n"):
            out.torn_tail = True  # a crash mid-append: the event never completed
            break
        lineno = pos.line + 1
        try:
            event = orjson.loads(raw)
            if not isinstance(event, dict) or not isinstance(event.get("seq"), int):
                raise ValueError("not an event")
        except ValueError:
            if not tolerate:
                raise StoreError(
                    f"{where}: line {lineno} is damaged (not a whole event); nothing was "
                    "changed: run `mailflow doctor` to see every problem, and "
                    "`mailflow doctor --repair --quarantine` to set damaged lines "
                    "aside") from None
            out.damage.append(Damage(lineno, offset, raw))
            pos.line, offset = lineno, offset + len(raw)
            pos.offset = offset
            continue
        if out.first_seq is None:
            out.first_seq = event["seq"]
        kind, g = event.get("kind"), event.get("g")
        if kind == COMMIT:
            if g == group:
                for e in pending:
                    apply(e)
            pending, group = [], None
        elif kind == ABORT:
            pending, group = [], None
        elif g is None:
            apply(event)  # written before groups existed: it stood alone
        else:
            if g != group:
                if pending:  # the command that wrote them died before its commit
                    out.abandoned.append((first_line, len(pending), group or 0))
                pending, group, first_line = [], g, lineno
            pending.append(event)
        pos.last_start, offset = offset, offset + len(raw)
        pos.offset, pos.line, pos.seq, pos.hash = offset, lineno, event["seq"], \
            line_hash(raw)
    if pending:
        out.abandoned.append((first_line, len(pending), group or 0))
        out.open_tail = True
    return out


def committed(path: Path, since: int = 0) -> Iterator[dict]:
    """The committed events from byte `since` on, streamed (the audit log); damage skipped."""
    try:
        f = open_journal(path)
    except FileNotFoundError:
        return
    with f:
        f.seek(since)
        pending: list[dict] = []
        group = None
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                event = orjson.loads(raw)
                kind, g = event.get("kind"), event.get("g")
            except (ValueError, AttributeError):
                continue  # named by load and by doctor; the log shows what it can
            if kind == COMMIT:
                if g == group:
                    yield from pending
                pending, group = [], None
            elif kind == ABORT:
                pending, group = [], None
            elif g is None:
                yield event
            else:
                if g != group:
                    pending, group = [], g
                pending.append(event)
