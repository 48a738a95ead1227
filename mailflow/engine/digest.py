"""The digest's decisions (issue 13): when one is due, what it lists, what each number binds to.

Pure: the state, now and the [digest] settings come in; the desk composes, sends and records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from mailflow.config.settings import DigestConfig
from mailflow.engine.records import MessageState as S

MESSAGE_ID_PREFIX = "<mailflow-digest."  # the token follows: a reply threads only with it
PLUS_PREFIX = "digest-"  # you+digest-TOKEN@domain, when the sender uses sub-addressing
# a date the regular digest's slots are counted from (a Monday), so "weekly" means Mondays
_EPOCH = dt.date(2001, 1, 1)
# a digest (and the replies to it) is forgotten this long after it stops counting
# (`valid_for`): until then a late reply is refused as too old with the digest's date, after
# that as answering a digest too old to be kept; the table stays as small as a fortnight's
KEEP_AFTER_VALID = dt.timedelta(days=7)


@dataclass(frozen=True)
class Entry:
    """One numbered line of a digest: a draft to approve or a reply that needs action."""

    n: int
    kind: str  # "draft" | "reply"
    key: str  # message key or reply id
    content: str  # the draft's content digest when listed ("" for replies)


def content_digest(msg: dict) -> str:
    """What an approval by number binds to: subject, body, recipients and due time."""
    people = ",".join(p.get("email", "") for p in (msg.get("to") or []) + (msg.get("cc") or []))
    # attachments only when there are some: digests sent before they existed stay valid
    files = tuple(a.get("ref", "") for a in msg.get("attachments") or ())
    raw = "\x00".join((msg.get("subject") or "", msg.get("body") or "", people,
                       msg.get("due") or "", msg.get("late_hold") or "", *files))
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def entries(state, waiting_keys: set[str]) -> list[Entry]:  # noqa: ANN001 - store.State
    """The numbered entries: drafts awaiting approval (by due time), then replies needing action.

    `waiting_keys` are the message keys and reply ids that need the consultant now.
    """
    drafts = sorted((m for m in state.messages.values()
                     if m["state"] == S.AWAITING_APPROVAL and m["key"] in waiting_keys),
                    key=lambda m: (m.get("due") or "", m["key"]))
    replies = sorted((r for r in state.replies.values() if r["id"] in waiting_keys
                      and r.get("needs_action") and not r.get("handled")),
                     key=lambda r: (r.get("received_at") or "", r["id"]))
    out = [Entry(i, "draft", m["key"], content_digest(m)) for i, m in enumerate(drafts, 1)]
    out += [Entry(len(out) + i, "reply", r["id"], "") for i, r in enumerate(replies, 1)]
    return out


def last_slot(now: dt.datetime, config: DigestConfig, zone: ZoneInfo) -> dt.datetime:
    """The latest regular digest time at or before now (daily at `at`, or every N hours)."""
    hours, whole_days = config.every
    hh, mm = (int(x) for x in config.at.split(":"))
    local = now.astimezone(zone)
    if whole_days:
        days = hours // 24
        day = _EPOCH + dt.timedelta(days=((local.date() - _EPOCH).days // days) * days)
        slot = dt.datetime.combine(day, dt.time(hh, mm), zone)
        if slot > local:
            slot = dt.datetime.combine(day - dt.timedelta(days=days), dt.time(hh, mm), zone)
        return slot.astimezone(dt.UTC)
    start = dt.datetime.combine(local.date(), dt.time(hh, mm), zone)
    if start > local:
        start -= dt.timedelta(days=1)
    steps = int((local - start) / dt.timedelta(hours=hours))
    return (start + steps * dt.timedelta(hours=hours)).astimezone(dt.UTC)


def digest_due(now: dt.datetime, config: DigestConfig, zone: ZoneInfo, last: dict | None,
               waiting: list, urgent: set[str]) -> str | None:
    """Why a digest goes out now ("regular", "urgent"), or None.

    At most once per slot of `every`; at once when something urgent (a draft due within the
    next working day, a reply needing action) was not in the last digest as urgent.
    """
    if not config.enabled or not waiting:
        return None
    sent = dt.datetime.fromisoformat(last["sent_at"]) if last else None
    if urgent - set(last.get("urgent") or ()) if last else urgent:
        return "urgent"
    if sent is None or sent < last_slot(now, config, zone) <= now:
        return "regular"
    return None


def outbox_empty(state, config: DigestConfig, waiting: list) -> bool:  # noqa: ANN001 - State
    """Whether neither a digest nor a confirmation of a digest reply can go out now: the
    digest is off or nothing waits, and every confirmation went (desk.digest.send_outbox
    need not be loaded: it brings the email package with it)."""
    if config.enabled and waiting:
        return False
    return not any(d.get("kind") == "reply" and d.get("confirmation")
                   and not d.get("confirmed_at") and not d.get("confirming_at")
                   for d in state.digests.values())


def is_stale(digest: dict, now: dt.datetime, config: DigestConfig) -> bool:
    """Whether a digest is too old for a reply to it to act (`valid_for`)."""
    sent = dt.datetime.fromisoformat(digest["sent_at"])
    return now - sent > dt.timedelta(days=config.valid_for_days)


def forgotten(digests: dict[str, dict], now: dt.datetime, config: DigestConfig
              ) -> tuple[list[str], str]:
    """The digest records to drop at `now` (digests, and replies to them, older than
    `valid_for` plus KEEP_AFTER_VALID; a confirmation still to send stays), and that limit."""
    limit = (now - dt.timedelta(days=config.valid_for_days) - KEEP_AFTER_VALID
             ).astimezone(dt.UTC).isoformat(timespec="seconds")
    out = []
    for key, record in digests.items():
        at = record.get("sent_at") or record.get("received_at")
        if not at or at >= limit:
            continue
        if record.get("confirmation") and not record.get("confirmed_at"):
            continue  # still to be told: tried again every run until it goes
        out.append(key)
    return sorted(out), limit


def next_id(digests: dict[str, dict], floor: int) -> str:
    """A new digest's id: after every one kept and every one forgotten (`floor`)."""
    numbers = [int(k[1:]) for k in digests if k[:1] == "d" and k[1:].isdigit()]
    return f"d{max(numbers + [floor, 0]) + 1:05d}"


def forget_old(w, now: dt.datetime, config: DigestConfig) -> None:  # noqa: ANN001 - Writer
    """Drop digest records past `valid_for` and a margin, through one journal event that
    keeps the highest id and the limit (so ids never repeat, and a late reply is told why).
    Every run does it, whether or not it mails the consultant."""
    keys, limit = forgotten(w.state.digests, now, config)
    if keys:
        w.record("digest.forgotten", at=now, drop={"digests": keys},
                 digest_floor=max(number_of(k) for k in keys), digests_before=limit)


def number_of(key: str) -> int:
    """The number in a digest's id ("d00012" -> 12); 0 for a reply's record."""
    return int(key[1:]) if key[:1] == "d" and key[1:].isdigit() else 0
