"""Finding records by the ids people type, and checking an engagement against its rules."""

from __future__ import annotations

from pathlib import Path

from mailflow.config.loading import Loaded
from mailflow.config.rules import Sequence
from mailflow.errors import ConfigError, NotFoundError
from mailflow.store import State


def find_engagement(state: State, eid: str) -> dict:
    """The engagement with this id, or a NotFoundError listing what exists."""
    try:
        return state.engagements[eid]
    except KeyError:
        known = ", ".join(sorted(state.engagements)[:10]) or "none yet"
        raise NotFoundError(f"no engagement {eid!r} (known: {known})") from None


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
    raise NotFoundError(f"no draft or message {ref!r} (see `mailflow drafts` or `mailflow status`)")


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
