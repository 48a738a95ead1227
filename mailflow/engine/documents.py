"""The offboarding document and the deliverables review of one engagement, as bytes: for
`mailflow doc` and for the drafts that attach them.

The document is rendered from the same engagement data, plan and template context as the
emails (see mailflow.render.context), so every date in it is a date the emails give too.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from mailflow.config.engagements import hydrate
from mailflow.config.loading import Loaded
from mailflow.engine import checklist
from mailflow.engine.checklist_of import items_of  # noqa: F401 - (its old home)
from mailflow.engine.planner import PlanItem, plan_engagement
from mailflow.engine.records import MessageState as S
from mailflow.engine.records import PlanStatus
from mailflow.engine.sendtime import next_send_time
from mailflow.project import Project, playbook_dir
from mailflow.render.context import template_context
from mailflow.render.document import DocumentRenderer, html_to_pdf
from mailflow.store import State

_STAGE_DONE = PlanStatus.DONE


def docs_dir(project: Project) -> Path:
    """The project's document templates, else the ones shipped with mailflow."""
    own = project.root / "templates" / "docs"
    return own if own.is_dir() else playbook_dir() / "templates" / "docs"


def _document_locale(locale: str) -> str:
    """The client's conventions, as in the emails, while the documents are written in English:
    a French client's document reads "29 January 2027", never English words around a French
    date (en_GB's day-month order reads naturally outside the US)."""
    from mailflow.render.locale import language_of
    return locale if language_of(locale) == "en" else "en_GB"


def plan_of(state: State, loaded: Loaded, engagement: dict, now: dt.datetime | None = None
            ) -> tuple[dict[str, Any], dict[str, dict], list[PlanItem]]:
    """An engagement's data (with the checklist's planning facts), messages by key, and plan
    (projected at `now` when given, as the views show it: engine/schedule.py)."""
    data = hydrate(engagement)
    data.update(checklist.planning_facts(data))
    data["invoices"] = checklist.invoices_as_marked(data)
    messages = {m["key"]: m for m in state.messages_of(engagement["id"])}
    replies = state.replies_by_engagement().get(engagement["id"], [])
    plan = plan_engagement(data, loaded.sequence_for(engagement), messages, replies,
                           loaded.context_for(engagement), now)
    return data, messages, plan


def document_context(state: State, loaded: Loaded, engagement: dict, now: dt.datetime
                     ) -> dict[str, Any]:
    """Everything a document template may use: the email context plus the plan and checklist."""
    seq = loaded.sequence_for(engagement)
    ctx = loaded.context_for(engagement)
    data, messages, plan = plan_of(state, loaded, engagement, now)
    local_now = now.astimezone(ctx.zone)
    to = (data.get("contacts") or {}).get("to") or [{}]
    base = template_context(
        data, sender_name=data["consultant"]["name"], sender_email=data["consultant"]["email"],
        stage_id="document", stage_name="Offboarding document", step=0, now_local=local_now,
        sent={}, recipient=to[0],
        locale=_document_locale(engagement.get("locale") or loaded.config.locale))
    emails = []
    for item in plan:
        if item.step != 0 or item.status not in (PlanStatus.SCHEDULED, _STAGE_DONE):
            continue
        msg = messages.get(item.key) or {}
        due = item.due
        if due is not None and item.status == PlanStatus.SCHEDULED:
            # the date every view shows for it (issue 13: one function)
            due = next_send_time(due, now, ctx.zone, seq.stage(item.stage).window, ctx.calendar)
        when = msg.get("sent_at") or (due.isoformat() if due else None)
        if not when or msg.get("state") in (S.REJECTED, S.CANCELLED):
            continue
        at = dt.datetime.fromisoformat(when).astimezone(ctx.zone)
        emails.append({"stage": item.stage, "name": seq.stage(item.stage).name, "at": at,
                       "date": at.date(), "sent": msg.get("state") == S.SENT})
    items = items_of(state, loaded, engagement)
    by_id = {i.id: i for i in items}
    deliverables = [{**d, "acceptance": by_id[f"deliverable-{n}"]}
                    for n, d in enumerate(base["deliverables"], start=1)]
    delivered = [d for d in deliverables if _delivered(d)]
    return {
        **base,
        "deliverables": deliverables,
        "generated": local_now,
        "emails": emails,
        "timeline": _timeline(base, emails),
        # an invoice settled before the offboarding is not part of it
        "checklist": checklist.ordered(i for i in items if not (
            i.automatic and i.kind is checklist.ItemKind.INVOICE)),
        "delivered": delivered,
        "to_come": [d for d in deliverables if not _delivered(d)],
        "feedback_email": next((e for e in emails if seq.stage(e["stage"]).on_reply
                                == "feedback"), None),
        "time_zone": engagement["time_zone"],
    }


