"""The sending decisions as pure functions: due selection, throttle, retries, outcomes."""

from __future__ import annotations

import datetime as dt

from mailflow.engine import sending
from mailflow.engine.outcomes import Delivery, Outcome, RecipientOutcome

NOW = dt.datetime(2026, 12, 30, 15, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
LIFETIME = dt.timedelta(hours=72)


def iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="seconds")


def msg(key: str, state: str = "approved", due: dt.datetime = NOW - HOUR, **extra) -> dict:
    return {"key": key, "engagement": key.split("/")[0], "stage": "s", "step": 0,
            "state": state, "due": iso(due), **extra}


ACTIVE = {"e": {"id": "e", "status": "active"}, "f": {"id": "f", "status": "active"},
          "p": {"id": "p", "status": "paused"}}


def always_open(m: dict, eng: dict) -> dt.datetime:
    return NOW


def pick(messages: list[dict], budget: int = 100, opens=always_open) -> sending.DueSelection:
    return sending.select_due({m["key"]: m for m in messages}, ACTIVE, NOW, budget, opens)


# -- due selection ------------------------------------------------------------------------

def test_due_approved_messages_and_ripe_retries_go_oldest_first():
    got = pick([msg("e/b", due=NOW - HOUR), msg("e/a", due=NOW - 2 * HOUR),
                msg("f/r", state="retry", next_attempt=iso(NOW - dt.timedelta(minutes=1))),
                msg("f/later", state="retry", next_attempt=iso(NOW + HOUR)),
                msg("e/future", due=NOW + HOUR), msg("e/draft", state="awaiting_approval")])
    assert [m["key"] for m in got.due] == ["e/a", "e/b", "f/r"]
    assert got.deferred == 0


def test_paused_engagements_and_unsent_predecessors_hold_a_message_back():
    first = msg("e/first", state="awaiting_approval", due=NOW - 2 * HOUR)
    got = pick([first, msg("e/second", after="e/first"), msg("p/x")])
    assert got.due == []
    first["state"] = "sent"
    assert [m["key"] for m in pick([first, msg("e/second", after="e/first")]).due] == \
        ["e/second"]


def test_outside_the_window_and_over_the_limit_are_deferred_not_dropped():
    def opens(m: dict, eng: dict) -> dt.datetime:
        return NOW + HOUR if m["key"] == "e/night" else NOW
    got = pick([msg("e/night", due=NOW - 3 * HOUR), msg("e/a"), msg("e/b"), msg("e/c")],
               budget=2, opens=opens)
    assert [m["key"] for m in got.due] == ["e/a", "e/b"]
    assert (got.outside_window, got.over_limit, got.deferred) == (1, 1, 2)


# -- throttle -----------------------------------------------------------------------------

def test_the_budget_counts_attempts_in_the_last_minute_and_day():
    minute_ago = iso(NOW - dt.timedelta(seconds=30))
    hours_ago = iso(NOW - 3 * HOUR)
    old = iso(NOW - dt.timedelta(days=2))
    messages = [{"attempts_at": [minute_ago, hours_ago]}, {"attempts_at": [old]}, {}]
    assert sending.throttle_budget(messages, NOW, per_minute=5, per_day=100) == 4
    assert sending.throttle_budget(messages, NOW, per_minute=5, per_day=3) == 1
    assert sending.throttle_budget(messages, NOW, per_minute=1, per_day=0) == 0
    assert sending.throttle_budget(messages, NOW, per_minute=0, per_day=0) >= 10**6


# -- retries ------------------------------------------------------------------------------

def test_retries_back_off_and_stop_at_the_lifetime():
    attempts, now, gaps = [], NOW, []
    while True:
        attempts.append(iso(now))
        nxt = sending.next_attempt(attempts, now, dt.timedelta(hours=6))
        if nxt is None:
            break
        gaps.append(nxt - now)
        now = nxt
    assert gaps[0] == dt.timedelta(minutes=5) and gaps == sorted(gaps)
    assert now - NOW <= dt.timedelta(hours=6) and len(attempts) < 10


def test_a_server_hint_is_honoured_when_longer_than_the_backoff():
    got = sending.next_attempt([iso(NOW)], NOW, LIFETIME, hint=2 * HOUR)
    assert got == NOW + 2 * HOUR


def test_only_recipients_neither_delivered_nor_refused_for_good_are_tried_again():
    outcomes = {"a@x": {"outcome": "delivered"}, "b@x": {"outcome": "temporary"},
                "c@x": {"outcome": "permanent"}, "d@x": {"outcome": "in_doubt"}}
    assert sending.still_to_receive(["a@x", "b@x", "c@x", "d@x", "e@x"], outcomes) == \
        ["b@x", "d@x", "e@x"]


# -- recording one attempt ------------------------------------------------------------------

def delivery(**by_rcpt: tuple) -> Delivery:
    return Delivery({f"{r}@x": RecipientOutcome(*o) for r, o in by_rcpt.items()}, "250 OK")


def sending_msg(**extra) -> dict:
    extra.setdefault("attempts_at", [iso(NOW)])
    return msg("e/m", state="sending", **extra)


def test_all_delivered_is_sent():
    rec = sending.record_delivery(sending_msg(), delivery(a=(Outcome.DELIVERED, "250 OK")),
                                  NOW, LIFETIME)
    assert rec.changes["state"] == "sent" and rec.changes["sent_at"] == iso(NOW)
    assert rec.delivered and not rec.problems and rec.kind == "message.sent"


