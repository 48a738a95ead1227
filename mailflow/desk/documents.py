"""`mailflow doc`: the offboarding document and the deliverables review for one engagement.

The document is rendered from the same engagement data, plan and template context as the
emails (see mailflow.render.context), so every date in it is a date the emails give too.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

from mailflow.config.engagements import hydrate
from mailflow.config.loading import Loaded
from mailflow.desk.checklist import items_of
from mailflow.engine import checklist
from mailflow.engine.planner import plan_engagement
from mailflow.engine.records import MessageState as S
from mailflow.engine.records import PlanStatus
from mailflow.engine.sendtime import next_send_time
from mailflow.errors import StoreError
from mailflow.project import Project, playbook_dir
from mailflow.render.context import template_context
from mailflow.render.document import DocumentRenderer, html_to_pdf
from mailflow.store import State

_STAGE_DONE = PlanStatus.DONE


def docs_dir(project: Project) -> Path:
    """The project's document templates, else the ones shipped with mailflow."""
    own = project.root / "templates" / "docs"
    return own if own.is_dir() else playbook_dir() / "templates" / "docs"


def document_context(state: State, loaded: Loaded, engagement: dict, now: dt.datetime
                     ) -> dict[str, Any]:
    """Everything a document template may use: the email context plus the plan and checklist."""
    seq = loaded.sequence_for(engagement)
    ctx = loaded.context_for(engagement)
    data = hydrate(engagement)
    data.update(checklist.planning_facts(data))
    data["invoices"] = checklist.invoices_as_marked(data)
    messages = {m["key"]: m for m in state.messages_of(engagement["id"])}
    replies = state.replies_by_engagement().get(engagement["id"], [])
    plan = plan_engagement(data, seq, messages, replies, ctx)
    local_now = now.astimezone(ctx.zone)
    to = (data.get("contacts") or {}).get("to") or [{}]
    base = template_context(
        data, sender_name=data["consultant"]["name"], sender_email=data["consultant"]["email"],
        stage_id="document", stage_name="Offboarding document", step=0, now_local=local_now,
        sent={}, recipient=to[0],
        # the client's conventions, as in the emails: the same date reads the same in both
        locale=engagement.get("locale") or loaded.config.locale)
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


def write_document(content: bytes, out: Path) -> Path:
    """Write a document atomically: a template error or a crash never leaves half a file."""
    out = out.expanduser()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise StoreError(f"{out}: cannot write the document ({err.strerror or err})") from err
    return out
