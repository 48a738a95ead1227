"""The wrap-up checklist: what must be done besides the emails, derived from the engagement (pure).

Items come from the engagement's data (one per shared-access system, outstanding invoice and
deliverable; the offboarding document; the support offer where it applies; the meeting;
feedback) and from its own `[[checklist]]` entries. What was done is kept on the engagement
record as marks (`checklist.<item id>`), each written by one journal event; feedback is done by
itself when a reply to a feedback stage arrives, and an invoice marked paid in the file is done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mailflow.config.engagements import slug


class ItemKind(StrEnum):
    """What kind of wrap-up step an item is (rule files refer to groups by these names)."""

    ACCESS = "access"
    INVOICE = "invoice"
    DELIVERABLE = "deliverable"
    DOCUMENT = "document"
    SUPPORT = "support"
    MEETING = "meeting"
    FEEDBACK = "feedback"
    CUSTOM = "custom"


# the words an item may be closed with, where more than "done" is worth saying
OUTCOMES: dict[ItemKind, tuple[str, ...]] = {
    ItemKind.SUPPORT: ("accepted", "declined"),
    ItemKind.MEETING: ("held", "not-wanted"),
    ItemKind.INVOICE: ("paid",),
    ItemKind.DELIVERABLE: ("accepted",),
    ItemKind.ACCESS: ("removed",),
    ItemKind.DOCUMENT: ("shared",),
    ItemKind.FEEDBACK: ("received",),
}


@dataclass(frozen=True)
class ChecklistItem:
    """One wrap-up step of an engagement, open or done."""

    id: str
    kind: ItemKind
    title: str
    owner: str
    due: dt.date | None
    done: bool = False
    outcome: str = ""
    done_by: str = ""
    done_on: dt.date | None = None
    done_at: str = ""  # when it was recorded (UTC ISO), for rules timed "when ... done"
    note: str = ""
    automatic: bool = False  # done by the data itself (a paid invoice, a feedback reply)

    def overdue(self, today: dt.date) -> bool:
        """Open and past its due date."""
        return not self.done and self.due is not None and self.due < today


def derive(engagement: Mapping[str, Any], *, feedback_replies: Iterable[Mapping[str, Any]] = (),
           document_shared_at: str | None = None) -> list[ChecklistItem]:
    """Every checklist item of a (hydrated) engagement, with its marks applied.

    `feedback_replies` are the human replies to the engagement's feedback stages (the first
    closes the feedback item); `document_shared_at` is when an email carrying or linking the
    offboarding document went out, if one did.
    """
    marks: Mapping[str, Mapping[str, Any]] = engagement.get("checklist_marks") or {}
    lead = (engagement.get("consultant") or {}).get("name") or "the offboarding lead"
    client = engagement.get("client") or "the client"
    end = _date((engagement.get("dates") or {}).get("contract_end"))
    items: list[ChecklistItem] = []

    def add(item_id: str, kind: ItemKind, title: str, owner: str, due: dt.date | None,
            automatic: dict[str, Any] | None = None) -> None:
        mark = marks.get(item_id)
        if mark and mark.get("done"):
            items.append(ChecklistItem(
                item_id, kind, title, owner, due, True, mark.get("outcome") or "",
                mark.get("by") or "", _date(mark.get("on")), mark.get("at") or "",
                mark.get("note") or ""))
        elif automatic is not None and not (mark and mark.get("undone")):
            items.append(ChecklistItem(item_id, kind, title, owner, due, True, automatic=True,
                                       **automatic))
        else:
            items.append(ChecklistItem(item_id, kind, title, owner, due))

    for n, access in enumerate(engagement.get("shared_access") or [], start=1):
        add(f"access-{n}", ItemKind.ACCESS, f"Access removed: {access.get('system')}",
            access.get("owner") or lead, _date(access.get("revoke_date")) or end)
    for invoice in engagement.get("invoices") or []:
        paid = str(invoice.get("status") or "").strip().casefold() == "paid"
        add(f"invoice-{slug(str(invoice.get('number')))}", ItemKind.INVOICE,
            f"Invoice {invoice.get('number')} paid", lead, _date(invoice.get("due")) or end,
            automatic={"outcome": "paid", "note": "paid, says the engagement file"}
            if paid else None)
    for n, deliverable in enumerate(engagement.get("deliverables") or [], start=1):
        accepted = str(deliverable.get("status") or "").strip().casefold() == "accepted"
        add(f"deliverable-{n}", ItemKind.DELIVERABLE,
            f"Deliverable accepted: {deliverable.get('name')}", client, end,
            automatic={"outcome": "accepted", "note": "accepted, says the engagement file"}
            if accepted else None)
    add("document", ItemKind.DOCUMENT, "Offboarding document shared with the client", lead,
        end, automatic={"outcome": "shared", "done_at": document_shared_at,
                        "note": "went out with the sequence"} if document_shared_at else None)
    if engagement.get("support_offer"):
        add("support", ItemKind.SUPPORT, "Support offer answered (accepted or declined)",
            client, end)
    add("meeting", ItemKind.MEETING, "Offboarding meeting held (or not wanted)", lead, end)
    first = min(feedback_replies, key=lambda r: r.get("received_at") or "", default=None)
    add("feedback", ItemKind.FEEDBACK, "Feedback received", client, _feedback_due(end),
        automatic={"outcome": "received", "done_at": first.get("received_at") or "",
                   "note": f"reply {first.get('id')}"} if first else None)
    for entry in engagement.get("checklist") or []:
        add(entry["id"], ItemKind.CUSTOM, entry["name"], entry.get("owner") or lead,
            _date(entry.get("due")))
    return items


def invoices_as_marked(engagement: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The engagement's invoices, those marked paid on the checklist with status "paid".

    The emails read an invoice's status; a payment recorded with `mailflow done` must stop
    them from asking for it.
    """
    marks: Mapping[str, Mapping[str, Any]] = engagement.get("checklist_marks") or {}
    out = []
    for invoice in engagement.get("invoices") or []:
        mark = marks.get(f"invoice-{slug(str(invoice.get('number')))}") or {}
        out.append(dict(invoice, status="paid") if mark.get("done") else dict(invoice))
    return out


