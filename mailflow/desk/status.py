"""The status grid and "needs you now": the day's first look, as library functions.

Each engagement's part of both (its row, its drafts and troubles, its wrap-up lines) is one
`Summary`, made by `summarize`. A run keeps each engagement's summary on its record (`shown`,
`keep_summaries`), stamped with what it was made from (the plan signature: rules, config and
the engagement's revision, which every event about the engagement bumps) and the span of time
it holds for: from the run's `now` until the first due time, send time or checklist date it
depends on passes. `status` uses a kept summary while both hold and makes the others: making
1,000 of them was two thirds of its time (issue 18). A kept summary is a cache of what
`summarize` says; `doctor` checks it against one made afresh.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import orjson

from mailflow import __version__
from mailflow.desk import tables
from mailflow.engine import plan_stamp
from mailflow.engine.records import REVIEW
from mailflow.errors import MailflowError
from mailflow.store import State
from mailflow.store.state import AT_REST, now_iso

# what needs the consultant, and in which words
ATTENTION_STATES = ("in_doubt", "failed", "blocked")
# what a kept summary was made by: one another mailflow made (its cells may read otherwise)
# does not hold; FORMAT changes with what a summary holds or how it is made
FORMAT = 2
MADE_BY = f"{__version__}.{FORMAT}"
# a checklist item is late from the local midnight after its due date; a kept summary ends
# this long before that midnight, so that no zone's clock change around midnight makes it late
LATE_MARGIN = dt.timedelta(hours=3)


@dataclass
class Summary:
    """One engagement as `status` and `drafts` show it: its row, its part of "needs you
    now", and its drafts that wait for the consultant (as `drafts` lists them)."""

    cells: dict[str, str] = field(default_factory=dict)  # stage id -> its mark
    next_at: dt.datetime | None = None  # when its next email goes out
    checklist: str = ""  # compact: '3 open, 1 late', or 'clear'
    error: str | None = None
    waiting: int = 0  # its drafts waiting for approval
    attention: list[tuple[str, str]] = field(default_factory=list)  # (message key, line)
    wrap_lines: list[str] = field(default_factory=list)  # overdue items, ready to complete
    drafts: list[dict] = field(default_factory=list)  # desk.views.message_row of each
    data: dict = field(default_factory=dict)  # its JSON row (made only when asked; never kept)

    def pack(self) -> str:
        """The summary as kept on the engagement (without its JSON row)."""
        return orjson.dumps([self.cells, self.next_at.isoformat() if self.next_at else None,
                             self.checklist, self.error, self.waiting, self.attention,
                             self.wrap_lines, self.drafts]).decode()

    @classmethod
    def unpack(cls, text: str) -> Summary:
        """A summary `pack` kept."""
        cells, next_at, checklist, error, waiting, attention, wrap_lines, drafts = \
            orjson.loads(text)
        return cls(cells, _instant(next_at) if next_at else None, checklist, error, waiting,
                   [tuple(a) for a in attention], wrap_lines, drafts)


@dataclass
class Made:
    """A summary just made, and until when it holds (None: for as long as its engagement
    and the rules stay as they are); `keepable` is false when it depends on `now` itself."""

    summary: Summary
    until: dt.datetime | None
    keepable: bool


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
    # engagement id -> its Summary, when the grid is of the current engagements
    summaries: dict[str, Summary] = field(default_factory=dict)


def is_current(eng: dict) -> bool:
    """Neither archived nor read back from an archive: an engagement `status` shows."""
    return not (eng.get("archived") or eng.get("moved_out"))


