"""Sending decisions as pure functions of the state and `now`: what is due, how many may go,
when to try again, who still needs the message, and what one attempt's outcome changes.

The tick applies what these return (journal events around each SMTP transaction); nothing
here reads a clock, a file or a socket, so every rule is tested directly (tests/unit).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from mailflow.engine.outcomes import Delivery, Outcome
from mailflow.engine.planner import FINAL
from mailflow.engine.records import MessageState as S
from mailflow.engine.records import stored_time as _ts

# retry spacing after a temporary (4xx) refusal: the first within the hour, then spaced out
RETRY_DELAYS = [dt.timedelta(minutes=m) for m in (5, 15, 30, 60, 120, 240, 480)]

# a recipient with one of these outcomes never gets this message again
SETTLED = (Outcome.DELIVERED.value, Outcome.PERMANENT.value)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


def throttle_budget(messages: Iterable[Mapping], now: dt.datetime, per_minute: int,
                    per_day: int) -> int:
    """How many messages may start now under the per-minute and per-day limits (0: none)."""
    minute_ago, day_ago = _iso(now - dt.timedelta(minutes=1)), _iso(now - dt.timedelta(days=1))
    last_minute = last_day = 0
    for msg in messages:
        for at in msg.get("attempts_at", ()):
            if at > day_ago:
                last_day += 1
                last_minute += at > minute_ago
    budget = min(per_minute - last_minute if per_minute else 10**9,
                 per_day - last_day if per_day else 10**9)
    return max(0, budget)


def predecessor_done(msg: Mapping, messages: Mapping[str, Mapping]) -> bool:
    """Whether the message it must follow went out (or ended): never ahead of an earlier stage."""
    if not msg.get("after"):
        return True
    after = messages.get(msg["after"])  # none yet: it still waits for its anchor
    return after is not None and (after["state"] in FINAL or bool(after.get("sent_at")))


@dataclass
class DueSelection:
    """Messages to send now, in order, and how many due ones wait (window or limit)."""

    due: list[dict] = field(default_factory=list)
    outside_window: int = 0
    over_limit: int = 0
    taken: dict[str, int] = field(default_factory=dict)  # picked per throttle group

    @property
    def deferred(self) -> int:
        """Due, but waiting for a later tick."""
        return self.outside_window + self.over_limit


def select_due(messages: Mapping[str, dict], engagements: Mapping[str, Mapping],
               now: dt.datetime, budget: int | Mapping[str, int],
               window_opens: Callable[[dict, Mapping], dt.datetime],
               group_of: Callable[[dict], str] | None = None,
               among: Iterable[dict] | None = None) -> DueSelection:
    """Approved messages whose time has come, and retries whose next attempt has, in order.

    `window_opens(msg, engagement)` is the next opening of the message's send window at or
    after `now` (the caller knows stages, zones and calendars); a message waits until then.
    With `group_of` (a message's sender identity), `budget` maps each group to its own limit
    (a group it does not name has none). `among` are the messages to choose from, when fewer
    than all (State.live_messages: sent ones are never due); `budget` may be a mapping that
    is only worked out when asked (senders.budgets walks every message).
    """
    candidates = [m for m in (messages.values() if among is None else among)
                  if m["state"] == S.APPROVED and _ts(m["due"]) <= now
                  or m["state"] == S.RETRY and _ts(m.get("next_attempt")) <= now]
    candidates.sort(key=lambda m: (m["due"], m["key"]))
    out = DueSelection()
    for msg in candidates:
        eng = engagements.get(msg["engagement"])
        if eng is None or eng.get("status") != "active":
            continue
        if not predecessor_done(msg, messages):
            continue
        group = group_of(msg) if group_of is not None else ""
        limit = budget.get(group, 10**9) if isinstance(budget, Mapping) else budget
        if window_opens(msg, eng) > now:
            out.outside_window += 1  # never at 3 a.m.: waits for the window to open
        elif out.taken.get(group, 0) >= limit:
            out.over_limit += 1
        else:
            out.due.append(msg)
            out.taken[group] = out.taken.get(group, 0) + 1
    return out


def next_attempt(attempts_at: list[str], now: dt.datetime, lifetime: dt.timedelta,
                 hint: dt.timedelta | None = None) -> dt.datetime | None:
    """When to try again after a temporary refusal, or None once the lifetime is spent."""
    first = _ts(attempts_at[0]) if attempts_at else now
    delay = RETRY_DELAYS[min(max(len(attempts_at) - 1, 0), len(RETRY_DELAYS) - 1)]
    if hint is not None:
        delay = max(delay, hint)
    nxt = now + delay
    return None if nxt - first > lifetime else nxt


def still_to_receive(envelope: list[str], outcomes: Mapping[str, Mapping]) -> list[str]:
    """The envelope recipients that have neither received the message nor refused it for good."""
    return [r for r in envelope if (outcomes.get(r) or {}).get("outcome") not in SETTLED]


@dataclass
class Recorded:
    """What one attempt's outcome changes: the message, the engagement, what to tell."""

    changes: dict
    kind: str  # the journal event: message.sent | message.retry | message.in_doubt | ...
    bounced: list[str] = field(default_factory=list)  # addresses the server refused for good
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    retrying: bool = False
    delivered: bool = False  # someone got it in this attempt (a Sent copy is due)


def record_delivery(msg: Mapping, delivery: Delivery, now: dt.datetime,
                    lifetime: dt.timedelta) -> Recorded:
    """The changes one attempt makes to a message, from its per-recipient outcomes."""
    key, at = msg["key"], _iso(now)
    outcomes = {r: dict(o) for r, o in (msg.get("recipients") or {}).items()}
    for rcpt, got in delivery.recipients.items():
        entry = {"outcome": got.outcome.value, "reply": got.reply, "at": at}
        outcomes[rcpt] = entry
    delivered_now = delivery.having(Outcome.DELIVERED)
    temporary, doubt = delivery.having(Outcome.TEMPORARY), delivery.having(Outcome.IN_DOUBT)
    delivered = sorted(set(msg.get("delivered_to") or []) | set(delivered_now))
    summary = delivery.summary
    changes: dict = {"recipients": outcomes, "server_reply": summary,
                     "delivered_to": delivered, "remaining": (temporary + doubt) or None,
                     "sending": None}  # the attempt has its outcome: its mark is done
    if delivered and not msg.get("sent_at"):
        changes["sent_at"] = at
    bounced = [r for r, o in delivery.recipients.items()
               if o.outcome is Outcome.PERMANENT and o.address_refused]
    out = Recorded(changes, "message.sent", bounced=bounced, delivered=bool(delivered_now))
    if bounced and delivered:
        out.problems.append(f"{key}: refused for {', '.join(bounced)}: {summary}")
    if doubt:
        out.kind = "message.in_doubt"
        changes.update(state=S.IN_DOUBT, note=delivery.reply)
        out.problems.append(f"{key}: in doubt: {delivery.reply}; check your Sent folder, then "
                            f"`mailflow drafts resolve {key} --sent|--resend`")
    elif temporary:
        hints = [o.retry_after for o in delivery.recipients.values() if o.retry_after]
        nxt = next_attempt(list(msg.get("attempts_at") or []), now, lifetime,
                           max(hints) if hints else None)
        if nxt is None:
            changes.update(state=S.FAILED)
            out.kind = "message.failed" if not delivered else "message.sent"
            out.problems.append(f"{key}: failed: temporary refusals for "
                                f"{lifetime.total_seconds() / 3600:g} hours: {summary}")
        else:
            for rcpt in temporary:
                outcomes[rcpt]["retry_at"] = _iso(nxt)
            changes.update(state=S.RETRY, next_attempt=_iso(nxt))
            out.kind = "message.sent" if delivered_now else "message.retry"
            out.retrying = True
            out.notes.append(f"{key}: server said {summary}; trying again at {_iso(nxt)}")
    elif delivered:
        changes["state"] = S.SENT
    else:
        out.kind = "message.failed"
        changes["state"] = S.FAILED
        out.problems.append(f"{key}: failed: {summary}")
    return out


def interrupted(msg: Mapping, now: dt.datetime) -> dict:
    """The changes for a message left `sending` by a process that died: in doubt, per recipient.

    The `sending` mark names the attempt's recipients (`attempt_to`); each of them that had
    not already got the message may or may not have it now.
    """
    outcomes = {r: dict(o) for r, o in (msg.get("recipients") or {}).items()}
    doubt = [r for r in msg.get("attempt_to") or []
             if (outcomes.get(r) or {}).get("outcome") not in SETTLED]
    for rcpt in doubt:
        outcomes[rcpt] = {"outcome": Outcome.IN_DOUBT.value, "reply": "interrupted",
                          "at": _iso(now)}
    changes: dict = {"state": S.IN_DOUBT, "recipients": outcomes, "sending": None,
                     "note": "mailflow stopped during the SMTP transaction; it may or may not "
                             "have been delivered"}
    if doubt:
        changes["remaining"] = still_to_receive(list(outcomes), outcomes) or None
    return changes


def sending_mark(boot: str | None, group: str, index: int, before: str) -> dict:
    """What a `sending` mark records of its send group: the boot it was made in (None:
    unknown), the group, the message's place in the group's order, and its state before."""
    return {"boot": boot, "group": group, "index": index, "from": before}


def settle_interrupted(left: Iterable[Mapping], boot: str | None
                       ) -> tuple[list[Mapping], list[Mapping]]:
    """Messages left `sending` by a process that died: (in doubt, never offered).

    Within a group, each outcome is handed to the kernel before the next SMTP transaction
    starts, and a kill keeps what the kernel has. So a process of the same boot knows that
    only the group's first message without an outcome can have been in flight; the later ones
    were never offered to the server. After a reboot (or when either boot is unknown) a power
    cut may have dropped outcomes, so every one of them is in doubt; so is a mark made before
    marks named their group (no `sending` field).
    """
    doubt: list[Mapping] = []
    groups: dict[str, list[Mapping]] = {}
    for msg in left:
        mark = msg.get("sending") or {}
        if boot is None or mark.get("boot") != boot or mark.get("group") is None:
            doubt.append(msg)
        else:
            groups.setdefault(mark["group"], []).append(msg)
    never: list[Mapping] = []
    for members in groups.values():
        first, *rest = sorted(members, key=lambda m: m["sending"].get("index", 0))
        doubt.append(first)
        never.extend(rest)
    return doubt, never


def not_attempted(msg: Mapping) -> dict:
    """The changes that put a message marked `sending` but never offered back as it was:
    its state before, and its attempt times without the attempt that never happened."""
    mark = msg.get("sending") or {}
    was = mark.get("from") or S.APPROVED
    return {"state": was, "sending": None,
            "attempts_at": list(msg.get("attempts_at") or [])[:-1]}


def confirmed_sent(msg: Mapping, who: str, now: dt.datetime) -> dict:
    """The changes when the consultant says an in-doubt message did go out (`--sent`)."""
    outcomes = {r: dict(o) for r, o in (msg.get("recipients") or {}).items()}
    for entry in outcomes.values():
        if entry.get("outcome") == Outcome.IN_DOUBT.value:
            entry.update(outcome=Outcome.DELIVERED.value, reply=f"confirmed by {who}")
    changes: dict = {"state": S.SENT, "note": f"confirmed sent by {who}",
                     "sent_at": msg.get("sent_at") or (msg.get("attempts_at") or [_iso(now)])[-1]}
    if outcomes:
        changes.update(recipients=outcomes, remaining=None, delivered_to=sorted(
            r for r, o in outcomes.items() if o.get("outcome") == Outcome.DELIVERED.value))
    return changes


def settle_from_sent(msg: Mapping, found: bool, folder: str, now: dt.datetime) -> dict | None:
    """The changes that settle an in-doubt message found in the Sent folder, or None.

    The Sent folder proves delivery only for a copy mailflow did not make itself: once it
    appended this message (`copied_at`, after an earlier partial delivery), finding it there
    says nothing about the attempt in doubt.
    """
    if not found or msg.get("copied_at") or msg.get("sent_copy"):
        return None
    at = (msg.get("attempts_at") or [_iso(now)])[-1]
    outcomes = {r: dict(o) for r, o in (msg.get("recipients") or {}).items()}
    for entry in outcomes.values():
        if entry.get("outcome") == Outcome.IN_DOUBT.value:
            entry.update(outcome=Outcome.DELIVERED.value, reply=f"found in {folder}")
    pending = [r for r, o in outcomes.items() if o.get("outcome") not in SETTLED]
    changes = {"state": S.RETRY if pending else S.SENT, "sent_copy": folder,
               "sent_at": msg.get("sent_at") or at, "recipients": outcomes,
               "delivered_to": sorted(r for r, o in outcomes.items()
                                      if o.get("outcome") == Outcome.DELIVERED.value)
               or list(msg.get("delivered_to") or []),
               "remaining": pending or None,
               "note": f"found in {folder} by its Message-ID"}
    if pending:
        changes["next_attempt"] = _iso(now)
    return changes
