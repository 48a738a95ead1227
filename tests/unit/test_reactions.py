"""Reply reactions as a pure function: what a reply changes, and whom mailflow trusts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow import timing
from mailflow.config.rules import Sequence, Stage
from mailflow.engine.reactions import (
    EngagementChange,
    MessageChange,
    ReplyFacts,
    ReportedRecipient,
    Trust,
    distrust_reason,
    is_contact,
    react,
    waits_for_replies,
)

ENG = {"id": "acme", "data_rev": 3, "bounced": ["old@acme.example"],
       "contacts": {"to": [{"name": "Ann", "email": "Ann@Acme.example"}],
                    "cc": [{"name": "Bo", "email": "bo@acme.example"}]}}
MSG = {"key": "acme/recap/0", "engagement": "acme", "stage": "recap", "state": "sent",
       "to": ENG["contacts"]["to"], "cc": ENG["contacts"]["cc"]}
CONTACT = Trust(from_contact=True)
BOUNCE_OK = Trust(from_contact=False, mail_system=True, carries_our_message=True)


def stage(on_reply: str) -> Stage:
    return Stage(id="recap", name="Recap", template="recap", due=timing.parse_offset(
        "on contract_end"), approval=True, when=None, skip_reason=None, on_reply=on_reply,
        late="hold", window=timing.parse_window(None), at=None, reminders=())


def human(text: str = "ok", sender: str = "ann@acme.example", kind: str = "human") -> ReplyFacts:
    return ReplyFacts(id="7", kind=kind, sender=sender, text=text)


def bounce(recipient: str | None = "bo@acme.example") -> ReplyFacts:
    return ReplyFacts(id="8", kind="bounce", sender="mailer-daemon@mx.acme.example",
                      bounce_recipient=recipient, bounce_status="5.1.1",
                      bounce_diagnostic="550 5.1.1 user unknown")


@pytest.mark.parametrize(("on_reply", "changes", "needs"), [
    ("stop", {}, False),
    ("needs_action", {}, True),
    ("feedback", {"feedback": "ok", "feedback_reply": "7"}, False),
    ("pause", {"status": "paused", "flagged": "paused by a reply to recap (reply 7)"}, True),
    ("complete", {"status": "completed"}, False),
])
def test_a_contacts_reply_does_what_the_stage_says(on_reply, changes, needs):
    reaction = react(human(), MSG, stage(on_reply), ENG, CONTACT)
    assert reaction.trusted and reaction.needs_action is needs and not reaction.problems
    expected = (EngagementChange("acme", "engagement.changed", changes),) if changes else ()
    assert reaction.changes == expected


def test_a_strangers_unsubscribe_pauses_nothing_and_is_flagged():
    reaction = react(human("unsubscribe", sender="eve@evil.example", kind="unsubscribe"), MSG,
                     stage("stop"), ENG, Trust(from_contact=False))
    assert reaction.changes == () and reaction.needs_action and not reaction.trusted
    assert "eve@evil.example is not a contact" in reaction.distrust
    assert "mailflow replies accept 7" in reaction.problems[0]


def test_a_contacts_unsubscribe_pauses_the_engagement():
    reaction = react(human("unsubscribe", kind="unsubscribe"), MSG, stage("stop"), ENG, CONTACT)
    (change,) = reaction.changes
    assert change.changes["status"] == "paused" and reaction.needs_action


@pytest.mark.parametrize("failures", [("dmarc=fail",), ("spf=softfail",), ("dkim=fail",)])
def test_an_authentication_failure_stops_every_automatic_action(failures):
    trust = Trust(from_contact=True, auth_failures=failures)
    for on_reply in ("pause", "complete", "feedback"):
        reaction = react(human(), MSG, stage(on_reply), ENG, trust)
        assert reaction.changes == () and reaction.needs_action and not reaction.trusted
        assert failures[0] in reaction.distrust
    assert react(bounce(), MSG, stage("stop"), ENG, Trust(
        from_contact=False, mail_system=True, carries_our_message=True,
        auth_failures=failures)).changes == ()


def test_an_accepted_reply_is_acted_on_whoever_sent_it():
    trust = Trust(from_contact=False, auth_failures=("dmarc=fail",), accepted_by="dana")
    reaction = react(human(sender="eve@evil.example"), MSG, stage("complete"), ENG, trust)
    assert reaction.trusted and reaction.changes[0].changes == {"status": "completed"}


def test_a_genuine_bounce_suppresses_the_address_and_redrafts():
    reaction = react(bounce(), MSG, stage("stop"), ENG, BOUNCE_OK)
    msg_change, eng_change = reaction.changes
    assert msg_change == MessageChange("acme/recap/0", "message.bounced", {
        "state": "bounced", "note": "bo@acme.example: 5.1.1 550 5.1.1 user unknown"})
    assert eng_change.changes["bounced"] == ["bo@acme.example", "old@acme.example"]
    assert eng_change.changes["data_rev"] == 4
    assert reaction.problems == ("acme/recap/0: bounced for bo@acme.example",)


@pytest.mark.parametrize(("trust", "facts", "why"), [
    (Trust(from_contact=False, mail_system=True), bounce(), "does not carry a Message-ID"),
    (Trust(from_contact=True, carries_our_message=True), bounce(), "not sent by a mail system"),
])
def test_a_bounce_that_cannot_be_attributed_suppresses_nothing(trust, facts, why):
    reaction = react(facts, MSG, stage("stop"), ENG, trust)
    assert reaction.changes == () and reaction.needs_action and why in reaction.distrust


@pytest.mark.parametrize("facts", [bounce(None), bounce("ceo@acme.example")])
def test_a_genuine_bounce_naming_no_recipient_of_the_message_only_flags(facts):
    reaction = react(facts, MSG, stage("stop"), ENG, BOUNCE_OK)
    (change,) = reaction.changes
    assert isinstance(change, EngagementChange) and set(change.changes) == {"flagged"}
    assert "names no recipient of it" in change.changes["flagged"] and reaction.needs_action


def test_a_bounce_suppresses_every_failed_recipient_of_the_message_and_no_one_else():
    facts = ReplyFacts(id="8", kind="bounce", sender="mailer-daemon@mx.acme.example", delivery=(
        ReportedRecipient("ann@acme.example", "failed", "5.1.1", "gone"),
        ReportedRecipient("bo@acme.example", "delayed", "4.4.1"),
        ReportedRecipient("ceo@acme.example", "failed", "5.1.1")))
    msg_change, eng_change = react(facts, MSG, stage("stop"), ENG, BOUNCE_OK).changes
    assert eng_change.changes["bounced"] == ["ann@acme.example", "old@acme.example"]
    assert msg_change.changes["note"] == "ann@acme.example: 5.1.1 gone"


@pytest.mark.parametrize("kind", ["delay", "delivered"])
def test_delay_and_success_reports_change_nothing(kind):
    assert react(human(kind=kind), MSG, stage("complete"), ENG, CONTACT).changes == ()


def test_an_abuse_report_only_flags_and_unreadable_mail_only_asks():
    report = react(human(kind="report", sender="fbl@isp.example"), MSG, stage("complete"), ENG,
                   Trust(from_contact=False))
    (change,) = report.changes
    assert "feedback (abuse) report" in change.changes["flagged"] and report.needs_action
    unreadable = react(human(kind="unreadable"), MSG, stage("complete"), ENG, CONTACT)
    assert unreadable.changes == () and unreadable.needs_action


def test_an_auto_reply_pushes_the_thread_and_never_stops_it():
    facts = ReplyFacts(id="9", kind="auto_reply", sender="ann@acme.example",
                       return_date=dt.date(2027, 2, 22))
    root = {"key": "acme/recap/0"}
    reminder = {**MSG, "key": "acme/recap/1"}
    reaction = react(facts, reminder, stage("complete"), ENG, CONTACT, root=root)
    assert reaction.changes == (MessageChange("acme/recap/0", "message.out_of_office",
                                              {"out_of_office_until": "2027-02-22"}),)
    assert not reaction.needs_action
    no_date = ReplyFacts(id="9", kind="auto_reply", sender="ann@acme.example")
    assert react(no_date, MSG, stage("complete"), ENG, CONTACT).changes == ()


def test_a_reply_to_a_stage_no_longer_in_the_rules_needs_the_consultant():
    reaction = react(human(), MSG, None, ENG, CONTACT)
    assert reaction.changes == () and reaction.needs_action


def test_contacts_are_matched_without_case_and_by_domain_only_when_allowed():
    assert is_contact("ANN@acme.EXAMPLE", ENG, allow_domain=False)
    assert not is_contact("cfo@acme.example", ENG, allow_domain=False)
    assert is_contact("cfo@acme.example", ENG, allow_domain=True)
    assert not is_contact("cfo@acme.example.evil.example", ENG, allow_domain=True)
    assert not is_contact(None, ENG, allow_domain=True)
    assert not is_contact("no-at-sign", ENG, allow_domain=True)


def test_facts_read_back_from_a_stored_record():
    record = {"kind": "bounce", "from": "mailer-daemon@x.example", "text": "",
              "return_date": None, "bounce": {"recipient": "bo@acme.example",
                                              "status": "5.1.1", "diagnostic": "gone"}}
    facts = ReplyFacts.from_record("3", record)
    assert facts.bounce_recipient == "bo@acme.example" and facts.kind == "bounce"
    assert distrust_reason(facts, MSG, BOUNCE_OK) is None


def _stage(sid: str, due: str = "on contract_end", on_reply: str = "stop") -> Stage:
    return Stage(id=sid, name=sid, template=sid, due=timing.parse_offset(due), approval=False,
                 when=None, skip_reason=None, on_reply=on_reply, late="hold",
                 window=timing.parse_window(None),
                 at=None, reminders=())


AUTO = {"key": "acme/b/0", "stage": "b", "step": 0, "approved_by": "rule (no approval needed)"}


def _seq(*stages: Stage) -> Sequence:
    return Sequence(name="s", description="", path=Path("rules/s.toml"), stages=stages,
                    digest="x")


SENT_A = [{"stage": "a", "step": 0, "sent_at": "2027-01-04T15:00:00+00:00"}]


def test_while_replies_cannot_be_read_only_automatic_follow_ups_a_reply_could_stop_wait():
    a, b = _stage("a"), _stage("b")
    assert waits_for_replies(AUTO, _seq(a, b), []) is None  # the first email answers nothing
    assert "an opt-out, say" in waits_for_replies(AUTO, _seq(a, b), SENT_A)
    assert "reminder" in waits_for_replies({**AUTO, "step": 1}, _seq(a, b), SENT_A)
    by_reply = _stage("b", due="3 business days after reply to a")
    assert "timed from a reply" in waits_for_replies(AUTO, _seq(a, by_reply), SENT_A)
    pausing = _stage("a", on_reply="pause")
    assert "would pause" in waits_for_replies(AUTO, _seq(pausing, b), SENT_A)
    assert waits_for_replies({**AUTO, "stage": "a"}, _seq(pausing, b), []) is None
    # the consultant approved it themselves: their call
    approved = {**AUTO, "step": 1, "approved_by": "dana"}
    assert waits_for_replies(approved, _seq(a, b), SENT_A) is None


def test_a_kind_without_a_reaction_of_its_own_only_asks_the_consultant():
    reaction = react(human(kind="delivery_delay"), MSG, stage("complete"), ENG, CONTACT)
    assert reaction.changes == () and reaction.needs_action


# -- nothing a stranger can send makes mailflow act on its own ----------------------------------

KINDS = st.sampled_from(["human", "auto_reply", "bounce", "unsubscribe", "delivery_delay"])
ADDRESSES = st.sampled_from(["ann@acme.example", "bo@acme.example", "eve@evil.example",
                             "mailer-daemon@mx.acme.example", "ceo@acme.example", ""])
FACTS = st.builds(ReplyFacts, id=st.just("5"), kind=KINDS, sender=st.one_of(st.none(), ADDRESSES),
                  text=st.text(max_size=30),
                  return_date=st.one_of(st.none(), st.dates()),
                  bounce_recipient=st.one_of(st.none(), ADDRESSES),
                  bounce_status=st.one_of(st.none(), st.text(max_size=8)),
                  bounce_diagnostic=st.one_of(st.none(), st.text(max_size=20)))
TRUSTS = st.builds(Trust, from_contact=st.booleans(),
                   auth_failures=st.lists(st.sampled_from(["dmarc=fail", "spf=softfail"]),
                                          max_size=2).map(tuple),
                   mail_system=st.booleans(), carries_our_message=st.booleans())


@settings(max_examples=500, deadline=None)
@given(facts=FACTS, trust=TRUSTS, on_reply=st.sampled_from(
    ["stop", "needs_action", "feedback", "pause", "complete"]))
def test_only_attributable_mail_changes_anything(facts, trust, on_reply):
    reaction = react(facts, MSG, stage(on_reply), ENG, trust)
    if trust.auth_failures:
        assert reaction.changes == () and reaction.needs_action
    if facts.kind in ("delivery_delay",):
        return  # a kind without a reaction only asks the consultant
    if facts.kind == "bounce":
        attributable = (trust.carries_our_message and trust.mail_system
                        and not trust.auth_failures)
        if (facts.bounce_recipient or "") not in ("ann@acme.example", "bo@acme.example"):
            # no address of this message: at most a flag, never a suppression
            assert all(set(c.changes) == {"flagged"} for c in reaction.changes)
    else:
        attributable = trust.from_contact and not trust.auth_failures
    if not attributable:
        assert reaction.changes == () and reaction.needs_action and not reaction.trusted
        assert reaction.problems and "replies accept 5" in reaction.problems[0]
    for change in reaction.changes:  # only ever this engagement and this message
        assert getattr(change, "engagement", "acme") == "acme"
        assert getattr(change, "key", MSG["key"]) == MSG["key"]


def test_an_accepted_bounce_that_names_no_address_leaves_no_one_out():
    reaction = react(bounce(None), MSG, stage("stop"), ENG,
                     Trust(from_contact=False, accepted_by="dana"))
    (change,) = reaction.changes
    assert isinstance(change, EngagementChange) and "bounced" not in change.changes
    assert reaction.needs_action
