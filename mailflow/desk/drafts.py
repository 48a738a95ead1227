"""The drafts and replies lists as rows, and the HTML preview file of a draft."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from mailflow.config.loading import Loaded
from mailflow.desk import tables
from mailflow.desk.status import all_kept
from mailflow.engine.records import REVIEW
from mailflow.errors import MailflowError
from mailflow.store import State, Store


def drafts_view(store: Store, loaded: Loaded, now: dt.datetime, all_states: bool = False,
                errors: dict[str, str] | None = None) -> list[dict]:
    """`drafts`: `draft_rows` of the state. When the checkpoint is the whole state and every
    current engagement's kept summary holds (desk/status.py), its drafts are those the
    summaries list, and only the engagements are read (issue 18)."""
    if not all_states:
        held = all_kept(store, loaded, now, ("engagements",))
        if held is not None:
            return _sorted([row for s in held[1].values() for row in s.drafts])
    return draft_rows(store.load(), loaded, now, all_states, errors)


def draft_rows(state: State, loaded: Loaded, now: dt.datetime, all_states: bool = False,
               errors: dict[str, str] | None = None) -> list[dict]:
    """Drafts that wait for the consultant, soonest first (ids in natural order on a tie).

    An engagement that cannot be planned keeps its drafts' stored times; its error goes
    into `errors` (engagement id -> message) for the caller to show.
    """
    from mailflow.desk import views
    wanted = REVIEW + (("approved", "planned", "retry") if all_states else ())
    msgs = [m for m in state.messages.values() if m["state"] in wanted
            and not state.engagements[m["engagement"]].get("archived")]
    plan = views.preview(state, loaded, now, sorted({m["engagement"] for m in msgs}))
    items = plan.items_by_key()
    if errors is not None:
        errors.update(plan.errors)
    rows = []
    for m in msgs:
        zone = state.engagements[m["engagement"]]["time_zone"]
        rows.append(views.message_row(m, zone, plan.when(m, items.get(m["key"]))))
    return _sorted(rows)


def _sorted(rows: list[dict]) -> list[dict]:
    """Soonest first, ids in natural order on a tie."""
    return sorted(rows, key=lambda r: (r["goes_out"] or "~", tables.natural_key(r["id"])))


def reply_rows(state: State, *, needs_action: bool = False, eid: str | None = None,
               all_kinds: bool = False, default_zone: str = "UTC",
               loaded: Loaded | None = None) -> list[dict]:
    """Replies, newest first; `needs_action` is true only while a reply is not handled.

    Given `loaded`, each row has `suggested_done`: the `mailflow done` commands its intent
    suggests (an invoice paid, access removed).
    """
    from mailflow.desk import views
    rows = []
    for r in sorted(state.replies.values(), key=lambda r: r.get("received_at") or "",
                    reverse=True):
        waiting = bool(r.get("needs_action")) and not r.get("handled")
        if eid and r.get("engagement") != eid or needs_action and not waiting:
            continue
        if not (all_kinds or needs_action or eid or r.get("kind") in ("human", "unsubscribe")
                or not r.get("trusted", True)):  # a flagged bounce shows until accepted
            continue
        zone = state.engagements.get(r.get("engagement") or "", {}).get("time_zone",
                                                                         default_zone)
        rows.append({**r, "needs_action": waiting,
                     "received_local": views.local(r.get("received_at"), zone,
                                                   "%a %Y-%m-%d %H:%M %Z")})
        if loaded is not None:
            from mailflow.desk.checklist import done_suggestions  # (its renderer: on use)
            rows[-1]["suggested_done"] = done_suggestions(state, loaded, r)
    return rows


def preview_path(store: Store, key: str) -> Path:
    """Where `drafts show --open` writes a draft's HTML: one file per draft, overwritten."""
    return store.dir / "preview" / (re.sub(r"[^A-Za-z0-9_.-]", "-", key) + ".html")


def write_html(path: Path, html: str) -> Path:
    """Write a draft's HTML; a folder that does not exist is one line, not a traceback."""
    try:
        if path.parent.name == "preview":
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as err:
        raise MailflowError(f"{path}: cannot write the HTML: {err.strerror}") from None
    return path
