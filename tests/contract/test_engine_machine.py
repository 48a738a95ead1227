"""A hypothesis state machine over the engine with the in-memory transport and mailbox.

It interleaves adding engagements, editing and approving drafts, pausing, clients replying,
servers refusing, losing connections or going down, the process dying mid-transaction, the
consultant resolving what is in doubt, and ticks through weeks of time; after every step it
checks that nobody got a message twice, nothing went out unapproved or paused or unedited, and
every message is in a legal state that agrees with what the transport saw.

Two rules die through the real fault injector (mailflow/faults.py) instead of an exception: a
tick, or `drafts approve --all`, runs in a forked child that ends itself, as a kill or a power
cut, at one of its durability points on the file store (counted first in another child); the
parent then reloads the state and every invariant above must hold, plus: the state loads
whole, every confirmed approval is kept, and an approval of several drafts is all or nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pickle
import shutil
import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from mailflow import faults
from mailflow.engine.outcomes import Outcome
from mailflow.transport.memory import Accepted, MemoryTransport
from tests.helpers import SeamProject, forked, header, reply

STATES = {"planned", "awaiting_approval", "approved", "rejected", "sending", "sent", "retry",
          "failed", "in_doubt", "blocked", "cancelled", "bounced"}
# once a message reached one of these, it never goes back to a state before sending
AFTER_SENDING = {"sent", "failed", "bounced"}
ENGAGEMENTS = {
    "northwind-2026": ("mj.alvarez@northwind.example", "tom.becker@northwind.example"),
    "bookshop": ("contact@bücher.example", "it@bookshop.example"),
    "umlaut": ("jürgen@bücher.example", "ops@umlaut.example"),  # needs SMTPUTF8
}
START = dt.datetime(2026, 12, 28, 8, 0)  # the first drafts are due within review_days


class Killed(BaseException):
    """The process died (a kill, an OOM) in the middle of an SMTP transaction."""


class DyingTransport(MemoryTransport):
    """The in-memory transport, which can take a message and then let the process die."""

    die_after_next: bool = False

    def send(self, raw, sender, recipients):  # noqa: ANN001, ANN201
        before = len(self.accepted)
        got = super().send(raw, sender, recipients)
        if self.die_after_next:
            self.die_after_next = False
            if len(self.accepted) > before:  # the server has it; mailflow never heard so
                took = self.accepted[-1]
                took.in_doubt, took.confirmed = True, []
            raise Killed
        return got


def in_crashing_child(p: SeamProject, act, at: int, mode: str) -> tuple[int, list]:  # noqa: ANN001
    """Run `act()` in a forked child armed to end itself at durability point `at` of the file
    store (`faults`, as `MAILFLOW_CRASH_AT` does), as a kill or a power cut; returns its exit
    status and what its in-memory servers saw, in order (the parent's copies never see it):
    ("accepted", Accepted), ("script", transport scripting left), ("appended", folder, raw,
    when), and ("points", how many it passed) when it finished. Each is written to a pipe
    as it happens, so a crash loses none of them."""
    def child(fd: int) -> int:
        try:
            _report_to(fd, p)
            faults.arm(at, mode)
            with contextlib.suppress(Killed):
                act()
            _frame(fd, ("points", faults.count()))
        except BaseException:  # noqa: BLE001 - the parent fails on the status
            return 3
        return 0

    code, data = forked(child)
    frames, i = [], 0
    while i < len(data):
        (size,) = struct.unpack_from("!I", data, i)
        frames.append(pickle.loads(bytes(data[i + 4:i + 4 + size])))
        i += 4 + size
    return code, frames


def _frame(fd: int, item: tuple) -> None:
    blob = pickle.dumps(item)
    os.write(fd, struct.pack("!I", len(blob)) + blob)


def _report_to(fd: int, p: SeamProject) -> None:
    """In the child: every message the servers take goes to the parent at once."""
    t, mb = p.transport, p.mailbox

    def frame(item: tuple) -> None:
        _frame(fd, item)

    send, append = t.send, mb.append

    def reporting_send(raw, sender, recipients):  # noqa: ANN001, ANN202
        before = len(t.accepted)
        try:
            return send(raw, sender, recipients)
        finally:
            for took in t.accepted[before:]:
                frame(("accepted", took))
            frame(("script", t._script, t._message_script, t.die_after_next))

    def reporting_append(folder, raw, flags=(b"\\Seen",), when=None):  # noqa: ANN001, ANN202
        append(folder, raw, flags, when)
        frame(("appended", folder, raw, when))

    t.send, mb.append = reporting_send, reporting_append


class EngineMachine(RuleBasedStateMachine):
    """The engine through weeks of ticks, with everything that can go wrong going wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="mailflow-machine-"))
        self.p = SeamProject(self.tmp)
        self.p.transport = DyingTransport()
        self.now = START
        self.added: set[str] = set()
        self.replied: set[str] = set()
        self.paused_sent: dict[str, int | None] = {}  # engagement -> sent when it was paused
        # Message-ID -> the subject it was last edited to, and how many client copies the
        # servers had taken by then (a copy taken before the edit went out before it: the
        # consultant said it did not, resolving it in doubt as --resend, and was wrong)
        self.edited: dict[str, tuple[str, int]] = {}
        self.approved: set[str] = set()  # keys whose approval was confirmed (saved)

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def when(self) -> str:
        return self.now.isoformat(timespec="minutes")

    # -- what people and servers do --------------------------------------------------------------

    @rule(eid=st.sampled_from(sorted(ENGAGEMENTS)))
    def add_engagement(self, eid: str) -> None:
        if eid in self.added:
            return
        to, cc = ENGAGEMENTS[eid]
        path = self.p.proj.write_engagement(eid, self.p.proj.example(**{
            r'^id = "northwind-2026"': f'id = "{eid}"', r"^client = .*$": f'client = "{eid}"',
            r"mj\.alvarez@northwind\.example": to, r"tom\.becker@northwind\.example": cc}))
        self.p.add(path, when=self.when)
        self.added.add(eid)

    @initialize()
    def the_first_engagement(self) -> None:
        self.add_engagement("northwind-2026")

    @rule(step=st.sampled_from([dt.timedelta(minutes=20), dt.timedelta(hours=3),
                                dt.timedelta(days=1), dt.timedelta(days=4)]),
          approve=st.booleans())
    def tick(self, step: dt.timedelta, approve: bool) -> None:
        self.now += step
        if approve:  # the consultant approves what waits, then cron runs
            self.approved.update(self.p.approve_all(self.when))
        # a death mid-transaction: the next tick finds the message `sending`, in doubt
        with contextlib.suppress(Killed):
            self.p.tick(self.when)

    @rule(step=st.sampled_from([dt.timedelta(hours=1), dt.timedelta(days=2)]))
    def cron_runs_through_a_quiet_stretch(self, step: dt.timedelta) -> None:
        self.tick(step, approve=True)

    @rule()
    def approve_drafts(self) -> None:
        self.approved.update(self.p.approve_all(self.when))

    # -- the process dies at a durability point (the real injector, issue 11 item 5) ----------

    @rule(step=st.sampled_from([dt.timedelta(minutes=20), dt.timedelta(hours=3),
                                dt.timedelta(days=1)]),
          at=st.integers(1, 500), mode=st.sampled_from(["kill", "powercut"]))
    def cron_dies_at_a_durability_point(self, step: dt.timedelta, at: int, mode: str) -> None:
        """A tick in a child that ends itself at one of its K durability points (counted
        first, on a copy): what its servers took is folded into the parent's servers."""
        self.now += step
        when = self.when
        points = self._points(lambda: self.p.tick(when))
        if not points:
            return  # a tick with nothing durable to do: nowhere to die
        status, frames = in_crashing_child(self.p, lambda: self.p.tick(when),
                                           1 + (at - 1) % points, mode)
        assert status in (0, faults.CRASH_EXIT), f"the tick failed in the child ({status})"
        t, mb = self.p.transport, self.p.mailbox
        took: list[Accepted] = []
        for item in frames:
            if item[0] == "accepted":
                took.append(item[1])
                t.accepted.append(item[1])
            elif item[0] == "script":
                t._script, t._message_script, t.die_after_next = item[1:]
            else:  # a copy filed in Sent, even while the parent's mailbox is "down"
                _, folder, raw, when_ = item
                mb.folders.setdefault(folder, type(next(iter(mb.folders.values())))(1))
                mb.deliver(folder, raw, when_)
                mb.appended.append((folder, raw))
        # mailflow heard "delivered" only if it recorded so durably before it died; any other
        # acceptance is in doubt to it, as with DyingTransport
        by_mid = {m.get("message_id"): m for m in self.p.messages.values()}
        for accepted in took:
            mid = str(header(accepted.raw, "Message-ID"))
            outcomes = (by_mid.get(mid) or {}).get("recipients") or {}
            heard = [r for r in accepted.confirmed
                     if (outcomes.get(r) or {}).get("outcome") == "delivered"]
            if heard != accepted.confirmed:
                accepted.confirmed, accepted.in_doubt = heard, True

    @rule(at=st.integers(1, 500), mode=st.sampled_from(["kill", "powercut"]))
    def the_consultant_approves_and_dies(self, at: int, mode: str) -> None:
        """`drafts approve --all` killed at a point: every draft approved, or none."""
        waiting = sorted(k for k, m in self.p.messages.items()
                         if m["state"] == "awaiting_approval")
        when = self.when
        points = self._points(lambda: self.p.approve_all(when))
        if not points:
            return
        status, _ = in_crashing_child(self.p, lambda: self.p.approve_all(when),
                                      1 + (at - 1) % points, mode)
        assert status in (0, faults.CRASH_EXIT), f"approving failed in the child ({status})"
        after = self.p.messages
        done = {k for k in waiting if after[k]["state"] == "approved"}
        assert done in (set(), set(waiting)), f"approve --all half done: {sorted(done)}"
        if status == 0:
            self.approved.update(done)

    def _points(self, act) -> int:  # noqa: ANN001
        """How many durability points `act` passes, counted in a child on the state as it
        is now (which is put back afterwards, so the count leaves no trace)."""
        state_dir = self.p.proj.project.state_dir
        kept = self.tmp / "before-count"
        shutil.copytree(state_dir, kept)
        try:
            status, frames = in_crashing_child(self.p, act, 0, "count")
        finally:
            shutil.rmtree(state_dir)
            kept.rename(state_dir)
        assert status == 0, f"counting failed in the child ({status})"
        return next((f[1] for f in frames if f[0] == "points"), 0)

    @rule(fault=st.sampled_from([
        ("refuse", "to", Outcome.TEMPORARY), ("refuse", "cc", Outcome.TEMPORARY),
        ("refuse", "cc", Outcome.PERMANENT), ("refuse", "cc", Outcome.IN_DOUBT),
        ("message", "drop"), ("message", Outcome.TEMPORARY), ("message", Outcome.IN_DOUBT),
        ("die",), ("smtp", True), ("smtp", False), ("imap", True), ("imap", False),
        ("provider_copy",)]))
    def something_goes_wrong_or_right_again(self, fault: tuple) -> None:
        t = self.p.transport
        if fault[0] == "refuse":  # the next attempt to this recipient, in every engagement
            _, who, outcome = fault
            for to, cc in ENGAGEMENTS.values():
                t.answer(to if who == "to" else cc, outcome, f"{outcome.value} by the test",
                         address_refused=outcome is Outcome.PERMANENT)
        elif fault[0] == "message":  # the next message as a whole
            t.answer_message(fault[1], "" if fault[1] == "drop" else "451 later")
        elif fault[0] == "die":
            t.die_after_next = True
        elif fault[0] == "provider_copy":  # the provider files what it took in Sent itself
            for took in t.accepted:
                if took.in_doubt:
                    self.p.mailbox.deliver("Sent", took.raw)
        elif fault[0] == "smtp":
            t.down = "connection refused" if fault[1] else None
        else:
            self.p.mailbox.down = "connection refused" if fault[1] else None

    @rule(data=st.data())
    def a_client_replies(self, data) -> None:  # noqa: ANN001
        sent = sorted(k for k, m in self.p.messages.items() if m.get("sent_at"))
        if not sent:
            return
        key = data.draw(st.sampled_from(sent))
        n = len(self.replied)
        self.p.mailbox.deliver("INBOX", reply(self.p.messages[key], "Thanks, noted.",
                                              mid=f"<r{n}@northwind.example>"))
        self.replied.add(key)

    @rule(data=st.data())
    def the_consultant_edits_a_draft(self, data) -> None:  # noqa: ANN001
        from mailflow.desk.actions import apply_edit
        drafts = sorted(k for k, m in self.p.messages.items()
                        if m["state"] in ("awaiting_approval", "approved"))
        if not drafts:
            return
        key = data.draw(st.sampled_from(drafts))
        from mailflow.errors import StateError
        with self.p.store.writer() as w:
            msg = w.state.messages[key]
            got = [r for r, o in (msg.get("recipients") or {}).items()
                   if o.get("outcome") == "delivered"]
            try:
                apply_edit(w, msg, f"Edited {len(self.edited)}", "<p>Edited</p>",
                           "Edited", "test", self.p.at(self.when))
            except StateError:
                # someone already has it: the rest must get the same words, so no edit
                assert got, f"{key} refused an edit although nobody has it"
                return
            assert not got, f"{key} was edited after it reached {got}"
            w.save()
        self.edited[self.p.messages[key]["message_id"]] = (f"Edited {len(self.edited)}",
                                                           len(self.p.client_accepted))

    @invariant()
    def an_edited_draft_goes_out_as_edited(self) -> None:
        for i, accepted in enumerate(self.p.client_accepted):
            mid = str(header(accepted.raw, "Message-ID"))
            subject, taken_before = self.edited.get(mid, (None, 0))
            if subject is not None and i >= taken_before:
                assert str(header(accepted.raw, "Subject")) == subject

    @rule(eid=st.sampled_from(sorted(ENGAGEMENTS)), pause=st.booleans())
    def the_consultant_pauses_or_resumes(self, eid: str, pause: bool) -> None:
        from mailflow.desk.actions import set_status
        eng = self.p.state().engagements.get(eid)
        if eng is None or eng["status"] not in ("active", "paused"):
            return
        with self.p.store.writer() as w:
            set_status(w, eid, "paused" if pause else "active", self.p.at(self.when))
            w.save()
        self.paused_sent[eid] = self._sent_for(eid) if pause else None

    def _sent_for(self, eid: str) -> int:
        ids = {m.get("message_id") for m in self.p.messages.values() if m["engagement"] == eid}
        return sum(str(header(a.raw, "Message-ID")) in ids
                   for a in self.p.client_accepted)

    @invariant()
    def nothing_goes_out_for_a_paused_engagement(self) -> None:
        for eid, count in self.paused_sent.items():
            if count is not None:
                assert self._sent_for(eid) == count, f"{eid}: sent while paused"

    @precondition(lambda self: any(m["state"] == "in_doubt"
                                   for m in self.p.messages.values()))
    @rule(data=st.data(), sent=st.booleans())
    def the_consultant_resolves_a_message_in_doubt(self, data, sent: bool) -> None:  # noqa: ANN001
        doubt = sorted(k for k, m in self.p.messages.items() if m["state"] == "in_doubt")
        self.p.resolve(data.draw(st.sampled_from(doubt)), sent, self.when)

    # -- what must always hold ---------------------------------------------------------------

    def _confirmed(self) -> dict[tuple[str, str], int]:
        got: dict[tuple[str, str], int] = {}
        for accepted in self.p.client_accepted:
            mid = str(header(accepted.raw, "Message-ID"))
            for rcpt in accepted.confirmed:
                got[(mid, rcpt)] = got.get((mid, rcpt), 0) + 1
        return got

    @invariant()
    def the_state_loads_whole_and_confirmed_approvals_stay(self) -> None:
        for key, msg in self.p.messages.items():
            missing = [f for f in ("engagement", "stage", "due", "state") if f not in msg]
            assert not missing, f"{key}: no {missing}"
        for key in self.approved:
            history = [h["state"] for h in self.p.messages[key].get("history", [])]
            assert "approved" in history, f"{key}: its confirmed approval is gone: {history}"

    @invariant()
    def nobody_gets_a_message_twice(self) -> None:
        twice = {k: n for k, n in self._confirmed().items() if n > 1}
        assert not twice, twice

    @invariant()
    def nothing_goes_out_unapproved(self) -> None:
        by_mid = {m.get("message_id"): m for m in self.p.messages.values()}
        for accepted in self.p.client_accepted:
            mid = str(header(accepted.raw, "Message-ID"))
            msg = by_mid.get(mid)
            assert msg is not None, f"{mid} went out but no message has that Message-ID"
            assert msg.get("approved_by"), f"{msg['key']} went out unapproved"

    @invariant()
    def every_message_is_in_a_legal_state_that_agrees_with_the_transport(self) -> None:
        confirmed = self._confirmed()
        for key, msg in self.p.messages.items():
            state = msg["state"]
            assert state in STATES, f"{key}: unknown state {state!r}"
            history = [h["state"] for h in msg.get("history", [])]
            assert history and history[0] == "planned", f"{key}: history {history}"
            if "sending" in history:
                first = history.index("sending")
                assert "planned" not in history[first:], f"{key}: re-planned after sending"
            for rcpt, outcome in (msg.get("recipients") or {}).items():
                vouched = outcome["reply"].startswith(("found in", "confirmed by"))
                if outcome["outcome"] == "delivered" and not vouched:
                    assert confirmed.get((msg["message_id"], rcpt)), \
                        f"{key}: {rcpt} recorded delivered but the transport never said so"
            if state == "sent":
                assert msg.get("delivered_to"), f"{key}: sent to nobody"
            if state in AFTER_SENDING and msg.get("attempts_at"):
                assert msg.get("message_id")


# MACHINE_EXAMPLES=150 for a longer hunt than the suite's
EXAMPLES = int(os.environ.get("MACHINE_EXAMPLES", "10"))

EngineMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_engine_machine = EngineMachine.TestCase
