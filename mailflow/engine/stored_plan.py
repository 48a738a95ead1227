"""The plan a tick keeps on the engagement, so views need not plan again (issue 18).

A tick plans an engagement only when its signature (rules, config, the engagement's revision)
changed, and keeps the items it planned with the signature. A view uses those items while the
signature still matches, the very test the tick uses to skip planning, and plans only the
engagements changed since (a hand-edited file, new rules): one function still computes every
date a view shows (Preview.when), from the same items.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools

import orjson

from mailflow.engine.checklist import ChecklistItem, ItemKind
from mailflow.engine.plan_stamp import signature
from mailflow.engine.planner import PlanItem, message_key
from mailflow.engine.records import PlanStatus

__all__ = ["kept", "kept_checklist", "pack", "pack_checklist", "pack_kept", "signature",
           "unpack", "unpack_checklist"]


def pack(items: list[PlanItem]) -> list[list]:
    """Plan items as compact JSON lists (key and engagement follow from the record)."""
    return [[i.stage, i.step, i.template, i.approval, i.status.value,
             i.due.isoformat() if i.due else None, list(i.reasons), i.thread_root, i.after,
             i.hold] for i in items]


def unpack(eid: str, packed: list[list]) -> list[PlanItem]:
    """The plan items `pack` kept for engagement `eid`."""
    out = []
    for stage, step, template, approval, status, due, reasons, root, after, hold in packed:
        # a frozen dataclass's __init__ sets each field through object.__setattr__: filling
        # its __dict__ makes the same (equal, hashable) item in a third of the time, which
        # counts at a view's 6,000 items (issue 18)
        item = _new(PlanItem)
        item.__dict__.update(
            key=message_key(eid, stage, step), engagement=eid, stage=stage, step=step,
            template=template, approval=approval, status=_STATUSES[status],
            due=_instant(due) if due else None, reasons=tuple(reasons),
            thread_root=root, after=after, hold=hold)
        out.append(item)
    return out


_new = object.__new__
# the planner puts most dues on a few window openings and checklist dates: each parsed once
# (datetime and date are immutable, so items may share them)
_instant = functools.lru_cache(maxsize=4096)(dt.datetime.fromisoformat)
_day = functools.lru_cache(maxsize=4096)(dt.date.fromisoformat)
_STATUSES = {s.value: s for s in PlanStatus}  # (an Enum's call is slow: its lookup machinery)


def kept(loaded, eng: dict) -> list[PlanItem] | None:  # noqa: ANN001 - a config.loading.Loaded
    """The items the last tick planned, while nothing they depend on changed; else None."""
    packed = _kept_lists(loaded, eng)
    return None if packed is None else unpack(eng["id"], packed[0])


# -- how they are kept on the engagement -----------------------------------------------------
# One field, `kept`: the packed plan and open checklist as one JSON text, a hot field of the
# checkpoint (store/lazy.py). As lists in cold fields (`plan`, `plan_checklist`, which stores
# of before keep until their next plan), reading them parsed the engagement's whole record:
# 35 us each, a tenth of `status` at 1,000 engagements (issue 18). As text it costs the idle
# tick's load one string per engagement, the bytes the cold part held before.

def pack_kept(items: list[PlanItem], open_items: list[ChecklistItem]) -> str:
    """The `kept` field: a plan's items and its open checklist items, as one JSON text."""
    return orjson.dumps([pack(items), pack_checklist(open_items)]).decode()


_last_parsed: list = [None, None]  # the last `kept` text parsed, and what it holds


def _kept_lists(loaded, eng: dict) -> tuple[list, list | None] | None:  # noqa: ANN001 - Loaded
    """(packed plan, packed open checklist or None) while the signature holds; else None."""
    if eng.get("planned") != signature(loaded, eng):
        return None
    text = eng.get("kept")
    if text is not None:
        if _last_parsed[0] is not text:  # (a view asks for the plan, then for the checklist)
            _last_parsed[:] = [text, tuple(orjson.loads(text))]
        return _last_parsed[1]
    plan = eng.get("plan")  # kept by an earlier version
    return None if plan is None else (plan, eng.get("plan_checklist"))


# -- the open checklist items, kept beside the plan ------------------------------------------
# They depend on what the plan does (the rules, the config, and the engagement's events: its
# data, checklist marks, replies and messages each bump its rev), never on `now` (only which
# are overdue does, which views work out): `status` counted them for each engagement at every
# call, a sixth of its time at 1,000 engagements (issue 18).

def pack_checklist(items: list[ChecklistItem]) -> list[list]:
    """The open items (done ones are not kept) as compact JSON lists."""
    return [[i.id, i.kind.value, i.title, i.owner, i.due.isoformat() if i.due else None]
            for i in items if not i.done]


def unpack_checklist(packed: list[list]) -> list[ChecklistItem]:
    """The open items `pack_checklist` kept (equal to those the checklist derives)."""
    out = []
    for item_id, kind, title, owner, due in packed:
        item = _new(ChecklistItem)  # as `unpack`: a frozen dataclass's __init__ is slow
        item.__dict__.update(_OPEN, id=item_id, kind=_KINDS[kind], title=title, owner=owner,
                             due=_day(due) if due else None)
        out.append(item)
    return out


# an open item's other fields: its class's defaults (derive makes open items with them alone)
_OPEN = {f.name: f.default for f in dataclasses.fields(ChecklistItem)
         if f.default is not dataclasses.MISSING}


_KINDS = {k.value: k for k in ItemKind}


def kept_checklist(loaded, eng: dict) -> list[ChecklistItem] | None:  # noqa: ANN001 - Loaded
    """The open checklist items the last tick kept with its plan, while they hold; else None."""
    packed = _kept_lists(loaded, eng)
    return None if packed is None or packed[1] is None else unpack_checklist(packed[1])