def test_a_partial_delivery_retries_the_rest_and_keeps_each_outcome():
    rec = sending.record_delivery(
        sending_msg(), delivery(a=(Outcome.DELIVERED, "250 OK"),
                                b=(Outcome.TEMPORARY, "452 full")), NOW, LIFETIME)
    c = rec.changes
    assert c["state"] == "retry" and c["remaining"] == ["b@x"] and c["delivered_to"] == ["a@x"]
    assert c["recipients"]["b@x"] == {"outcome": "temporary", "reply": "452 full",
                                      "at": iso(NOW), "retry_at": c["next_attempt"]}
    assert rec.retrying and rec.delivered and c["sent_at"] == iso(NOW)
    # the retry delivers the rest: the first delivery is kept, not forgotten
    later = NOW + HOUR
    again = {**sending_msg(), **c, "attempts_at": [iso(NOW), iso(later)]}
    rec2 = sending.record_delivery(again, delivery(b=(Outcome.DELIVERED, "250 OK")), later,
                                   LIFETIME)
    assert rec2.changes["state"] == "sent" and rec2.changes["delivered_to"] == ["a@x", "b@x"]
    assert "sent_at" not in rec2.changes  # the time of the first delivery stands
    assert set(rec2.changes["recipients"]) == {"a@x", "b@x"}


def test_a_recipient_refused_for_good_is_bounced_and_the_message_is_sent_to_the_rest():
    rec = sending.record_delivery(
        sending_msg(), delivery(a=(Outcome.DELIVERED, "250 OK"),
                                b=(Outcome.PERMANENT, "550 unknown", True)), NOW, LIFETIME)
    assert rec.changes["state"] == "sent" and rec.bounced == ["b@x"]
    assert rec.problems == ["e/m: refused for b@x: 250 OK; b@x: 550 unknown"]


def test_a_message_refused_for_good_fails_without_bouncing_anyone():
    rec = sending.record_delivery(
        sending_msg(), Delivery.every(["a@x", "b@x"], Outcome.PERMANENT, "554 spam"), NOW,
        LIFETIME)
    assert rec.changes["state"] == "failed" and rec.bounced == [] and not rec.delivered
    assert rec.problems == ["e/m: failed: 554 spam"] and rec.kind == "message.failed"


def test_in_doubt_wins_over_everything_and_asks_the_consultant():
    rec = sending.record_delivery(
        sending_msg(), Delivery({"a@x": RecipientOutcome(Outcome.IN_DOUBT),
                                 "b@x": RecipientOutcome(Outcome.TEMPORARY, "452")},
                                "connection lost"), NOW, LIFETIME)
    assert rec.changes["state"] == "in_doubt" and rec.kind == "message.in_doubt"
    assert rec.changes["remaining"] == ["b@x", "a@x"]
    assert "drafts resolve e/m --sent|--resend" in rec.problems[0]


def test_temporary_refusals_past_the_lifetime_fail():
    first = NOW - dt.timedelta(hours=80)
    rec = sending.record_delivery(
        sending_msg(attempts_at=[iso(first), iso(NOW)]),
        Delivery.every(["a@x"], Outcome.TEMPORARY, "451 later"), NOW, LIFETIME)
    assert rec.changes["state"] == "failed"
    assert rec.problems == ["e/m: failed: temporary refusals for 72 hours: 451 later"]


# -- Sent-folder reconciliation -----------------------------------------------------------------

def doubtful(**extra) -> dict:
    extra.setdefault("recipients", {"a@x": {"outcome": "in_doubt"}})
    return msg("e/m", state="in_doubt", attempts_at=[iso(NOW)], **extra)


def test_a_copy_found_in_sent_settles_an_in_doubt_message():
    got = sending.settle_from_sent(doubtful(), True, "Sent", NOW)
    assert got["state"] == "sent" and got["recipients"]["a@x"]["outcome"] == "delivered"
    assert got["delivered_to"] == ["a@x"] and got["sent_at"] == iso(NOW)


def test_nothing_found_settles_nothing():
    assert sending.settle_from_sent(doubtful(), False, "Sent", NOW) is None


def test_a_copy_mailflow_made_itself_proves_nothing():
    assert sending.settle_from_sent(doubtful(copied_at=iso(NOW)), True, "Sent", NOW) is None
    assert sending.settle_from_sent(doubtful(sent_copy="Sent"), True, "Sent", NOW) is None


def test_recipients_still_refused_for_now_are_retried_after_settling():
    m = doubtful()
    m["recipients"]["b@x"] = {"outcome": "temporary"}
    got = sending.settle_from_sent(m, True, "Sent", NOW)
    assert got["state"] == "retry" and got["remaining"] == ["b@x"]
    assert got["next_attempt"] == iso(NOW)


def test_the_consultant_confirming_a_send_settles_each_recipient_in_doubt():
    m = doubtful(recipients={"a@x": {"outcome": "in_doubt"}, "b@x": {"outcome": "delivered"}},
                 sent_at=iso(NOW - HOUR))
    got = sending.confirmed_sent(m, "dana", NOW)
    assert got["state"] == "sent" and got["note"] == "confirmed sent by dana"
    assert got["delivered_to"] == ["a@x", "b@x"] and got["sent_at"] == iso(NOW - HOUR)
    assert got["recipients"]["a@x"] == {"outcome": "delivered", "reply": "confirmed by dana"}