def _feedback_due(end: dt.date | None) -> dt.date | None:
    # feedback is asked for after the contract ends; two weeks is long enough to answer
    return end + dt.timedelta(days=14) if end else None


def find(items: list[ChecklistItem], ref: str) -> ChecklistItem | None:
    """The item named by its id, or by a unique prefix of it."""
    ref = ref.strip().casefold()
    exact = [i for i in items if i.id == ref]
    if exact:
        return exact[0]
    starts = [i for i in items if i.id.startswith(ref)]
    return starts[0] if len(starts) == 1 else None


def open_items(items: Iterable[ChecklistItem]) -> list[ChecklistItem]:
    """The items still to do."""
    return [i for i in items if not i.done]


def ordered(items: Iterable[ChecklistItem]) -> list[ChecklistItem]:
    """Open items first (earliest due first), then done ones."""
    return sorted(items, key=lambda i: (i.done, i.due or dt.date.max, i.id))


def group_done(items: Iterable[ChecklistItem], group: str) -> tuple[bool, str]:
    """Whether every item of a group (a kind such as "access", or one item id) is done.

    Returns (done, when): `when` is the latest recording time (UTC ISO) among the group's
    items, for a stage timed "when access done". An empty group is done (nothing to wait for).
    """
    group = group.casefold()
    kind = group.removesuffix("s") if group.removesuffix("s") in set(ItemKind) else group
    members = [i for i in items if i.kind == kind or i.id == group]
    if any(not i.done for i in members):
        return False, ""
    return True, max((i.done_at for i in members if i.done_at), default="")


def condition_flags(items: Iterable[ChecklistItem]) -> dict[str, Any]:
    """What rule conditions (`when = "invoices_open"`) may test about the checklist."""
    items = list(items)
    flags: dict[str, Any] = {"checklist_done": {i.id: i.done for i in items}}
    for kind in ItemKind:
        members = [i for i in items if i.kind == kind]
        plural = "access" if kind is ItemKind.ACCESS else f"{kind.value}s"
        flags[f"{plural}_open"] = sum(1 for i in members if not i.done)
        flags[f"{plural}_done"] = all(i.done for i in members)
    return flags


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def planning_facts(engagement: Mapping[str, Any]) -> dict[str, Any]:
    """What the planner adds to a hydrated engagement: condition flags and group done times.

    `checklist_done_at` maps each group (kind, plural kind, item id) that is done to when its
    last item was recorded; a rule timed "when access done" waits until its group is there.
    """
    items = derive(engagement)
    facts = condition_flags(items)
    groups = {i.kind.value for i in items} | {i.id for i in items}
    groups |= {f"{g}s" for g in {i.kind.value for i in items} if g != "access"}
    done_at = {}
    for group in groups:
        done, when = group_done(items, group)
        if done and when:
            done_at[group] = when
    facts["checklist_done_at"] = done_at
    return facts