def status_view(store, loaded, now: dt.datetime, archived: bool = False,  # noqa: ANN001
                with_data: bool = True) -> tuple[Grid, list[str]]:
    """`status`: the grid and "needs you now". When the checkpoint is the whole state and
    every current engagement's kept summary holds, only the engagements and replies are read:
    the messages, most of the bytes, are not (issue 18)."""
    if not archived and not with_data:
        held = all_kept(store, loaded, now, ("engagements", "replies"))
        if held is not None:
            state, made = held
            grid = status_grid(state, loaded, now, made=made)
            return grid, needs_you_now(state, loaded, now, made)
    state = store.load()
    if archived:  # and those moved out into archives (reads every one: only when asked)
        from mailflow.desk.actions import find_engagement
        for eid in store.shelf.ids():
            find_engagement(state, eid, archived_ok=True)
    grid = status_grid(state, loaded, now, archived=archived, with_data=with_data)
    return grid, needs_you_now(state, loaded, now, None if archived else grid.summaries)


def all_kept(store, loaded, now: dt.datetime, only: tuple[str, ...]  # noqa: ANN001
             ) -> tuple[State, dict[str, Summary]] | None:
    """The tables `only` of the checkpoint and every current engagement's kept summary,
    when the checkpoint is the whole state and every one holds at `now`; else None (a view
    then loads the whole state): `status` and `drafts` read no message then (issue 18)."""
    state = store.load_tables(only)
    if state is None:
        return None
    made = {}
    for eng in state.engagements.values():
        if is_current(eng):
            summary = kept_summary(loaded, eng, now)
            if summary is None:
                return None
            made[eng["id"]] = summary
    return state, made


def status_grid(state: State, loaded, now: dt.datetime, archived: bool = False,  # noqa: ANN001
                with_data: bool = True, made: dict[str, Summary] | None = None) -> Grid:
    """One row per engagement (archived ones only with `archived`), soonest next email first;
    each row's JSON form only `with_data` (the table does not print it); `made`: the
    engagements' summaries, when already at hand."""
    chosen = [e for e in state.engagements.values() if is_current(e) != archived]
    if made is None:
        made = summaries(state, loaded, now, chosen, with_data=with_data)
    grid = Grid(summaries={} if archived else made)
    for eng in chosen:
        try:
            stages = loaded.sequence_for(eng).stages
        except MailflowError:
            stages = ()  # its row says why
        for s in stages:
            if s.id not in grid.stages:
                grid.stages.append(s.id)
        s = made[eng["id"]]
        grid.rows.append(GridRow(eng["id"], eng.get("status", "?"), s.cells, s.data, s.next_at,
                                 s.error, s.checklist))
    grid.rows.sort(key=lambda r: (r.next_at is None, r.next_at or now,
                                  tables.natural_key(r.id)))
    return grid


def summaries(state: State, loaded, now: dt.datetime, engagements: list[dict],  # noqa: ANN001
              with_data: bool = False) -> dict[str, Summary]:
    """Each engagement's summary at `now`: the one its last run kept while it holds, else
    made (always made `with_data`: a JSON row is never kept)."""
    out: dict[str, Summary] = {}
    shared: Shared | None = None
    for eng in engagements:
        summary = None if with_data else kept_summary(loaded, eng, now)
        if summary is None:
            shared = shared or Shared(state)
            summary = summarize(state, loaded, eng, now, shared, with_data).summary
        out[eng["id"]] = summary
    return out


def kept_summary(loaded, eng: dict, now: dt.datetime) -> Summary | None:  # noqa: ANN001
    """The summary the last run kept on the engagement, while it holds at `now`; else None."""
    text = eng.get("shown")
    if not text or not is_current(eng):
        return None
    stamp, since, until, start = kept_fields(text)
    if not _holds(since, until, now_iso(now)):
        return None
    try:
        if stamp != signature(loaded, eng):
            return None
    except MailflowError:
        return None
    return Summary.unpack(text[start:])


def kept_fields(text: str) -> tuple[str, str, str, int]:
    """A kept summary's stamp, since and until, and where its packed summary starts (the
    `shown` field: the four joined by tabs; read without copying the packed part, since an
    idle run looks at every engagement's)."""
    a = text.find("\t")
    b = text.find("\t", a + 1)
    c = text.find("\t", b + 1)
    return text[:a], text[a + 1:b], text[b + 1:c], c + 1


