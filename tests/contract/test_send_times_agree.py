"""Every view gives one time for one message at one `now` (issue 13, point 4), as a property.

A hypothesis state machine drives two engagements (New York, and Berlin across its DST
change) through ticks, approvals that come late or never, rejections, pauses lifted, and
servers refusing for a while; after each step, and at moments ahead without a tick, `plan`,
`status`, `drafts` and `engagement show` (desk/views over engine/schedule) and the function
behind the cron lines, the digest and the approval confirmations (engine/schedule
.send_time_for) must give each message the same time, never one already past for a message
still to go out.
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from mailflow.engine.records import PENDING
from tests.helpers import MACHINE_ENGAGEMENTS as ENGAGEMENTS
from tests.helpers import two_engagements_machine

START_ZONE = ZoneInfo("America/New_York")


class SendTimes(two_engagements_machine()):
    """Ticks, approvals, rejections, pauses and refusals; the views checked after each."""

    def __init__(self) -> None:
        super().__init__()
        self.checked = 0

    @rule(ahead=st.sampled_from([dt.timedelta(minutes=50), dt.timedelta(days=2),
                                 dt.timedelta(days=9)]))
    def the_consultant_looks_ahead(self, ahead: dt.timedelta) -> None:
        self.agree(self.now + ahead)

    @rule()
    def every_promise_is_kept(self) -> None:
        """The consultant approves everything now, and whatever comes up later as soon as it
        does; servers take everything: each message then goes out at the time promised now,
        and cron need not run in between (a tick at each promised time, twice: drafted, then
        approved and sent)."""
        from mailflow.engine.schedule import send_time_for
        t = self.p.transport
        t.down = None
        t._script.clear()  # noqa: SLF001 - no refusal scripted any more
        t._message_script.clear()  # noqa: SLF001
        self.p.approve_all(self.when)
        state, loaded = self.p.state(), self.p.loaded
        now = self.p.at(self.when).astimezone(dt.UTC)
        promised = {k: send_time_for(loaded, state, m, now) for k, m in state.messages.items()
                    if m["state"] in PENDING and m["state"] != "blocked"
                    and state.engagements[m["engagement"]]["status"] == "active"}
        for at in sorted(set(promised.values()))[:12]:
            self.now = at.astimezone(START_ZONE).replace(tzinfo=None)
            self.p.tick(self.when)
            self.p.approve_all(self.when)
            self.p.tick(self.when)
            for key, sent in self._sent(promised).items():
                assert sent == promised[key], (key, sent, promised[key])
        last = sorted(set(promised.values()))[:12][-1:] or [now]
        for key, when in promised.items():
            if when <= last[0]:
                assert self._sent(promised).get(key) == when, (key, when)

    def _sent(self, promised: dict) -> dict[str, dt.datetime]:
        """When each promised message reached the last of its recipients. One delivered to
        some and retrying for the rest keeps its first `sent_at` and is promised the retry's
        time, which is when the rest get it: it has not gone out until then."""
        out = {}
        for k, m in self.p.messages.items():
            if k not in promised or not m.get("sent_at") or m["state"] == "retry":
                continue
            times = [dt.datetime.fromisoformat(r["at"])
                     for r in (m.get("recipients") or {}).values()
                     if r.get("outcome") == "delivered" and r.get("at")]
            out[k] = max(times, default=dt.datetime.fromisoformat(m["sent_at"]))
        return out

    @invariant()
    def every_view_gives_one_time(self) -> None:
        self.agree(self.now)

    def agree(self, local_now: dt.datetime) -> None:
        from mailflow.desk import views
        from mailflow.desk.drafts import draft_rows
        from mailflow.desk.status import status_grid
        from mailflow.engine.schedule import send_time_for
        now = self.p.at(local_now.isoformat()).astimezone(dt.UTC)
        state, loaded = self.p.state(), self.p.loaded
        plan = views.preview(state, loaded, now)
        assert not plan.errors, plan.errors
        shown: dict[str, dict[str, str | None]] = {}

        def put(view: str, key: str, at: str | dt.datetime | None) -> None:
            at = at.isoformat() if isinstance(at, dt.datetime) else at
            shown.setdefault(key, {})[view] = at

        for eid, items in plan.items.items():
            msgs = {m["key"]: m for m in state.messages_of(eid)}
            for row in views.plan_rows(items, msgs, "UTC", plan.when):
                if row["id"] in msgs:
                    put("plan", row["id"], row["when"])
        for row in draft_rows(state, loaded, now, all_states=True):
            put("drafts", row["id"], row["goes_out"])
        for row in status_grid(state, loaded, now).rows:
            for stage, cell in row.data["stages"].items():
                key = f"{row.id}/{stage}/0"
                if cell.get("goes_out") or key in shown:
                    put("status", key, cell.get("goes_out"))
        for eid in ENGAGEMENTS:
            for row in views.message_rows(state, state.engagements[eid], plan):
                if state.messages[row["id"]]["state"] in PENDING:
                    put("engagement show", row["id"], row["when"])
        for key, msg in state.messages.items():
            if msg["state"] in PENDING:
                when = send_time_for(loaded, state, msg, now)
                put("confirmation", key, when)
                assert when is not None and when >= now, (key, msg["state"], when, now)
        for key, views_of in shown.items():
            if state.messages.get(key, {}).get("state") in PENDING:
                assert len(set(views_of.values())) == 1, (key, local_now, views_of)
                self.checked += 1


# SENDTIMES_EXAMPLES=200 for a longer hunt than the suite's
EXAMPLES = int(os.environ.get("SENDTIMES_EXAMPLES", "12"))

SendTimes.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_send_times_agree = SendTimes.TestCase
