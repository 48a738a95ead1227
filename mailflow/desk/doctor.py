"""`mailflow doctor`: check the journal, the checkpoint and the bodies; repair what can be.

Checking never changes anything. Repairing rebuilds the checkpoint from the journal, renders
missing bodies again (those drafts need approving again), and sets damaged journal lines aside
into `events.damaged.jsonl` only when the user asks for it (`--quarantine`).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

import orjson

from mailflow.config.loading import Loaded
from mailflow.desk.history import remove_bodies
from mailflow.engine.records import PENDING
from mailflow.engine.records import MessageState as S
from mailflow.errors import MailflowError, StoreError
from mailflow.store import BODIES_DIR, Store, rebuild_checkpoint
from mailflow.store.archive import referenced
from mailflow.store.files import AtomicJSONStorage, io, write_atomically
from mailflow.store.journal import Position, Replay
from mailflow.store.segments import chain_from, replay_chain, segments
from mailflow.store.state import TABLES, State, apply_event

QUARANTINE_NAME = "events.damaged.jsonl"


@dataclass
class Findings:
    """Problems (each one line naming file, line or message) and notes (fine, worth saying)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    damaged_lines: int = 0
    missing_bodies: list[str] = field(default_factory=list)  # message keys
    stale_kept: list[str] = field(default_factory=list)  # engagements whose kept plan is off
    stale_shown: list[str] = field(default_factory=list)  # ... whose kept status summary is
    unused_bodies: set[str] = field(default_factory=set)  # body and attachment references


def _fold(store: Store, out: Findings | None = None) -> tuple[State, Replay]:
    """The journal folded from its base through every segment (what a checkpoint must hold)."""
    state, start, chain = store.journal_chain()
    found = replay_chain(chain, start, lambda e: apply_event(state, e), tolerate=True)
    for path, seg in found[:-1]:  # old segments: never appended to, so never quarantined
        if out is None:
            continue
        out.problems.extend(seg.gaps)
        for d in seg.damage:
            out.problems.append(f"{path}: line {d.line} is damaged ({d.text[:40]!r}...); "
                                "restore the segment from a backup")
    last = found[-1][1]
    if out is not None:
        out.problems.extend(last.gaps)
    return state, last


def check(store: Store, loaded: Loaded | None = None) -> Findings:
    """Every problem of the journal, the checkpoint, the bodies and the archives (and, given
    the project's rules, of the plans the last run kept); changes nothing."""
    out = Findings()
    journal = store.journal_path
    state, found = _fold(store, out)
    for d in found.damage:
        out.problems.append(f"{journal}: line {d.line} is damaged ({d.text[:40]!r}...); "
                            "`mailflow doctor --repair --quarantine` sets it aside")
    out.damaged_lines = len(found.damage)
    for line, count, _ in found.abandoned:
        out.notes.append(f"{journal}: line {line}: {count} event(s) of a command that did not "
                         "finish are ignored (it changed nothing)")
    if found.torn_tail:
        out.notes.append(f"{journal}: the last line is torn (a crash mid-write); it is ignored "
                         "and cut off by the next command")
    _check_checkpoint(store, state, found.position, out)
    for msg in state.messages.values():
        ref = msg.get("body")
        if not ref or ref.startswith("mem-"):
            continue
        try:
            store.body(ref)
        except StoreError as err:
            if msg["state"] in PENDING or msg["state"] == S.IN_DOUBT:
                out.missing_bodies.append(msg["key"])
                out.problems.append(f"{msg['key']}: {err}")
            else:
                out.notes.append(f"{msg['key']} ({msg['state']}): {err} (kept for the record "
                                 "only; nothing waits on it)")
    _check_archives(store, state, out)
    if loaded is not None:
        _check_kept(state, loaded, out)
        _check_shown(state, loaded, out)
    unused = unreferenced_bodies(store, state)
    if unused:
        out.unused_bodies = unused
        out.notes.append(f"{len(unused)} body or attachment file(s) no message refers to (of "
                         "edited drafts, or of a run cut short while archiving); `mailflow "
                         "doctor --repair` deletes them")
    strays = sorted(store.dir.rglob("*.tmp")) if store.dir.exists() else []
    if strays:
        out.notes.append(f"{len(strays)} temp file(s) of an interrupted write, e.g. "
                         f"{strays[0]}; the next command removes them")
    return out