def signature(loaded, eng: dict) -> str:  # noqa: ANN001 - a config.loading.Loaded
    """What a summary is made from: the engagement's plan signature (engine/plan_stamp.py),
    and the mailflow that makes it."""
    return f"{MADE_BY}:{plan_stamp.signature(loaded, eng)}"


def keep_summaries(w, loaded, now: dt.datetime) -> int:  # noqa: ANN001 - Writer, Loaded
    """Keep on each current engagement the summary `status` makes at `now`, where the kept
    one no longer holds (the end of a run: its events and the passing time void some); one
    that depends on `now` itself is marked so, and made again only once its engagement
    changes. Returns how many were made."""
    state = w.state
    at = now_iso(now + dt.timedelta(microseconds=999_999) if now.microsecond else now)
    shared: Shared | None = None
    made = 0
    for eng in list(state.engagements.values()):
        if not is_current(eng):
            continue
        try:
            stamp = signature(loaded, eng)
        except MailflowError:
            continue  # an unknown sequence: its row is its error, made by each view
        text = eng.get("shown")
        if text:
            k_stamp, k_since, k_until, _ = kept_fields(text)
            if k_stamp == stamp and (k_until == k_since or _holds(k_since, k_until, at)):
                continue  # it holds (or cannot be kept until the engagement changes)
        shared = shared or Shared(state)
        try:
            result = summarize(state, loaded, eng, now, shared)
        except MailflowError:  # (as planning: its view shows why; a bug is not swallowed)
            continue
        if not result.keepable:
            until = at
        elif result.until is None:
            until = ""
        else:
            until = now_iso(result.until)  # (to the second, down: it ends no later)
            if until <= at:
                until = at
        packed = result.summary.pack() if until != at else ""
        w.record("engagement.summarized", at=now, engagements={
            "key": eng["id"], "set": {"shown": f"{stamp}\t{at}\t{until}\t{packed}"}})
        made += 1
    return made


def _holds(since: str, until: str, at: str) -> bool:
    """Whether a kept summary's span holds at `at` (instants as stored, comparable as text):
    from `since` to just before `until` ("": no end; `since` itself: it is not kept)."""
    return since <= at and (not until or at < until) and until != since


class Shared:
    """What summaries of many engagements share: replies by message and by engagement."""

    def __init__(self, state: State) -> None:
        self.preview = None  # a desk.views.Preview at one `now`: its `when_for` (made on use)
        self.by_engagement = state.replies_by_engagement()
        self.by_message: dict[str, list[dict]] = {}
        for r in state.replies.values():
            self.by_message.setdefault(r.get("message") or "", []).append(r)


def message_part(msgs: list[dict]) -> tuple[int, list[tuple[str, str]]]:
    """Of some messages: how many drafts wait for approval, and a line for each that needs
    the consultant otherwise (in doubt, failed, blocked), with its key."""
    waiting = 0
    attention = []
    for m in msgs:
        state = m["state"]
        if state in AT_REST:
            continue
        waiting += state == "awaiting_approval"
        if state in ATTENTION_STATES:
            why = m.get("note") or m.get("server_reply") or m.get("error") or ""
            attention.append((m["key"], f"{m['key']}: {state.replace('_', ' ')}: {why}"[:160]))
    return waiting, attention


