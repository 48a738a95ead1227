"""The variables a stage template sees, built from an engagement's data (pure: no I/O, no clock)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from mailflow.render.locale import DEFAULT_LOCALE, language_of
from mailflow.render.templates import first_name

# keys every template may test without tripping StrictUndefined; a key outside these lists
# (a typo) still fails loudly
LINK_KEYS = ("offboarding_doc", "deliverables_folder", "feedback_form", "meeting", "payment")
CONSULTANT_KEYS = ("name", "email", "title", "phone")
DELIVERABLE_KEYS = ("name", "link", "status", "date")
ACCESS_KEYS = ("system", "owner", "revoke_date")
INVOICE_KEYS = ("number", "amount", "currency", "due", "status", "link")
SUPPORT_KEYS = ("summary", "price", "details")
# statuses that mean a deliverable is in the client's hands
DONE_STATUSES = frozenset({"delivered", "done", "accepted", "complete", "completed"})
# dates that are not milestones of the wrap-up, so the timeline leaves them out
_NOT_MILESTONES = frozenset({"start", "contract_end"})


# Long on purpose: it is the one list of every variable a template may use, each with its
# default, so a consultant reading it sees the whole template vocabulary in one place.
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
    locale: str | None = None,
    to: list[Mapping[str, Any]] | None = None,
    cc: list[Mapping[str, Any]] | None = None,
    sends_on: dt.date | None = None,
) -> dict[str, Any]:
    """Everything a stage template may use, with optional sections present but empty.

    `locale` is the engagement's (else the project's) and picks the playbook's language; `to`
    and `cc` are the people this email goes to (the engagement's contacts unless given, e.g.
    without those who bounced). `sends_on` is the local date the email goes out (default:
    today): what is past, overdue or still ahead is judged on that day, since a draft is made
    days before it is sent, and a template asking for an answer "before" a date says so only
    while that date is still ahead (issue 13).
    """
    dates = dict(engagement.get("dates") or {})
    contract_end = dates.get("contract_end")
    today = now_local.date()
    # the day the client reads it: a draft made days ahead must not call a due date "ahead"
    # that will have passed when it arrives
    on = max(sends_on or today, today)
    locale = locale or engagement.get("locale") or DEFAULT_LOCALE
    consultant = _with_keys(engagement.get("consultant"), CONSULTANT_KEYS)
    contacts = engagement.get("contacts") or {}
    to_people = [_person(c) for c in (contacts.get("to") or [] if to is None else to)]
    cc_people = [_person(c) for c in (contacts.get("cc") or [] if cc is None else cc)]
    deliverables = [_deliverable(d, on) for d in engagement.get("deliverables") or []]
    invoices = [_invoice(i, on) for i in engagement.get("invoices") or []]
    outstanding = [i for i in invoices if not i["paid"]]
    access = [_access(a, consultant["name"], to_people, cc_people, on)
              for a in engagement.get("shared_access") or []]
    access.sort(key=lambda a: (_sort_date(a["revoke_date"]), str(a["system"]).casefold()))
    return {
        "engagement": engagement,
        "locale": locale,
        "language": language_of(locale),
        "client": engagement.get("client") or "",
        "consultant": consultant,
        "contacts": {"to": to_people, "cc": cc_people},
        "cc": cc_people,
        "recipient": _person(recipient),
        "dates": dates,
        "contract_end": contract_end,
        "start_date": dates.get("start"),
        "milestones": _milestones(dates),
        "plan": _plan(dates, deliverables, access, outstanding, on),
        "deliverables": deliverables,
        "all_delivered": all(d["done"] for d in deliverables),
        "shared_access": access,
        # who on the client's side removes access, with what: each is asked by name
        "access_owners": _owners(access),
        "invoices": invoices,
        "outstanding_invoices": outstanding,
        "overdue_invoices": [i for i in outstanding if i["overdue"]],
        "personal_note": str(engagement.get("personal_note") or "").strip(),
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
        "sends_on": on,
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


def _deliverable(item: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    out = _with_keys(item, DELIVERABLE_KEYS)
    out["status"] = str(out["status"] or "").strip()
    # a status key ("pending_review") the templates can translate; free text stays as written
    out["status_key"] = out["status"].casefold().replace(" ", "_").replace("-", "_")
    out["done"] = out["status_key"] in DONE_STATUSES
    date = out["date"]
    out["past"] = isinstance(date, dt.date) and _sort_date(date) < today
    return out


def _invoice(invoice: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    out = _with_keys(invoice, INVOICE_KEYS)
    out["paid"] = str(out["status"] or "").strip().casefold() == "paid"
    due = out["due"]
    out["overdue"] = not out["paid"] and isinstance(due, dt.date) and due < today
    out["days_overdue"] = (today - due).days if out["overdue"] else 0
    return out


def _access(entry: Mapping[str, Any], consultant_name: str | None, to: list[dict[str, Any]],
            cc: list[dict[str, Any]], today: dt.date) -> dict[str, Any]:
    out = _with_keys(entry, ACCESS_KEYS)
    owner = str(out["owner"] or "").strip()
    # "Removed by: me" reads better than the consultant's own name in their own email
    out["by_me"] = bool(consultant_name) and owner.casefold() == consultant_name.casefold()
    # the owner among the people this email goes to: asked by name, and "you" when alone
    out["contact"] = None if out["by_me"] else _contact_named(owner, to + cc)
    out["by_you"] = out["contact"] is not None and len(to) == 1 and out["contact"] is to[0]
    date = out["revoke_date"]
    out["past"] = isinstance(date, dt.date) and _sort_date(date) < today
    return out


def _contact_named(owner: str, people: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The contact an owner text names ('Tom Becker (Northwind IT)' is Tom Becker)."""
    text = owner.casefold()
    for person in people:
        name = person["name"].casefold()
        if (name and (text == name or text.startswith(name + " ") or text.startswith(name + "(")
                      or text.startswith(name + ","))) or (person["email"] or "-") in text:
            return person
    return None


