"""Telling the consultant once (issue 13): the effect side of engine/attention.py.

Each thing that newly needs the consultant becomes one line of the tick's report and an
`attention.told` journal event, so the next run at the same state says nothing.
"""

from __future__ import annotations

from mailflow import timing
from mailflow.config.loading import schedule
from mailflow.engine.attention import needs, untold
from mailflow.engine.schedule import send_time_for
from mailflow.errors import MailflowError


def tell(tick) -> None:  # noqa: ANN001 - engine.tick.Tick
    """Record and report what is newly waiting; keep the whole waiting list for the digest."""
    items = needs(tick.state, tick.now, schedule(tick.loaded.config, "review_days"),
                  describe=lambda msg: describe(tick, msg), context=tick.loaded.context_for)
    tick.report.waiting = items
    for need in untold(items, tick.state):
        # no engagement on the event: being told changes no plan
        tick.w.record("attention.told", at=tick.now,
                      **{need.table: {"key": need.key, "append": {"told": need.mark}}})
        if not any(p.startswith(f"{need.key}: ") for p in tick.report.problems):
            tick.report.told.append(need.line)  # (a problem line already said it)


def describe(tick, msg: dict) -> str:  # noqa: ANN001 - engine.tick.Tick
    """A draft for people: client, stage, recipients and when it goes out once approved."""
    eng = tick.state.engagements.get(msg["engagement"]) or {}
    try:
        name = tick.loaded.sequence_for(eng).stage(msg["stage"]).name
    except (KeyError, MailflowError):
        name = msg["stage"]
    when = send_time_for(tick.loaded, tick.state, msg, tick.now)
    shown = timing.format_local(when, tick.loaded.context_for(eng).zone) if when and eng \
        else "?"
    to = ", ".join(p["email"] for p in msg.get("to") or []) or "?"
    step = f" reminder {msg['step']}" if msg.get("step") else ""
    return f"{eng.get('client', msg['engagement'])}, {name}{step}, to {to}, goes out {shown}"
