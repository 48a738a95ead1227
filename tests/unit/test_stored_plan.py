"""Issue 18: the plan a tick keeps on the engagement, as views read it back."""

from __future__ import annotations

import datetime as dt

from mailflow.engine import stored_plan
from mailflow.engine.planner import PlanItem
from mailflow.engine.records import PlanStatus


def test_a_kept_plan_unpacks_to_items_equal_to_the_planners():
    items = [PlanItem("e/s/0", "e", "s", 0, "t", True, PlanStatus.SCHEDULED,
                      dt.datetime(2027, 1, 4, 14, tzinfo=dt.UTC), ("why",), None, None, "late"),
             PlanItem("e/s/1", "e", "s", 1, "r", False, PlanStatus.WAITING, None, (),
                      "e/s/0", "e/s/0", None)]
    back = stored_plan.unpack("e", stored_plan.pack(items))
    assert back == items and [hash(i) for i in back] == [hash(i) for i in items]
    assert [repr(i) for i in back] == [repr(i) for i in items]


def _loaded():
    """What `signature` reads of a config.loading.Loaded: the sequence's and config's digests."""
    from types import SimpleNamespace
    return SimpleNamespace(sequence_for=lambda eng: SimpleNamespace(digest="seq"),
                           config_digest="cfg")


def _items():
    return [PlanItem("e/s/0", "e", "s", 0, "t", True, PlanStatus.SCHEDULED,
                     dt.datetime(2027, 1, 4, 14, tzinfo=dt.UTC), ("why",), None, None, None)]


def _open_items():
    from mailflow.engine.checklist import ChecklistItem, ItemKind
    return [ChecklistItem("access:aws", next(iter(ItemKind)), "Remove AWS", "Dana",
                          dt.date(2027, 1, 27))]


def test_the_kept_field_gives_the_plan_and_checklist_while_the_signature_holds():
    eng = {"id": "e", "rev": 4}
    eng["planned"] = stored_plan.signature(_loaded(), eng)
    eng["kept"] = stored_plan.pack_kept(_items(), _open_items())
    assert stored_plan.kept(_loaded(), eng) == _items()
    assert stored_plan.kept_checklist(_loaded(), eng) == _open_items()
    eng["rev"] = 5  # any event of the engagement: neither holds any more
    assert stored_plan.kept(_loaded(), eng) is None
    assert stored_plan.kept_checklist(_loaded(), eng) is None


def test_a_plan_kept_by_an_earlier_version_still_reads():
    eng = {"id": "e", "rev": 1, "plan": stored_plan.pack(_items())}
    eng["planned"] = stored_plan.signature(_loaded(), eng)
    assert stored_plan.kept(_loaded(), eng) == _items()
    assert stored_plan.kept_checklist(_loaded(), eng) is None  # (kept before checklists were)
    eng["plan_checklist"] = stored_plan.pack_checklist(_open_items())
    assert stored_plan.kept_checklist(_loaded(), eng) == _open_items()


def test_reading_the_kept_plan_from_a_checkpoint_record_leaves_the_rest_unparsed():
    from mailflow.store.lazy import decode, encode
    eng = {"id": "e", "rev": 2, "status": "active", "contacts": {"to": [{"email": "a@b"}]},
           "dates": {"contract_end": "2027-01-27"}}
    eng["planned"] = stored_plan.signature(_loaded(), eng)
    eng["kept"] = stored_plan.pack_kept(_items(), _open_items())
    record = decode("engagements", *encode("engagements", eng))
    assert stored_plan.kept(_loaded(), record) == _items()
    assert record.get("moved_out") is None
    assert record._blob is not None  # contacts and dates still unparsed
    assert record == eng