def summarize(state: State, loaded, eng: dict, now: dt.datetime,  # noqa: ANN001 - Loaded
              shared: Shared, with_data: bool = False) -> Made:
    """One engagement's summary at `now`, and the span it holds for."""
    from mailflow.engine.records import PlanStatus
    from mailflow.engine.schedule import projected_plan
    eid = eng["id"]
    msgs = state.messages_of(eid)
    waiting, attention = message_part(msgs)
    bounds: list[dt.datetime] = []  # instants before which nothing shown changes
    keepable = True
    items, error = None, None
    if eng.get("status") == "active" and not eng.get("archived"):
        try:
            items, projected = projected_plan(loaded, state, eng, now,
                                              shared.by_engagement.get(eid, []))
            keepable = not projected  # worked out from `now`: it moves with it
            # (the plan is projected again once a scheduled stage is overdue)
            bounds += [i.due for i in items if i.status == PlanStatus.SCHEDULED and i.due]
        except Exception as err:  # noqa: BLE001 - shown as this engagement's broken row
            error = f"{type(err).__name__}: {err}" if not str(err) else str(err)
            keepable = False
    summary = Summary(waiting=waiting, attention=attention)
    wrap = None
    try:
        wrap = _row(summary, eng, state, loaded, items, error, msgs, shared, now, bounds,
                    with_data)
    except Exception as err:  # noqa: BLE001 - a broken engagement is a row with its error
        summary = Summary(error=str(err) or type(err).__name__, waiting=waiting,
                          attention=attention,
                          data={"id": eid, "status": eng.get("status"), "error": str(err)})
        keepable = False
    _wrap_lines(summary, eng, state, loaded, now, items, wrap)
    return Made(summary, min(bounds, default=None), keepable)


def _row(summary: Summary, eng: dict, state: State, loaded, items, error: str | None,  # noqa: ANN001, ANN202 - Loaded, PlanItems; a desk.wrapup.Wrapup
         msgs: list[dict], shared: Shared, now: dt.datetime, bounds: list[dt.datetime],
         with_data: bool):
    """Fill the summary's row; add the instants it depends on to `bounds`; its wrap-up."""
    from mailflow.desk import views
    from mailflow.desk.wrapup import checklist_cell, wrapup
    from mailflow.engine.sendtime import holds_until
    seq = loaded.sequence_for(eng)
    by_item = {i.stage: i for i in items or () if i.step == 0}
    if shared.preview is None or shared.preview.now != now:
        shared.preview = views.Preview(loaded, state, now)
    when = shared.preview.when_for(eng)
    zone = eng["time_zone"]
    cells, stages = {}, {}
    upcoming = []
    by_stage: dict[str, list[dict]] = {}
    firsts: dict[str, dict] = {}  # stage -> its first email (step 0)
    for m in msgs:
        by_stage.setdefault(m["stage"], []).append(m)
        if m["step"] == 0 and m["stage"] not in firsts:
            firsts[m["stage"]] = m
    by_message = shared.by_message
    for s in seq.stages:
        stage_msgs = by_stage.get(s.id, ())
        replies = [r for m in stage_msgs for r in by_message.get(m["key"], ())] \
            if by_message else []
        item = by_item.get(s.id)
        first = firsts.get(s.id)
        sent_at = first.get("sent_at") if first else None
        # the one answer every view gives; a sent stage shows when it went, never this (one
        # retrying for some recipients goes again: it has a next time)
        went = bool(sent_at) and first["state"] != "retry"
        at = None if went else when(first, item)
        if not went and (first is not None or item is not None):
            bound = holds_until(first, item.due if item is not None else None)
            if bound is not None:
                bounds.append(bound)
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
    # the drafts `drafts` lists, each at its real send time (desk/drafts.py: draft_rows)
    by_key = {i.key: i for i in items or ()}
    for m in msgs:
        if m["state"] in REVIEW:
            item = by_key.get(m["key"])
            bound = holds_until(m, item.due if item is not None else None)
            if bound is not None:
                bounds.append(bound)
            summary.drafts.append(views.message_row(m, zone, when(m, item)))
    # the row's plan is the one `wrapup` would make: planning twice tripled `status`'s time
    wrap = wrapup(state, loaded, eng, now, items or [], msgs)
    bound = late_from(wrap, loaded.context_for(eng).zone)
    if bound is not None:
        bounds.append(bound)
    summary.cells, summary.next_at = cells, min(upcoming, default=None)
    summary.error, summary.checklist = error, checklist_cell(wrap)
    if with_data:
        summary.data = {
            **views.engagement_row(eng), "stages": stages, "error": error,
            "checklist": {"open": len(wrap.items), "overdue": len(wrap.overdue),
                          "open_items": [i.id for i in wrap.items]},
            "ready_to_complete": wrap.clear and eng["status"] in ("active", "paused")}
    return wrap if items is not None else None  # (a paused one's is planned by its lines)


