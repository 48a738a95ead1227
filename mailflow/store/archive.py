"""Cold storage: engagements that ended long ago, one gzip'd JSON file each, out of the hot state.

One file per engagement (`<state>/archive/<id>.json.gz`), not per month: every reader wants
one engagement (`log`, `engagement show`, `doc`, `replies` of it) and opens one small file;
moving one out again after a crash rewrites that one file whole (idempotent); and the file's
name is what keeps the id taken. The idle tick never reads, lists or stats this folder: the
hot state does not know which ids were moved out, only the commands that are asked for one.

A file holds the engagement's record, its messages and replies as they were when moved out,
every journal event about it (the audit log), and the text of each message that went out.
It is written durably before the journal event that removes those records from the hot state.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from mailflow.errors import StoreError
from mailflow.store.files import fsync_dir, io, json_default, write_atomically
from mailflow.store.state import State

ARCHIVE_DIR = "archive"
FORMAT = 1
ENDED = ("completed", "cancelled")
_SLUG = re.compile(r"[A-Za-z0-9_-]+")
# message states whose words someone may have: their text is kept in the archive
_WENT_OUT = ("sent", "in_doubt", "bounced", "sending", "retry", "failed")


class Shelf:
    """The archive folder of one state folder; nothing is touched until asked."""

    def __init__(self, folder: Path) -> None:  # noqa: D107
        self.dir = folder

    def path(self, eid: str) -> Path:
        """Where one engagement's archive is kept."""
        return self.dir / f"{eid}.json.gz"

    def has(self, eid: str) -> bool:
        """Whether this engagement was moved out (its id stays taken)."""
        return bool(_SLUG.fullmatch(eid)) and self.path(eid).is_file()

    def read(self, eid: str) -> dict | None:
        """One engagement's archive, or None when it has none."""
        if not _SLUG.fullmatch(eid):
            return None
        path = self.path(eid)
        try:
            with io(path, "read the archive"):
                raw = path.read_bytes()
        except StoreError as err:
            if isinstance(err.__cause__, FileNotFoundError):
                return None
            raise
        import gzip  # (on use: views never need it, and start-up counts, issue 18)
        try:
            data = orjson.loads(gzip.decompress(raw))
            if not isinstance(data, dict) or "engagement" not in data:
                raise ValueError("not an engagement archive")
        except (OSError, EOFError, ValueError) as err:
            raise StoreError(f"{path}: the archive is damaged ({err}); `mailflow doctor` "
                             "names every damaged file") from err
        return data

    def write(self, eid: str, data: dict, *, sync_dir: bool = True) -> None:
        """Keep one engagement's archive (replacing an earlier copy of it whole); durably
        unless `sync_dir` is false: then `sync()` must follow before anything relies on it."""
        with io(self.dir, "create the archive folder"):
            if not self.dir.exists():
                self.dir.mkdir(mode=0o700)
                fsync_dir(self.dir.parent)
        import gzip  # (on use: views never need it, and start-up counts, issue 18)
        # mtime 0: the same records give the same bytes, whoever writes them when
        payload = gzip.compress(orjson.dumps(data, default=json_default), compresslevel=6,
                                mtime=0)
        write_atomically(self.path(eid), payload, sync_dir=sync_dir)

    def sync(self) -> None:
        """Make the archives written so far durable (their names in the folder)."""
        with io(self.dir, "make the archives durable"):
            fsync_dir(self.dir)

    def ids(self) -> list[str]:
        """Every archived engagement's id, sorted (lists the folder: never in a tick)."""
        try:
            names = [p.name for p in self.dir.iterdir()]
        except FileNotFoundError:
            return []
        return sorted(n.removesuffix(".json.gz") for n in names if n.endswith(".json.gz"))

    def events(self, skip: set[str] | frozenset[str] = frozenset()) -> Iterator[dict]:
        """Every archived event, engagement by engagement (each in journal order)."""
        for eid in self.ids():
            if eid in skip:
                continue
            data = self.read(eid)
            if data is not None:
                yield from data.get("events") or ()


def subject(event: dict) -> str | None:
    """The engagement an event is about: its `engagement`, else the engagement record it
    changes (`engagement.planned` names none, so as not to count as a change to it)."""
    return event.get("engagement") or (event.get("engagements") or {}).get("key")


def ended_at(record: dict, messages: list[dict]) -> str | None:
    """When an engagement ended (UTC ISO text), or None while it goes on."""
    if record.get("archived"):
        return record["archived"]
    if record.get("status") not in ENDED:
        return None
    if record.get("ended_at"):
        return record["ended_at"]
    # stored before `ended_at` was kept: its last recorded activity, else its contract end
    last = [h["at"] for m in messages for h in m.get("history") or () if h.get("at")]
    end = str(record.get("dates", {}).get("contract_end") or "")
    return max(last) if last else (end + "T23:59:59+00:00" if end else None)


def due_to_move(state: State, now: dt.datetime, days: int) -> list[str]:
    """Engagements completed, cancelled or archived more than `days` days ago."""
    limit = (now - dt.timedelta(days=days)).astimezone(dt.UTC).isoformat(timespec="seconds")
    out = []
    for eid, record in state.engagements.items():
        if record.get("status") not in ENDED and not record.get("archived"):
            continue  # an active or paused one stays, however old
        when = ended_at(record, state.messages_of(eid))
        if when is not None and when <= limit:
            out.append(eid)
    return out


def build(state: State, eid: str, events: list[dict], moved_at: str,
          body: Callable[[str], tuple[str, str]], replies: list[dict]) -> dict:
    """One engagement's archive: its records, its events, its replies, the text of what
    went out."""
    messages = state.messages_of(eid)
    bodies: dict[str, dict] = {}
    for msg in messages:
        ref = msg.get("body")
        if not ref or ref in bodies or msg.get("state") not in _WENT_OUT \
                and not msg.get("sent_at"):
            continue  # a draft that never went out is not part of the record
        try:
            html, text = body(ref)
        except StoreError as err:
            bodies[ref] = {"missing": str(err)}
            continue
        bodies[ref] = {"html": html, "text": text}
    return {"format": FORMAT, "id": eid, "moved_at": moved_at,
            "engagement": state.engagements[eid], "messages": messages, "replies": replies,
            "events": events, "bodies": bodies}


def referenced(records: list[dict]) -> set[str]:
    """The body, attachment and prebuilt-message files a list of messages (or events'
    message parts) name."""
    refs: set[str] = set()
    for m in records:
        if m.get("body"):
            refs.add(m["body"])
        prebuilt = m.get("prebuilt")
        if isinstance(prebuilt, dict) and prebuilt.get("ref"):
            refs.add(prebuilt["ref"])
        for a in m.get("attachments") or ():
            if isinstance(a, dict) and a.get("ref"):
                refs.add(a["ref"])
    return refs


def merge_into(state: State, data: dict) -> dict:
    """Put an archived engagement's records back into a state read by a command (not saved)."""
    record = dict(data["engagement"], moved_out=data.get("moved_at"))
    state.engagements[record["id"]] = record
    for msg in data.get("messages") or ():
        state.messages[msg["key"]] = msg
    for reply in data.get("replies") or ():
        state.replies.setdefault(reply["id"], reply)
    state._indexed = -1
    return record


def archived_body(data: dict, ref: str) -> tuple[str, str] | None:
    """A sent message's text as the archive keeps it, or None."""
    kept = (data.get("bodies") or {}).get(ref)
    if not kept or "html" not in kept:
        return None
    return kept["html"], kept["text"]
