"""Whether an engagement is wrapped up: its sequence done and its checklist clear.

`status` and "needs you now" offer completion when both hold; `engagement complete` is
refused while either does not, and says what is still open.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from mailflow.config.loading import Loaded
from mailflow.engine import checklist, stored_plan
from mailflow.engine.checklist import ChecklistItem
from mailflow.engine.checklist_of import items_of
from mailflow.engine.planner import FINAL, PlanItem
from mailflow.engine.records import PlanStatus
from mailflow.errors import MailflowError, StateError
from mailflow.store import State


@dataclass(frozen=True)
class Wrapup:
    """What keeps an engagement from being complete."""

    engagement: str
    emails: tuple[str, ...]  # message keys not yet sent, cancelled or otherwise final
    items: tuple[ChecklistItem, ...]  # open checklist items, overdue first
    today: dt.date  # in the engagement's zone

    @property
    def clear(self) -> bool:
        """Sequence done and checklist clear: ready for `engagement complete`."""
        return not self.emails and not self.items

    @functools.cached_property  # (the grid's cell, its JSON and "needs you now" each ask)
    def overdue(self) -> tuple[ChecklistItem, ...]:
        """The open items past their due date."""
        return tuple(i for i in self.items if i.overdue(self.today))

    def summary(self) -> str:
        """What is still open, in one line."""
        parts = []
        if self.emails:
            parts.append(f"{len(self.emails)} email(s) not done ({', '.join(self.emails[:3])}"
                         f"{', ...' if len(self.emails) > 3 else ''})")
        if self.items:
            parts.append(f"{len(self.items)} checklist item(s) open "
                         f"({', '.join(i.id for i in self.items)})")
        return "; ".join(parts) or "nothing open"


def wrapup(state: State, loaded: Loaded, engagement: dict, now: dt.datetime,
           plan: list[PlanItem] | None = None, msgs: list[dict] | None = None) -> Wrapup:
    """What is still open on one engagement, as of `now` (`plan`: its plan, `msgs`: its
    messages, when known)."""
    today = now.astimezone(loaded.context_for(engagement).zone).date()
    if plan is None:
        from mailflow.engine.documents import plan_of  # (the renderer: only when it must plan)
        _, _, plan = plan_of(state, loaded, engagement)
    messages = {m["key"]: m for m in (state.messages_of(engagement["id"]) if msgs is None
                                      else msgs)}
    # an email is open while planned to go out (or waiting, e.g. for the checklist) and not
    # final; one skipped or stopped by a reply is done with
    keys = {i.key for i in plan if i.status in (PlanStatus.SCHEDULED, PlanStatus.WAITING,
                                                 PlanStatus.ERROR)}
    keys |= {k for k, m in messages.items() if m["state"] not in FINAL}
    emails = tuple(sorted((k for k in keys if (messages.get(k) or {}).get("state") not in FINAL),
                          key=lambda k: (k.split("/")[1:], k)))
    # the open items the last tick kept with the plan while they hold (they need no `now`)
    items = stored_plan.kept_checklist(loaded, engagement)
    if items is None:
        items = checklist.open_items(items_of(state, loaded, engagement))
    items = sorted(items, key=lambda i: (not i.overdue(today), i.due or dt.date.max, i.id))
    return Wrapup(engagement["id"], emails, tuple(items), today)


def completion_refusal(state: State, loaded: Loaded, engagement: dict, now: dt.datetime
                       ) -> None:
    """Raise a StateError naming what is open, unless the engagement is wrapped up."""
    w = wrapup(state, loaded, engagement, now)
    if not w.clear:
        raise StateError(f"engagement {engagement['id']} is not wrapped up: {w.summary()}; "
                         f"finish them (mailflow checklist {engagement['id']}), or "
                         f"`mailflow engagement complete {engagement['id']} --force`")


def wrapup_lines(state: State, loaded: Loaded, now: dt.datetime,
                 plans: dict[str, list[PlanItem]] | None = None,
                 wraps: dict[str, Wrapup] | None = None) -> list[str]:
    """For "needs you now": overdue checklist items, and engagements ready to complete
    (`wraps`: engagements' wrap-ups already made at this `now`, e.g. by the status grid)."""
    lines = []
    for eng in sorted(state.engagements.values(), key=lambda e: e["id"]):
        if eng.get("archived") or eng.get("status") not in ("active", "paused"):
            continue
        try:
            w = (wraps or {}).get(eng["id"]) or wrapup(state, loaded, eng, now,
                                                       (plans or {}).get(eng["id"]))
        except MailflowError:
            continue  # a broken engagement shows as its row's error in the status grid
        for item in w.overdue:
            lines.append(f"{eng['id']}: checklist item {item.id} ({item.title}) overdue since "
                         f"{item.due.isoformat()}: mailflow done {eng['id']} {item.id}")
        if w.clear:
            lines.append(f"{eng['id']}: sequence done and checklist clear: "
                         f"mailflow engagement complete {eng['id']}")
    return lines


def checklist_cell(w: Wrapup) -> str:
    """The status grid's compact checklist column: '3 open', '3 open, 1 late', 'clear'."""
    if not w.items:
        return "clear"
    late = len(w.overdue)
    return f"{len(w.items)} open" + (f", {late} late" if late else "")