def late_from(wrap, zone) -> dt.datetime | None:  # noqa: ANN001 - a Wrapup, a ZoneInfo
    """When the first open checklist item not late yet turns late (less LATE_MARGIN), else
    None: until then, which items are late stays as it is (once late, an item stays so)."""
    due = min((i.due for i in wrap.items if i.due is not None and not i.overdue(wrap.today)),
              default=None)
    if due is None:
        return None
    return dt.datetime.combine(due + dt.timedelta(days=1), dt.time(), tzinfo=zone) - LATE_MARGIN


def _wrap_lines(summary: Summary, eng: dict, state: State, loaded, now: dt.datetime,  # noqa: ANN001
                items, wrap) -> None:  # noqa: ANN001
    """Add "needs you now"'s wrap-up lines (overdue checklist items, ready to complete); the
    open items, and so the instants they depend on, are the row's (`_row`)."""
    from mailflow.desk.wrapup import wrapup
    if eng.get("archived") or eng.get("status") not in ("active", "paused"):
        return
    try:
        w = wrap or wrapup(state, loaded, eng, now, items)
    except MailflowError:
        return  # a broken engagement shows as its row's error (and stays broken: no bound)
    eid = eng["id"]
    for item in w.overdue:
        summary.wrap_lines.append(
            f"{eid}: checklist item {item.id} ({item.title}) overdue since "
            f"{item.due.isoformat()}: mailflow done {eid} {item.id}")
    if w.clear:
        summary.wrap_lines.append(f"{eid}: sequence done and checklist clear: "
                                  f"mailflow engagement complete {eid}")


def needs_you_now(state: State, loaded=None, now: dt.datetime | None = None,  # noqa: ANN001
                  made: dict[str, Summary] | None = None) -> list[str]:
    """One line per thing waiting for the consultant: drafts, failures, replies, flags, and
    (given `loaded` and `now`) overdue checklist items and engagements ready to complete;
    `made` is the current engagements' summaries when already at hand (the grid's)."""
    current = [e for e in state.engagements.values() if is_current(e)]
    if made is None and loaded is not None and now is not None:
        made = summaries(state, loaded, now, current)
    if made is None:  # no project at hand: the messages' part alone
        parts = [message_part(state.messages_of(e["id"])) for e in current]
    else:
        parts = [(made[e["id"]].waiting, made[e["id"]].attention) for e in current]
    waiting = sum(n for n, _ in parts)
    attention = sorted((a for _, lines in parts for a in lines),
                       key=lambda a: tables.natural_key(a[0]))
    lines = [line for _, line in attention]
    if waiting:
        lines.insert(0, f"{waiting} draft(s) to approve: mailflow drafts")
    for r in state.replies.values():
        if r.get("needs_action") and not r.get("handled"):
            lines.append(f"reply {r['id']} from {r.get('from')} ({r.get('stage')}): "
                         f"mailflow replies show {r['id']}")
    for e in current:
        if e.get("flagged"):
            lines.append(f"engagement {e['id']}: {e['flagged']}")
    if made is not None:
        for eid in sorted(e["id"] for e in current):
            lines += made[eid].wrap_lines
    return lines


def compact_mark(mark: str) -> str:
    """A status-grid cell in fewer characters, for a narrow terminal."""
    for long, short in (("to approve ", "approve "), (" auto-reply", " auto"),
                        (" replied", " re"), (" bounced", " bnc")):
        mark = mark.replace(long, short)
    return mark


def short_header(stage_id: str, taken: list[str]) -> str:
    """A stage's column header for a narrow terminal: its first word, when that is unique."""
    first = stage_id.split("_", 1)[0]
    return first if first not in taken else stage_id


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
