"""The wrap-up checklist derived from an engagement, and rules timed "when access done"."""

from __future__ import annotations

import datetime as dt

from mailflow.engine import checklist
from mailflow.engine.checklist import ItemKind
from mailflow.timing.offsets import parse_offset


def engagement(**extra):
    base = {
        "id": "acme", "client": "Acme", "support_offer": True,
        "dates": {"contract_end": dt.date(2027, 1, 29)},
        "consultant": {"name": "Dana Whitfield"},
        "shared_access": [{"system": "AWS", "owner": "Tom", "revoke_date": dt.date(2027, 1, 29)},
                          {"system": "Slack", "owner": "", "revoke_date": dt.date(2027, 2, 5)}],
        "invoices": [{"number": "WC-1", "due": dt.date(2027, 1, 15), "status": "outstanding"},
                     {"number": "WC-0", "due": dt.date(2026, 12, 15), "status": "paid"}],
        "deliverables": [{"name": "Runbook", "status": "delivered"}],
        "checklist": [{"id": "laptop", "name": "Laptop returned", "owner": "Sam",
                       "due": "2027-01-29"}],
    }
    base.update(extra)
    return base


def ids(items):
    return [i.id for i in items]


def test_one_item_per_system_invoice_and_deliverable_plus_the_fixed_steps():
    items = checklist.derive(engagement())
    assert ids(items) == ["access-1", "access-2", "invoice-wc-1", "invoice-wc-0",
                          "deliverable-1", "document", "support", "meeting", "feedback",
                          "laptop"]
    by_id = {i.id: i for i in items}
    assert by_id["access-1"].owner == "Tom"
    assert by_id["access-2"].owner == "Dana Whitfield"  # no owner: the lead
    assert by_id["access-2"].due == dt.date(2027, 2, 5)
    assert by_id["invoice-wc-0"].done and by_id["invoice-wc-0"].automatic  # paid in the file
    assert not by_id["invoice-wc-1"].done
    assert by_id["laptop"].kind is ItemKind.CUSTOM and by_id["laptop"].due == dt.date(2027, 1, 29)


def test_no_support_item_without_a_support_offer_and_nothing_for_empty_lists():
    items = checklist.derive(engagement(support_offer=False, shared_access=[], invoices=[],
                                        deliverables=[], checklist=[]))
    assert ids(items) == ["document", "meeting", "feedback"]


def test_marks_close_items_and_an_undo_reopens_an_automatic_one():
    marks = {"access-1": {"done": True, "by": "dana", "on": "2027-01-28",
                          "at": "2027-01-28T15:00:00+00:00", "note": "Tom confirmed",
                          "outcome": "removed"},
             "invoice-wc-0": {"done": False, "undone": True, "by": "dana"}}
    by_id = {i.id: i for i in checklist.derive(engagement(checklist_marks=marks))}
    assert by_id["access-1"].done and by_id["access-1"].done_on == dt.date(2027, 1, 28)
    assert by_id["access-1"].note == "Tom confirmed"
    assert not by_id["invoice-wc-0"].done  # the consultant said it is not paid after all


def test_feedback_is_done_by_the_first_reply_to_a_feedback_stage():
    replies = [{"id": "r2", "received_at": "2027-02-04T10:00:00+00:00"},
               {"id": "r1", "received_at": "2027-02-03T10:00:00+00:00"}]
    item = {i.id: i for i in checklist.derive(engagement(), feedback_replies=replies)}["feedback"]
    assert item.done and item.automatic and item.note == "reply r1"


def test_overdue_means_open_and_past_due():
    item = {i.id: i for i in checklist.derive(engagement())}["invoice-wc-1"]
    assert item.overdue(dt.date(2027, 1, 16)) and not item.overdue(dt.date(2027, 1, 15))


def test_find_takes_an_id_or_a_unique_prefix():
    items = checklist.derive(engagement())
    assert checklist.find(items, "invoice-wc-1").id == "invoice-wc-1"
    assert checklist.find(items, "doc").id == "document"
    assert checklist.find(items, "access") is None  # two match: say nothing rather than guess
    assert checklist.find(items, "nope") is None


def test_groups_and_condition_flags():
    marks = {"access-1": {"done": True, "at": "2027-01-28T15:00:00+00:00"},
             "access-2": {"done": True, "at": "2027-01-29T16:00:00+00:00"}}
    items = checklist.derive(engagement(checklist_marks=marks))
    assert checklist.group_done(items, "access") == (True, "2027-01-29T16:00:00+00:00")
    assert checklist.group_done(items, "invoices")[0] is False
    flags = checklist.condition_flags(items)
    assert flags["invoices_open"] == 1 and flags["access_done"] and not flags["meetings_done"]
    facts = checklist.planning_facts(engagement(checklist_marks=marks))
    assert facts["checklist_done_at"]["access"] == "2027-01-29T16:00:00+00:00"
    assert "invoices" not in facts["checklist_done_at"]


def test_rules_can_be_timed_when_a_checklist_group_is_done():
    offset = parse_offset("when access done")
    assert offset.anchor == "done:access" and offset.days == 0
    assert offset.describe() == "when access done"
    later = parse_offset("1 business day after invoices done")
    assert later.anchor == "done:invoices" and later.days == 1 and later.business
    assert later.describe() == "1 business day after invoices done"
