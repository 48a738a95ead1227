"""The status grid and "needs you now": the day's first look, as library functions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from mailflow.config.loading import Loaded
from mailflow.desk import tables, views
from mailflow.desk.wrapup import checklist_cell, wrapup, wrapup_lines
from mailflow.store import State

# what needs the consultant, and in which words
ATTENTION_STATES = ("in_doubt", "failed", "blocked")


@dataclass
class GridRow:
    """One engagement: its cells by stage, its JSON form, and its error when it is broken."""

    id: str
    status: str
    cells: dict[str, str]
    data: dict
    next_at: dt.datetime | None = None
    error: str | None = None
    checklist: str = ""  # compact: '3 open, 1 late', or 'clear'


@dataclass
class Grid:
    """Every engagement's row, the stage columns in sequence order."""

    stages: list[str] = field(default_factory=list)
    rows: list[GridRow] = field(default_factory=list)
    plans: dict = field(default_factory=dict)  # engagement id -> its PlanItems
    wraps: dict = field(default_factory=dict)  # engagement id -> its Wrapup (made once)


def status_grid(state: State, loaded: Loaded, now: dt.datetime, archived: bool = False,
                with_data: bool = True) -> Grid:
    """One row per engagement (archived ones only with `archived`), soonest next email first;
    each row's JSON form only `with_data` (the table does not print it)."""
    chosen = [e for e in state.engagements.values()
              if bool(e.get("archived") or e.get("moved_out")) == archived]
    plan = views.preview(state, loaded, now, [e["id"] for e in chosen])
    replies_by_msg: dict[str, list[dict]] = {}
    for r in state.replies.values():
        replies_by_msg.setdefault(r.get("message") or "", []).append(r)
    grid = Grid(plans=plan.items)
    for eng in chosen:
        try:
            row = _row(eng, state, loaded, plan, replies_by_msg, grid.stages, now, grid.wraps,
                       with_data)
        except Exception as err:  # noqa: BLE001 - a broken engagement is a row with its error
            row = GridRow(eng["id"], eng.get("status", "?"), {}, {
                **{"id": eng["id"], "status": eng.get("status")}, "error": str(err)},
                error=str(err) or type(err).__name__)
        grid.rows.append(row)
    grid.rows.sort(key=lambda r: (r.next_at is None, r.next_at or now,
                                  tables.natural_key(r.id)))
    return grid


def _row(eng: dict, state: State, loaded: Loaded, plan: views.Preview,
         replies_by_msg: dict[str, list[dict]], stage_names: list[str], plan_now: dt.datetime,
         wraps: dict, with_data: bool = True) -> GridRow:
    seq = loaded.sequence_for(eng)
    for s in seq.stages:
        if s.id not in stage_names:
            stage_names.append(s.id)
    items = {i.stage: i for i in plan.items.get(eng["id"], []) if i.step == 0}
    when = plan.when_for(eng)
    msgs = state.messages_of(eng["id"])
    zone = eng["time_zone"]
    cells, stages = {}, {}
    upcoming = []
    by_stage: dict[str, list[dict]] = {}
    for m in msgs:
        by_stage.setdefault(m["stage"], []).append(m)
    for s in seq.stages:
        stage_msgs = by_stage.get(s.id, [])
        replies = [r for m in stage_msgs for r in replies_by_msg.get(m["key"], [])]
        item = items.get(s.id)
        first = next((m for m in stage_msgs if m["step"] == 0), None)
        sent_at = first.get("sent_at") if first else None
        # the one answer every view gives; a sent stage shows when it went, never this (one
        # retrying for some recipients goes again: it has a next time)
        went = bool(sent_at) and first["state"] != "retry"
        at = None if went else when(first, item)
        cells[s.id] = views.stage_mark(stage_msgs, item, replies, zone, when=at)
        if at is not None and not went and (
                first is None or first["state"] not in ("rejected", "cancelled", "failed")):
            upcoming.append(at)
        if not with_data:
            continue
        stages[s.id] = {"state": first["state"] if first else (item.status if item else None),
                        "sent_at": sent_at,
                        "due": first.get("due") if first else (
                            item.due.isoformat() if item and item.due else None),
                        "goes_out": at.isoformat() if at else None,
                        "replies": [r["kind"] for r in replies]}
    error = plan.errors.get(eng["id"])
    # the grid's plan is the one `wrapup` would make: planning twice tripled `status`'s time
    wrap = wrapup(state, loaded, eng, plan_now, plan.items.get(eng["id"], []), msgs)
    if eng["id"] in plan.items:  # (else "needs you now" plans it: a paused one, say)
        wraps[eng["id"]] = wrap
    data = {**views.engagement_row(eng), "stages": stages, "error": error,
            "checklist": {"open": len(wrap.items), "overdue": len(wrap.overdue),
                          "open_items": [i.id for i in wrap.items]},
            "ready_to_complete": wrap.clear and eng["status"] in ("active", "paused")
            } if with_data else {}
    return GridRow(eng["id"], eng["status"], cells, data, min(upcoming, default=None), error,
                   checklist=checklist_cell(wrap))


def needs_you_now(state: State, loaded: Loaded | None = None, now: dt.datetime | None = None,
                  plans: dict | None = None, wraps: dict | None = None) -> list[str]:
    """One line per thing waiting for the consultant: drafts, failures, replies, flags, and
    (given `loaded` and `now`) overdue checklist items and engagements ready to complete;
    `plans` and `wraps` are the engagements' plans and wrap-ups when already made (Grid's:
    making them twice was a third of `status`)."""
    lines = []
    waiting = 0
    archived = {k for k, e in state.engagements.items() if e.get("archived")}
    attention = []
    for m in state.live_messages():  # (none at rest waits for anyone)
        if m["engagement"] in archived:
            continue
        waiting += m["state"] == "awaiting_approval"
        if m["state"] in ATTENTION_STATES:
            attention.append(m)
    for m in sorted(attention, key=lambda m: tables.natural_key(m["key"])):
        why = m.get("note") or m.get("server_reply") or m.get("error") or ""
        lines.append(f"{m['key']}: {m['state'].replace('_', ' ')}: {why}"[:160])
    if waiting:
        lines.insert(0, f"{waiting} draft(s) to approve: mailflow drafts")
    for r in state.replies.values():
        if r.get("needs_action") and not r.get("handled"):
            lines.append(f"reply {r['id']} from {r.get('from')} ({r.get('stage')}): "
                         f"mailflow replies show {r['id']}")
    for e in state.engagements.values():
        if e.get("flagged") and not e.get("archived"):
            lines.append(f"engagement {e['id']}: {e['flagged']}")
    if loaded is not None and now is not None:
        lines += wrapup_lines(state, loaded, now, plans, wraps)
    return lines
