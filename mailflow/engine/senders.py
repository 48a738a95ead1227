"""Which identity each message goes out as, and each identity's own throttle (issue 15).

A message keeps the address it was drafted to go out as (`sender_email`), so a retry is the
very same message; one recorded before identities existed goes out as its engagement's lead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mailflow.config.loading import schedule
from mailflow.config.settings import Identity
from mailflow.engine import sending
from mailflow.errors import ConfigError

if TYPE_CHECKING:
    from mailflow.engine.tick import Tick

UNKNOWN = "?"  # the group of a message whose identity cannot be found (it is blocked on send)


def identity_key(tick: Tick, msg: dict) -> str:
    """The (lower-case) address a message goes out as, or UNKNOWN."""
    email = msg.get("sender_email")
    if email:
        return email.lower()
    eng = tick.state.engagements.get(msg["engagement"])
    try:
        return tick.loaded.identity_for(eng or {}).email.lower()
    except ConfigError:
        return UNKNOWN


def budgets(tick: Tick) -> tuple[dict[str, int], Callable[[dict], str]]:
    """How many messages each identity may start now, and the grouping function."""
    cfg = tick.loaded.config
    cache: dict[str, str] = {}

    def group_of(msg: dict) -> str:
        email = msg.get("sender_email")
        if email:
            return email.lower()
        # one lookup per engagement: the tick may hold thousands of messages
        if msg["engagement"] not in cache:
            cache[msg["engagement"]] = identity_key(tick, msg)
        return cache[msg["engagement"]]

    attempted: dict[str, list[dict]] = {}
    for msg in tick.state.messages.values():
        if msg.get("attempts_at"):
            attempted.setdefault(group_of(msg), []).append(msg)
    out = {UNKNOWN: 10**9}
    for ident in cfg.identities:
        per_minute = ident.per_minute if ident.per_minute is not None \
            else schedule(cfg, "per_minute")
        per_day = ident.per_day if ident.per_day is not None else schedule(cfg, "per_day")
        out[ident.email.lower()] = sending.throttle_budget(
            attempted.get(ident.email.lower(), []), tick.now, per_minute, per_day)
    return out, group_of


def by_identity(tick: Tick, due: list[dict]) -> list[tuple[Identity, list[dict]]]:
    """The due messages per identity, in order; one whose identity is gone is blocked."""
    groups: dict[str, tuple[Identity, list[dict]]] = {}
    for msg in due:
        eng = tick.state.engagements.get(msg["engagement"]) or {}
        try:
            ident = tick.loaded.identity_of(msg, eng)
        except ConfigError as err:
            tick.mark(msg, "message.blocked", state="blocked", error=str(err))
            tick.report.problems.append(f"{msg['key']}: not sent: {err}")
            tick.report.codes.add(err.exit_code)
            continue
        groups.setdefault(ident.email.lower(), (ident, []))[1].append(msg)
    return list(groups.values())