def unreferenced_bodies(store: Store, state: State) -> set[str]:
    """The kept bodies, attachments and prebuilt messages no message of the hot state refers
    to (lists them)."""
    folder = store.dir / BODIES_DIR
    if not folder.is_dir():
        return set()
    kept = {p.name.split(".", 1)[0] for p in folder.glob("*/*")
            if p.suffix in (".json", ".bin", ".eml")}
    return kept - referenced(list(state.messages.values()))


def _check_archives(store: Store, state: State, out: Findings) -> None:
    """Every archive readable; one also in the hot state is a move cut short (harmless)."""
    ids = store.shelf.ids()
    for eid in ids:
        try:
            store.shelf.read(eid)
        except StoreError as err:
            out.problems.append(str(err))
            continue
        if eid in state.engagements:
            out.notes.append(f"{store.shelf.path(eid)}: {eid} is still in the working state "
                             "(a run was cut short while moving it out); the next run "
                             "writes its archive again")
    segs = len(segments(store.dir))
    if ids or segs:
        out.notes.append(f"{len(ids)} archived engagement(s) in {store.shelf.dir}; "
                         f"{segs} old journal segment(s) not folded yet")


def _check_kept(state: State, loaded: Loaded, out: Findings) -> None:
    """A plan (and open checklist) kept by a run, while its signature holds, is what planning
    now gives: views show it instead of planning (engine/stored_plan.py)."""
    from mailflow.engine import checklist, stored_plan
    from mailflow.engine.checklist_of import items_of
    from mailflow.engine.planner import plan_stored
    replies = state.replies_by_engagement()
    for eid, eng in state.engagements.items():
        try:
            items = stored_plan.kept(loaded, eng)
            open_items = stored_plan.kept_checklist(loaded, eng)
            if items is None and open_items is None:
                continue
            msgs = {m["key"]: m for m in state.messages_of(eid)}
            same = (items is None or items == plan_stored(loaded, eng, msgs,
                                                          replies.get(eid, []))) and (
                open_items is None
                or open_items == checklist.open_items(items_of(state, loaded, eng)))
        except MailflowError:
            continue  # a broken engagement: `mailflow check` and its status row say why
        if not same:
            out.stale_kept.append(eid)
            out.problems.append(f"engagement {eid}: the plan kept by the last run differs "
                                "from planning it now; `mailflow doctor --repair` drops it "
                                "(the next run plans it again)")


def _check_shown(state: State, loaded: Loaded, out: Findings) -> None:
    """A status summary kept by a run, while its signature holds, is what `status` makes at
    each end of the span it holds for: views show it instead (desk/status.py)."""
    from mailflow.desk.status import Shared, Summary, kept_fields, signature, summarize
    shared = Shared(state)
    for eid, eng in state.engagements.items():
        text = eng.get("shown")
        if not text:
            continue
        stamp, since, until, start = kept_fields(text)
        try:
            if until == since or stamp != signature(loaded, eng):
                continue  # not kept (it moves with `now`), or void: nothing is shown from it
            kept = Summary.unpack(text[start:])
            start = dt.datetime.fromisoformat(since)
            ends = [start] + ([dt.datetime.fromisoformat(until) - dt.timedelta(seconds=1)]
                              if until else [])
            same = all(summarize(state, loaded, eng, at, shared).summary == kept for at in ends)
        except MailflowError:
            continue  # a broken engagement: `mailflow check` and its status row say why
        except ValueError:  # not a summary this version kept
            same = False
        if not same:
            out.stale_shown.append(eid)
            out.problems.append(f"engagement {eid}: the status summary kept by the last run "
                                "differs from making it now; `mailflow doctor --repair` drops "
                                "it (the next run makes it again)")


def _check_checkpoint(store: Store, folded: State, end: Position, out: Findings) -> None:
    db = store.db_path
    try:
        data = AtomicJSONStorage(db).read()
    except StoreError as err:
        out.problems.append(str(err))
        return
    if data is None:
        if end.offset:
            out.notes.append(f"{db}: no checkpoint yet; it is rebuilt from the journal")
        return
    meta = next(iter((data.get("meta") or {}).values()), {}) or {}
    pos = Position.from_meta(meta)
    if chain_from(store.dir, store.journal_path, pos) is None:
        out.problems.append(f"{db}: does not match {store.journal_path.name} (it names event "
                            f"{pos.seq} at byte {pos.offset}); it is rebuilt from the journal "
                            "at the next command, or now by `mailflow doctor --repair`")
        return
    state, _ = store.load_at(tolerate=True)
    for table in TABLES:
        if getattr(state, table) != getattr(folded, table):
            out.problems.append(f"{db}: its {table} differ from the journal's (the journal is "
                                "the truth): `mailflow doctor --repair` rebuilds it")
            return


