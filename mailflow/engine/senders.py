"""Which identity each message goes out as, and each identity's own throttle (issue 15).

A message keeps the address it was drafted to go out as (`sender_email`), so a retry is the
very same message; one recorded before identities existed goes out as its engagement's lead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from typing import Any

from mailflow.boot import boot_id
from mailflow.config.loading import schedule
from mailflow.config.settings import Identity
from mailflow.engine import sending
from mailflow.engine.outcomes import Transport
from mailflow.engine.records import MessageState as S
from mailflow.errors import ConfigError, MailflowError
from mailflow.store import now_iso

# `tick` below is an engine.tick.Tick (not imported: tick.py imports this module)
Tick = Any

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


def budgets(tick: Tick) -> tuple[Mapping[str, int], Callable[[dict], str]]:
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

    def work_out() -> dict[str, int]:
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
        return out

    return _WorkedOutWhenAsked(work_out), group_of


class _WorkedOutWhenAsked(Mapping[str, int]):
    """The budgets, counted on first use: counting walks every message the store holds,
    and a tick with nothing inside its send window never asks (issue 18)."""

    def __init__(self, work_out: Callable[[], dict[str, int]]) -> None:
        self._work_out = work_out
        self._data: dict[str, int] | None = None

    def _get(self) -> dict[str, int]:
        if self._data is None:
            self._data = self._work_out()
        return self._data

    def __getitem__(self, key: str) -> int:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def by_identity(tick: Tick, due: list[dict]) -> list[tuple[Identity, list[dict]]]:
    """The due messages per identity, in order; one whose identity is gone is blocked."""
    groups: dict[str, tuple[Identity, list[dict]]] = {}
    for msg in due:
        eng = tick.state.engagements.get(msg["engagement"]) or {}
        try:
            ident = tick.loaded.identity_of(msg, eng)
        except ConfigError as err:
            tick.mark(msg, "message.blocked", state=S.BLOCKED, error=str(err))
            tick.report.problems.append(f"{msg['key']}: not sent: {err}")
            tick.report.codes.add(err.exit_code)
            continue
        groups.setdefault(ident.email.lower(), (ident, []))[1].append(msg)
    return list(groups.values())


def send_as(tick: Tick, ident: Identity, due: list[dict],
            open_transport: Callable[[Identity], Transport], bar: Any
            ) -> list[tuple[dict, bytes]]:
    """One identity's batch over one connection, opened only when it has something due.

    Messages go in groups of `[schedule] send_batch` (k): the group's `sending` marks (each
    naming the boot, the group and its place in it) are made durable by one fsync before any
    of its SMTP transactions, and the outcomes by one fsync after them. Each outcome is handed
    to the kernel before the next transaction starts, so after a kill the next run (same
    boot) finds in doubt only the message in flight and puts the group's later ones back;
    after a power cut (another boot) the whole group is in doubt. Never resent blindly.
    """
    delivered: list[tuple[dict, bytes]] = []
    several = len(tick.loaded.config.identities) > 1

    def said(err: MailflowError) -> str:
        return f"{ident.label}: {err}" if several else str(err)

    try:
        transport = open_transport(ident)
    except MailflowError as err:  # e.g. an identity without [smtp]
        tick.report.problems.append(said(err))
        tick.report.codes.add(err.exit_code)
        tick.report.deferred += len(due)
        return delivered
    k = max(1, int(schedule(tick.loaded.config, "send_batch")))
    boot = boot_id()
    with closing(transport):
        try:
            transport.connect()  # a refused login or unreachable server changes nothing
        except MailflowError as err:
            tick.report.problems.append(said(err))
            tick.report.codes.add(err.exit_code)
            tick.report.deferred += len(due)
            return delivered
        for start in range(0, len(due), k):
            chunk = due[start:start + k]
            group = _mark_sending(tick, chunk, boot)
            tick.w.commit()  # durable before the transactions: if we die now, the next run knows
            stopped = _send_group(tick, transport, ident.email, group, said, delivered, bar)
            tick.w.commit()  # the group's outcomes, durable at once
            if stopped:
                tick.report.deferred += len(due) - start - len(chunk)
                break
    return delivered


def _mark_sending(tick: Tick, group: list[dict], boot: str | None
                  ) -> list[tuple[dict, bytes, list[str], str]]:
    """Build each message of a group and mark it `sending` (made durable by the caller)."""
    built: list[tuple[dict, bytes, list[str], str]] = []
    gid = os.urandom(6).hex()  # unique enough: only one run's groups are ever left `sending`
    for msg in group:
        try:
            raw, rcpts = tick.wire(msg)
        except MailflowError as err:
            # this message cannot be built (a body lost, an address gone bad): it
            # alone waits for the consultant; nothing was offered to the server
            tick.mark(msg, "message.blocked", state=S.BLOCKED, error=str(err))
            tick.report.problems.append(f"{msg['key']}: not sent: {err}")
            continue
        before = msg["state"]
        tick.mark(msg, "message.sending", state=S.SENDING, attempt_to=rcpts,
                  sending=sending.sending_mark(boot, gid, len(built), before),
                  append={"attempts_at": now_iso(tick.now)})
        built.append((msg, raw, rcpts, before))
    return built


def _send_group(tick: Tick, transport: Transport, sender: str,
                group: list[tuple[dict, bytes, list[str], str]],
                said: Callable[[MailflowError], str], delivered: list[tuple[dict, bytes]],
                bar: Any) -> bool:
    """The SMTP transactions of one marked group; True when the connection is lost for good
    (the rest of the group is unmarked, untouched)."""
    for i, (msg, raw, rcpts, _) in enumerate(group):
        try:
            result = transport.send(raw, sender, rcpts)
        except MailflowError as err:
            # the connection failed before the message body went out: undo the marks of
            # this message and of the group's others, none of which was offered
            for other, _, _, was in group[i:]:
                tick.mark(other, "message.not_sent", state=was, note=str(err), sending=None)
            _write_through(tick)
            tick.report.problems.append(said(err))
            tick.report.codes.add(err.exit_code)
            tick.report.deferred += len(group) - i - 1
            return True
        except Exception as err:  # noqa: BLE001 - a transport's bug, not the batch's
            # nobody knows how far it got: in doubt (never resent blindly), and the
            # connection is started afresh for the rest of the batch
            tick.mark(msg, "message.in_doubt", **sending.interrupted(msg, tick.now))
            _write_through(tick)
            tick.report.problems.append(
                f"{msg['key']}: in doubt: the transport failed ({type(err).__name__}: "
                f"{err}); `mailflow drafts resolve {msg['key']} --sent|--resend`")
            transport.close()
            continue
        got = tick._record_result(msg, result, durable=False)
        _write_through(tick)  # before the next transaction starts: see send_as
        if got:
            delivered.append((msg, raw))
        if bar is not None:
            bar.update(1)
    return False


def _write_through(tick: Tick) -> None:
    """Commit the outcome just recorded as its own group and hand it to the kernel (no fsync):
    a kill from now on keeps it, which is what lets the next run of this boot put the group's
    later messages back instead of leaving them in doubt (Tick.settle_interrupted)."""
    tick.w.commit(sync=False)
    tick.w.flush()
