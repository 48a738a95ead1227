"""The variables a stage template sees, built from an engagement's data (pure: no I/O, no clock)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from mailflow.render.templates import first_name

# keys every template may test without tripping StrictUndefined; a key outside these lists
# (a typo) still fails loudly
LINK_KEYS = ("offboarding_doc", "deliverables_folder", "feedback_form", "meeting")
CONSULTANT_KEYS = ("name", "email", "title", "phone")
DELIVERABLE_KEYS = ("name", "link", "status", "date")
ACCESS_KEYS = ("system", "owner", "revoke_date")
INVOICE_KEYS = ("number", "amount", "currency", "due", "status")
SUPPORT_KEYS = ("summary", "price", "details")
# dates that are not milestones of the wrap-up, so the timeline leaves them out
_NOT_MILESTONES = frozenset({"start", "contract_end"})


def template_context(
    engagement: Mapping[str, Any],
    *,
    sender_name: str,
    sender_email: str,
    stage_id: str,
    stage_name: str,
    step: int,
    now_local: dt.datetime,
    sent: Mapping[str, dt.datetime],
    recipient: Mapping[str, Any],
    sends_on: dt.date | None = None,
) -> dict[str, Any]:
    """Everything a stage template may use, with optional sections present but empty.

    `sends_on` is the local date the email goes out (default: today): a template asking for
    an answer "before" a date says so only while that date is still ahead (issue 13).
    """
    dates = dict(engagement.get("dates") or {})
    contract_end = dates.get("contract_end")
    today = now_local.date()
    consultant = _with_keys(engagement.get("consultant"), CONSULTANT_KEYS)
    contacts = engagement.get("contacts") or {}
    to = [_person(c) for c in contacts.get("to") or []]
    cc = [_person(c) for c in contacts.get("cc") or []]
    deliverables = [_with_keys(d, DELIVERABLE_KEYS) for d in engagement.get("deliverables") or []]
    invoices = [_invoice(i, today) for i in engagement.get("invoices") or []]
    access = [_access(a, consultant["name"]) for a in engagement.get("shared_access") or []]
    access.sort(key=lambda a: (_sort_date(a["revoke_date"]), str(a["system"]).casefold()))
    return {
        "engagement": engagement,
        "client": engagement.get("client") or "",
        "consultant": consultant,
        "contacts": {"to": to, "cc": cc},
        "cc": cc,
        "recipient": _person(recipient),
        "dates": dates,
        "contract_end": contract_end,
        "start_date": dates.get("start"),
        "milestones": _milestones(dates),
        "deliverables": deliverables,
        "shared_access": access,
        "invoices": invoices,
        "outstanding_invoices": [i for i in invoices if not i["paid"]],
        "support_offer": bool(engagement.get("support_offer")),
        "support": _with_keys(engagement.get("support"), SUPPORT_KEYS),
        # the engagement's free-form [data] table, for a consultant's own templates
        "data": dict(engagement.get("data") or {}),
        "links": _with_keys(engagement.get("links"), LINK_KEYS),
        "stage": {"id": stage_id, "name": stage_name},
        "step": step,
        "sent": dict(sent),
        # when this stage's first email went out: what a reminder refers back to
        "first_sent": sent.get(stage_id),
        "sender": {"name": sender_name, "email": sender_email},
        "today": today,
        "now": now_local,
        "sends_on": max(sends_on or today, today),
    }


def _with_keys(data: Any, keys: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {key: None for key in keys}
    out.update(data or {})
    return out


def _person(contact: Mapping[str, Any] | None) -> dict[str, Any]:
    person = _with_keys(contact, ("name", "email"))
    person["name"] = (person["name"] or "").strip()
    person["first_name"] = first_name(person)
    return person


def _invoice(invoice: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    out = _with_keys(invoice, INVOICE_KEYS)
    out["paid"] = str(out["status"] or "").strip().casefold() == "paid"
    due = out["due"]
    out["overdue"] = not out["paid"] and isinstance(due, dt.date) and due < today
    return out


def _access(entry: Mapping[str, Any], consultant_name: str | None) -> dict[str, Any]:
    out = _with_keys(entry, ACCESS_KEYS)
    owner = str(out["owner"] or "").strip()
    # "Removed by: me" reads better than the consultant's own name in their own email
    out["by_me"] = bool(consultant_name) and owner.casefold() == consultant_name.casefold()
    return out


def _milestones(dates: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The engagement's dated steps (handover_date -> 'Handover') and its end, in date order."""
    steps = [
        {"label": _label(key), "date": value}
        for key, value in dates.items()
        if key not in _NOT_MILESTONES and isinstance(value, dt.date)
    ]
    if isinstance(dates.get("contract_end"), dt.date):
        steps.append({"label": "Last day of the engagement", "date": dates["contract_end"]})
    steps.sort(key=lambda s: _sort_date(s["date"]))
    return steps


def _label(key: str) -> str:
    words = key.removesuffix("_date").removesuffix("_on").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _sort_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.max
