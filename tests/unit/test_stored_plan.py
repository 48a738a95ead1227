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
