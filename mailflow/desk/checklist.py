"""The wrap-up checklist as the consultant uses it: list items, mark them done or undo them.

Each change is one journal event on the engagement (`checklist.done` / `checklist.undone`),
recording who, when, on what date and with which note, so a crash never half-marks an item.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mailflow import timing
from mailflow.config.loading import Loaded
from mailflow.engine import checklist
from mailflow.engine.checklist import ChecklistItem
from mailflow.engine.checklist_of import items_of
from mailflow.engine.records import MessageState
from mailflow.errors import ConfigError, MailflowError, NotFoundError, StateError
from mailflow.store import State, Writer, now_iso

SENT = MessageState.SENT


def find_item(items: list[ChecklistItem], engagement_id: str, ref: str) -> ChecklistItem:
    """The item named `ref` (an id or a unique prefix), or a NotFoundError listing the ids."""
    item = checklist.find(items, ref)
    if item is None:
        known = ", ".join(i.id for i in items) or "none"
        raise NotFoundError(f"{engagement_id} has no checklist item {ref!r} (known: {known})")
    return item


def mark_done(w: Writer, loaded: Loaded, engagement: dict, ref: str, who: str,
              now: dt.datetime, *, note: str = "", on: dt.date | None = None,
              outcome: str = "") -> ChecklistItem:
    """Mark one item done (e.g. access removed, invoice paid), journaled with who and when."""
    items = items_of(w.state, loaded, engagement)
    item = find_item(items, engagement["id"], ref)
    if item.done:
        how = f"by {item.done_by}" if item.done_by else f"automatically ({item.note})"
        when = f" on {item.done_on.isoformat()}" if item.done_on else ""
        raise StateError(f"{engagement['id']}/{item.id} is already done{when} {how}; "
                         f"`mailflow undo {engagement['id']} {item.id}` reopens it")
    allowed = checklist.OUTCOMES.get(item.kind, ())
    if outcome and outcome not in allowed:
        raise ConfigError(f"--outcome {outcome!r} does not fit {item.id}: expected one of "
                          f"{', '.join(allowed) or 'none (just done)'}")
    today = now.astimezone(timing.load_zone(engagement["time_zone"])).date()
    mark = {"done": True, "by": who, "at": now_iso(now), "on": (on or today).isoformat(),
            "note": note, "outcome": outcome or (allowed[0] if len(allowed) == 1 else "")}
    _record(w, engagement, item, mark, "checklist.done", now)
    return find_item(items_of(w.state, loaded, engagement), engagement["id"], item.id)


def undo(w: Writer, loaded: Loaded, engagement: dict, ref: str, who: str,
         now: dt.datetime) -> ChecklistItem:
    """Reopen an item marked done (by mistake, or done automatically but not really)."""
    item = find_item(items_of(w.state, loaded, engagement), engagement["id"], ref)
    if not item.done:
        raise StateError(f"{engagement['id']}/{item.id} is not done; nothing to undo")
    mark = {"done": False, "undone": True, "by": who, "at": now_iso(now)}
    _record(w, engagement, item, mark, "checklist.undone", now)
    return find_item(items_of(w.state, loaded, engagement), engagement["id"], item.id)


def _record(w: Writer, engagement: dict, item: ChecklistItem, mark: dict[str, Any],
            kind: str, now: dt.datetime) -> None:
    marks = {**(engagement.get("checklist_marks") or {}), item.id: mark}
    w.record(kind, at=now, engagement=engagement["id"], item=item.id, by=mark["by"],
             engagements={"key": engagement["id"], "set": {"checklist_marks": marks}})


def open_summary(items: list[ChecklistItem], today: dt.date) -> dict[str, int]:
    """How many items are open and how many of those are overdue."""
    still = checklist.open_items(items)
    return {"open": len(still), "overdue": sum(1 for i in still if i.overdue(today))}


def item_row(item: ChecklistItem, today: dt.date) -> dict[str, Any]:
    """An item as JSON for scripts."""
    return {"id": item.id, "kind": item.kind.value, "title": item.title, "owner": item.owner,
            "due": item.due.isoformat() if item.due else None, "done": item.done,
            "overdue": item.overdue(today), "outcome": item.outcome or None,
            "done_by": item.done_by or None,
            "done_on": item.done_on.isoformat() if item.done_on else None,
            "note": item.note or None, "automatic": item.automatic}


def done_suggestions(state: State, loaded: Loaded, reply: dict) -> list[str]:
    """The `mailflow done` commands a reply's intent suggests (never run for you)."""
    eng = state.engagements.get(reply.get("engagement") or "")
    if not reply.get("intent") or eng is None or eng.get("archived"):
        return []
    try:
        items = items_of(state, loaded, eng)
    except MailflowError:
        return []  # an engagement that cannot be read suggests nothing; `status` says why
    return [f"mailflow done {eng['id']} {i.id}"
            for i in checklist.suggested_done(reply["intent"], items, reply.get("text") or "")]
