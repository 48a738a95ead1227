"""History out of the hot state: engagements moved into archives, the journal rotated and folded,
bodies nobody refers to any more removed. Only `mailflow run` does it, under its lock.

Order is what makes every crash harmless: an engagement's archive is written durably before
the journal event that drops its records is committed (a crash between leaves it in the hot
state, and the next run writes its archive again, whole); its body files are deleted only
after that event is durable; a segment is deleted only after the base holds its fold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from mailflow import faults
from mailflow.store import Store, Writer, now_iso, segments
from mailflow.store.archive import build, due_to_move, referenced, subject
from mailflow.store.files import fsync_dir, io
from mailflow.store.journal import committed
from mailflow.store.segments import fold, rotate


def move_out(w: Writer, store: Store, now: dt.datetime, days: int) -> set[str]:
    """Archive every engagement that ended more than `days` ago and drop it from the hot
    state; returns the body and attachment files only those engagements referred to."""
    due = sorted(due_to_move(w.state, now, days))
    if not due:
        return set()
    w.commit()  # this run's events so far are on disk, committed, before they are copied
    wanted = set(due)
    events: dict[str, list[dict]] = {eid: [] for eid in due}
    for path in store.journal_files():  # reads the journal: only on a run that moves some
        for event in committed(path):
            if (eid := subject(event)) in wanted:
                events[eid].append(event)
    _sweep_archive_tmp(store)
    refs: set[str] = set()
    moved_at = now_iso(now)
    by_engagement = w.state.replies_by_engagement()
    drops = []
    for eid in due:
        data = build(w.state, eid, events[eid], moved_at, store.body,
                     by_engagement.get(eid, []))
        refs |= referenced(data["messages"]) | referenced(
            [e["messages"].get("set", {}) for e in events[eid] if e.get("messages")])
        store.shelf.write(eid, data, sync_dir=False)  # each file fsynced; the folder below
        drops.append((eid, [m["key"] for m in data["messages"]],
                      [r["id"] for r in data["replies"]]))
    store.shelf.sync()  # every archive durable before any event that drops its records
    for eid, keys, replies in drops:
        floor = max((int(r) for r in replies if r.isdigit()), default=0)
        w.record("engagement.moved_out", at=now, engagement=eid,
                 archive=f"{store.shelf.dir.name}/{store.shelf.path(eid).name}",
                 drop={"engagements": [eid], "messages": keys, "replies": replies},
                 reply_floor=floor)
    w.commit()
    return refs - referenced(list(w.state.messages.values()))


def housekeeping(store: Store, unreferenced: Callable[[], set[str]],
                 segment_bytes: int | None = None) -> Callable[[Writer], None]:
    """What a run does after its checkpoint is saved, still under the lock: delete the
    bodies of engagements moved out, rotate the journal when it is big, fold old segments."""
    def after(w: Writer) -> None:
        gone = unreferenced()
        if gone:
            remove_bodies(store, gone)
        # only a journal the checkpoint on disk covers whole is rotated: this run's
        rotated = None
        if w.saved:  # (an idle tick saves nothing: it stats nothing more here)
            limit = segments.rotation_size(store.db_path, segment_bytes)
            rotated = rotate(store.dir, store.journal_path, w.position, limit)
        if gone or rotated is not None:
            # the segment the checkpoint names stays (found by name, without the base)
            keep = w.position.seq if w.saved else store.checkpoint_seq
            fold(store.dir, w.state, keep=keep)
    return after


def remove_bodies(store: Store, refs: set[str]) -> int:
    """Delete body, attachment and prebuilt-message files by reference (none is referred to
    by the hot state)."""
    folders = set()
    removed = 0
    for ref in sorted(refs):
        if ref.startswith("mem-"):
            continue
        for path in (store.body_path(ref), store.attachment_path(ref),
                     store.wire_copy_path(ref)):
            if not path.exists():
                continue
            with io(path, "delete a body no record refers to"):
                faults.point("delete body")
                faults.replacing(path)
                path.unlink(missing_ok=True)
            folders.add(path.parent)
            removed += 1
    for folder in sorted(folders):
        with io(folder, "make the deletion of bodies durable"):
            fsync_dir(folder)
    return removed


def _sweep_archive_tmp(store: Store) -> None:
    """Temp files of an archive write a crash cut short (we hold the lock: none is in use)."""
    if store.shelf.dir.exists():
        for tmp in store.shelf.dir.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
