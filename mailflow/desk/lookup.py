"""Finding records by the ids people type, and checking an engagement against its rules."""

from __future__ import annotations

from pathlib import Path

from mailflow.config.loading import Loaded
from mailflow.config.rules import Sequence
from mailflow.errors import ConfigError, NotFoundError, StateError
from mailflow.store import State
from mailflow.store.archive import merge_into


def find_engagement(state: State, eid: str, *, archived_ok: bool = False) -> dict:
    """The engagement with this id, or a NotFoundError listing what exists.

    One moved out of the hot state into its archive is read back into `state` for a command
    that only reads (`archived_ok`); any other command gets one line saying it is archived.
    """
    try:
        return state.engagements[eid]
    except KeyError:
        pass
    if state.shelf is not None and state.shelf.has(eid):  # only for an id not in the state
        if archived_ok:
            return merge_into(state, state.shelf.read(eid))
        raise archived_error(state, eid)
    known = ", ".join(sorted(state.engagements)[:10]) or "none yet"
    raise NotFoundError(f"no engagement {eid!r} (known: {known})")


def archived_error(state: State, eid: str) -> StateError:
    """The one line for a change asked of an engagement moved out into its archive."""
    return StateError(f"engagement {eid} is archived ({state.shelf.path(eid)}); nothing more "
                      f"happens to it: `mailflow engagement show {eid}` and `mailflow log "
                      f"--engagement {eid}` read it")


def find_message(state: State, ref: str) -> dict:
    """A message by key; `eng/stage` means step 0, and a unique key prefix is enough."""
    if ref in state.messages:
        return state.messages[ref]
    if ref.count("/") == 1 and f"{ref}/0" in state.messages:
        return state.messages[f"{ref}/0"]
    hits = [k for k in state.messages if k.startswith(ref)]
    if len(hits) == 1:
        return state.messages[hits[0]]
    if len(hits) > 1:
        raise NotFoundError(f"{ref!r} matches {len(hits)} messages: {', '.join(sorted(hits)[:5])}")
    eid = ref.split("/", 1)[0]
    if eid not in state.engagements and state.shelf is not None and state.shelf.has(eid):
        raise archived_error(state, eid)
    raise NotFoundError(f"no draft or message {ref!r} (see `mailflow drafts` or `mailflow status`)")


def find_reply(state: State, rid: str) -> dict:
    """A reply by id; one of an engagement moved out is read back from its archive (reading
    every archive: only for an id the working state does not have, and only when asked)."""
    if rid in state.replies:
        return state.replies[rid]
    floor = state.meta.get("reply_floor", 0)
    # ids are numbers given in order, and the archived ones are all at or below the floor
    if state.shelf is not None and rid.isdigit() and int(rid) <= floor:
        for eid in state.shelf.ids():
            data = state.shelf.read(eid) or {}
            if any(r.get("id") == rid for r in data.get("replies") or ()):
                merge_into(state, data)
                return state.replies[rid]
    raise NotFoundError(f"no reply {rid!r} (see `mailflow replies`)")


def missing_dates(seq: Sequence, record: dict) -> list[str]:
    """'dates.X: required by stage ...' for each date a stage anchors on that the record lacks."""
    stage_ids = {s.id for s in seq.stages}
    missing = []
    for stage in seq.stages:
        anchor = stage.due.anchor or "previous"
        if (anchor in ("previous", "reply") or anchor.startswith(("reply:", "done:"))
                or anchor in stage_ids):
            continue
        if anchor not in record["dates"]:
            missing.append(f"dates.{anchor}: required by stage {stage.id!r} of "
                           f"{seq.path.name} ({stage.due.describe()})")
    return missing


def check_against_rules(loaded: Loaded, record: dict, path: Path) -> None:
    """A ConfigError when the engagement lacks a date one of its stages is timed from."""
    missing = missing_dates(loaded.sequence_for(record), record)
    if missing:
        raise ConfigError(f"{path}: {missing[0]}")