def _delivered(deliverable: dict) -> bool:
    return str(deliverable.get("status") or "").casefold() in ("delivered", "accepted", "done")


def _timeline(base: dict[str, Any], emails: list[dict]) -> list[dict[str, Any]]:
    """Every dated step, in order: emails, milestones, access ends, invoices due."""
    rows: list[dict[str, Any]] = [
        {"date": e["date"], "what": f"{e['name']} (email{', sent' if e['sent'] else ''})",
         "kind": "email", "past": e["sent"]} for e in emails]
    today = base["today"]
    for m in base["milestones"]:
        rows.append({"date": m["date"], "what": m["label"], "kind": "milestone",
                     "past": m["date"] < today})
    for a in base["shared_access"]:
        if isinstance(a["revoke_date"], dt.date):
            rows.append({"date": a["revoke_date"], "what": f"Access ends: {a['system']}",
                         "kind": "access", "past": a["revoke_date"] < today})
    for i in base["outstanding_invoices"]:
        if isinstance(i["due"], dt.date):
            rows.append({"date": i["due"], "what": f"Invoice {i['number']} due",
                         "kind": "invoice", "past": i["due"] < today})
    rows.sort(key=lambda r: (r["date"], r["kind"] != "milestone", r["what"]))
    return rows


def render_document(project: Project, state: State, loaded: Loaded, engagement: dict,
                    now: dt.datetime, *, kind: str = "offboarding", fmt: str = "html") -> bytes:
    """The document as bytes in the format asked for (nothing is written)."""
    context = document_context(state, loaded, engagement, now)
    folder = docs_dir(project)
    text = DocumentRenderer(folder).render(kind, fmt, context)
    if fmt == "pdf":
        return html_to_pdf(text, folder)
    return text.encode("utf-8")


_MIME = {"pdf": "application/pdf", "html": "text/html"}


def attachment_format(wanted: str) -> str:
    """The format a stage's documents are attached in: `auto` is PDF when WeasyPrint loads.

    A client opens a PDF anywhere; HTML is the fallback that needs nothing installed, so a
    project without the `pdf` extra still sends its document instead of blocking the draft.
    """
    if wanted != "auto":
        return wanted
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError):
        return "html"
    return "pdf"


def draft_attachments(project: Project, state: State, loaded: Loaded, engagement: dict,
                      names: tuple[str, ...], wanted: str, at: dt.datetime
                      ) -> list[tuple[str, str, bytes]]:
    """A draft's documents as (file name, content type, bytes), rendered as of `at`.

    `at` is when the email is to go out, not when it is drafted, so rendering the draft
    again later (same data, same templates) gives the same bytes and keeps its approval.
    """
    from mailflow.config.rules import ATTACHABLE
    fmt = attachment_format(wanted)
    out = []
    for name in names:
        kind = ATTACHABLE[name]
        content = render_document(project, state, loaded, engagement, at, kind=kind, fmt=fmt)
        out.append((f"{kind}-{engagement['id']}.{fmt}", _MIME[fmt], content))
    return out