def _owners(access: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The client's people who remove access, each with their systems, in date order."""
    owners: dict[str, dict[str, Any]] = {}
    for a in access:
        if a["contact"] is None or a["past"]:
            continue
        key = a["contact"]["email"] or a["contact"]["name"]
        entry = owners.setdefault(key, {"person": a["contact"], "systems": [], "date": None})
        entry["systems"].append(a)
        entry["date"] = entry["date"] or a["revoke_date"]
    return list(owners.values())


def _plan(dates: Mapping[str, Any], deliverables: list[dict[str, Any]],
          access: list[dict[str, Any]], outstanding: list[dict[str, Any]], today: dt.date
          ) -> list[dict[str, Any]]:
    """What is still ahead, in date order: dates, deliverables to come, access, invoices, end.

    Only what is still ahead: a date already past is never presented as upcoming.
    """
    steps: list[dict[str, Any]] = []
    for m in _milestones(dates):
        kind = "end" if m["key"] == "contract_end" else "date"
        steps.append({"kind": kind, "date": m["date"], "key": m["key"], "label": m["label"],
                      "item": None})
    steps += [{"kind": "deliverable", "date": d["date"], "item": d} for d in deliverables
              if isinstance(d["date"], dt.date) and not d["done"]]
    steps += [{"kind": "access", "date": a["revoke_date"], "item": a} for a in access
              if isinstance(a["revoke_date"], dt.date)]
    steps += [{"kind": "invoice", "date": i["due"], "item": i} for i in outstanding
              if isinstance(i["due"], dt.date)]
    order = {"date": 0, "deliverable": 1, "invoice": 2, "access": 3, "end": 4}
    steps = [s for s in steps if _sort_date(s["date"]) >= today]
    steps.sort(key=lambda s: (_sort_date(s["date"]), order[s["kind"]]))
    return steps


def _milestones(dates: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The engagement's dated steps (handover_date -> 'Handover') and its end, in date order."""
    steps = [
        {"label": _label(key), "date": value, "key": key}
        for key, value in dates.items()
        if key not in _NOT_MILESTONES and isinstance(value, dt.date)
    ]
    if isinstance(dates.get("contract_end"), dt.date):
        steps.append({"label": "Last day of the engagement", "date": dates["contract_end"],
                      "key": "contract_end"})
    steps.sort(key=lambda s: _sort_date(s["date"]))
    return steps


def _label(key: str) -> str:
    words = key.removesuffix("_date").removesuffix("_on").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _sort_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.max