def repair(store: Store, loaded: Loaded, now: dt.datetime, *, quarantine: bool) -> Findings:
    """Fix what `check` found: damaged lines (if asked), the checkpoint, missing bodies."""
    with store.writer_lock():
        if not store.journal_path.exists() and store.db_path.exists():
            store.load()  # refuses by name: a rebuild from nothing would forget what was sent
        before = check(store, loaded)
        if before.damaged_lines and not quarantine:
            before.problems.append(f"{store.journal_path}: {before.damaged_lines} damaged "
                                   "line(s) left as they are: add --quarantine to set them "
                                   f"aside into {QUARANTINE_NAME} (nothing is deleted)")
            return before
        if before.damaged_lines:
            _quarantine(store, before)
        state, found = _fold(store)
        rebuild_checkpoint(store, state, found.position)
        before.repaired.append(f"{store.db_path}: rebuilt from the journal "
                               f"({found.position.line} lines, event {found.position.seq})")
    if before.unused_bodies:
        with store.writer_lock():  # the state is read again under the lock: nothing new
            unused = unreferenced_bodies(store, store.load())  # since the check
            removed = remove_bodies(store, unused)
        before.repaired.append(f"{removed} unused body or attachment file(s) deleted")
    if before.stale_kept:
        with store.writer() as w:  # a journal event like any other: the checkpoint follows
            for eid in before.stale_kept:
                # without `engagement=`, as the tick keeps a plan: no rev of its own changes
                w.record("engagement.plan_dropped", at=now,
                         engagements={"key": eid, "set": {"planned": None}})
        before.repaired.append(f"{len(before.stale_kept)} kept plan(s) dropped: the next run "
                               "plans them again")
    if before.stale_shown:
        with store.writer() as w:
            for eid in before.stale_shown:  # (as a run keeps one: no rev of its own changes)
                w.record("engagement.summary_dropped", at=now,
                         engagements={"key": eid, "set": {"shown": None}})
        before.repaired.append(f"{len(before.stale_shown)} kept status summary(ies) dropped: "
                               "the next run makes them again")
    if before.missing_bodies:
        _render_again(store, loaded, now, before)
    after = check(store, loaded)
    after.repaired = before.repaired
    return after


def _quarantine(store: Store, out: Findings) -> None:
    """Move damaged lines into the side file, then rewrite the journal without them."""
    journal, side = store.journal_path, store.dir / QUARANTINE_NAME
    raw = journal.read_bytes()
    keep, moved = [], []
    for number, line in enumerate(raw.splitlines(keepends=True), start=1):
        try:
            event = orjson.loads(line) if line.endswith(b"\n") else None
            ok = isinstance(event, dict) and isinstance(event.get("seq"), int)
        except ValueError:
            ok = False
        if ok or not line.endswith(b"\n"):
            keep.append(line)
        else:
            moved.append(f"{number}\t".encode() + line)
    with io(side, "write"):
        fd = os.open(side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"".join(moved))
            os.fsync(fd)
        finally:
            os.close(fd)
    # the side file holds them durably before the journal is rewritten without them
    write_atomically(journal, b"".join(keep))
    out.repaired.append(f"{journal}: {len(moved)} damaged line(s) moved to {side}")


def _render_again(store: Store, loaded: Loaded, now: dt.datetime, out: Findings) -> None:
    from mailflow.engine.tick import Tick
    with store.writer() as w:
        tick = Tick(loaded, w, now)
        for key in out.missing_bodies:
            msg = w.state.messages[key]
            if msg["state"] == S.IN_DOUBT:
                out.notes.append(f"{key}: in doubt; `mailflow drafts resolve {key} --resend` "
                                 "renders it again")
                continue
            eng = w.state.engagements[msg["engagement"]]
            w.update_message(msg, "message.body_missing", at=now, state=S.BLOCKED, body=None,
                             digest=None, rendered_for=None, edited=None,
                             error=f"{key}: its body was missing")
            try:
                ok = tick.render(msg, eng)
            except MailflowError as err:
                ok = False
                tick.report.problems.append(str(err))
            if ok:
                out.repaired.append(f"{key}: rendered again; approve it again "
                                    f"(`mailflow drafts approve {key}`)")
        out.problems.extend(tick.report.problems)
