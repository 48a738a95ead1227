"""Issue 18: views show the plan the last tick kept, and plan again only what changed since."""

from __future__ import annotations

from mailflow.config.loading import load_project
from mailflow.engine import checklist, stored_plan
from mailflow.engine.checklist_of import items_of
from mailflow.engine.planner import plan_stored
from tests.helpers import DRAFTED, KEY, add, load, make_project, told_only

LATER = "2027-01-02T18:00"  # a Saturday evening: drafts overdue, later stages still planned
VIEWS = (("status",), ("status", "--json"), ("drafts",), ("drafts", "--json", "--all-states"),
         ("plan",), ("plan", "--json"))


def _kept(proj) -> dict[str, bool]:  # noqa: ANN001 - tests.helpers.ProjectUnderTest
    """Engagement id -> whether a view would use its kept plan (else it plans it again)."""
    loaded, state = load_project(proj.project), load(proj)
    out = {}
    for eid, eng in state.engagements.items():
        items = stored_plan.kept(loaded, eng)
        out[eid] = items is not None
        if items is not None:  # what the tick kept is what planning now would give
            msgs = {m["key"]: m for m in state.messages_of(eid)}
            fresh = plan_stored(loaded, eng, msgs, state.replies_by_engagement().get(eid, []))
            assert items == fresh, eid
        # the open checklist items kept beside it hold exactly while the plan does
        open_items = stored_plan.kept_checklist(loaded, eng)
        assert (open_items is None) == (items is None), eid
        if open_items is not None:
            assert open_items == checklist.open_items(items_of(state, loaded, eng)), eid
    return out


def _planned_events(proj) -> int:  # noqa: ANN001
    """How many plans the journal holds (each tick that plans an engagement adds one)."""
    return sum(line.count(b'"engagement.planned"')
               for path in sorted(proj.project.state_dir.glob("events*"))
               for line in path.read_bytes().splitlines())


def _outputs(proj) -> dict[tuple[str, ...], str]:  # noqa: ANN001
    out = {}
    for args in VIEWS:
        r = proj.cli(*args, now=LATER)
        assert r.exit_code == 0, r.output
        out[args] = r.output
    return out


def test_views_print_the_same_bytes_from_kept_stale_and_replanned_plans(tmp_path):
    proj = make_project(tmp_path)
    add(proj)
    for n in (2, 3):
        add(proj, f"client-{n}", **{r'^id = "northwind-2026"': f'id = "client-{n}"'})
    assert told_only(proj.cli("run", now=DRAFTED))
    # drafting changed nothing the planner reads: the tick kept the plan it had just made (and
    # a run plans again at its end what its sends did change), so views between ticks plan
    # nothing, and the next tick neither (issue 18)
    assert _kept(proj) == {"northwind-2026": True, "client-2": True, "client-3": True}
    planned = _planned_events(proj)
    assert planned >= 3  # (one an engagement at least)
    assert told_only(proj.cli("run", now=DRAFTED))
    assert _kept(proj) == {"northwind-2026": True, "client-2": True, "client-3": True}
    assert _planned_events(proj) == planned
    # approving a draft is an event of its engagement: its kept plan is stale until a tick
    r = proj.cli("drafts", "approve", KEY, now=DRAFTED)
    assert r.exit_code == 0, r.output
    assert _kept(proj) == {"northwind-2026": False, "client-2": True, "client-3": True}
    partly_kept = _outputs(proj)
    # a rule file changed (a comment changes no date): every engagement is planned again
    rules = proj.root / "rules" / "offboarding.toml"
    rules.write_text(rules.read_text() + "\n# reviewed\n")
    assert not any(_kept(proj).values())
    assert _outputs(proj) == partly_kept
    assert "client-2/timeline_notice/0" in partly_kept[("drafts",)]


def test_a_changed_rule_is_planned_again_by_the_views_before_any_tick(tmp_path):
    proj = make_project(tmp_path)
    add(proj)
    assert told_only(proj.cli("run", now=DRAFTED))
    assert told_only(proj.cli("run", now=DRAFTED))
    rules = proj.root / "rules" / "offboarding.toml"
    text = rules.read_text()
    rules.write_text(text.replace('due = "30 days before contract_end"',
                                  'due = "20 days before contract_end"', 1))
    assert _kept(proj) == {"northwind-2026": False}
    plan = proj.cli("plan", "--json", now=DRAFTED)
    assert plan.exit_code == 0, plan.output
    rules.write_text(text)  # back: the kept plan holds again, and says the old date
    assert _kept(proj) == {"northwind-2026": True}
    assert proj.cli("plan", "--json", now=DRAFTED).output != plan.output



def test_a_checklist_item_done_shows_at_once_and_the_same_once_kept_again(tmp_path):
    proj = make_project(tmp_path)
    add(proj)
    assert told_only(proj.cli("run", now=DRAFTED))
    assert told_only(proj.cli("run", now=DRAFTED))
    assert _kept(proj) == {"northwind-2026": True}
    before = _outputs(proj)
    r = proj.cli("done", "northwind-2026", "meeting", "--outcome", "held", now=DRAFTED)
    assert r.exit_code == 0, r.output
    # the mark is an event of the engagement: its kept checklist is stale, and not used
    assert _kept(proj) == {"northwind-2026": False}
    stale = _outputs(proj)
    assert stale[("status", "--json")] != before[("status", "--json")]
    assert '"meeting"' in before[("status", "--json")]
    assert '"meeting"' not in stale[("status", "--json")]
    assert told_only(proj.cli("run", now=DRAFTED))
    assert _kept(proj) == {"northwind-2026": True}
    assert _outputs(proj) == stale


def test_doctor_finds_a_kept_plan_that_planning_now_contradicts_and_drops_it(tmp_path):
    import datetime as dt

    from mailflow.store import Store
    proj = make_project(tmp_path)
    add(proj)
    assert told_only(proj.cli("run", now=DRAFTED))
    assert told_only(proj.cli("run", now=DRAFTED))
    assert proj.cli("doctor", now=DRAFTED).exit_code == 0
    right = _outputs(proj)
    # a kept checklist that says nothing is open, under the very signature that holds
    eng = load(proj).engagements["northwind-2026"]
    plan = stored_plan.kept(load_project(proj.project), eng)
    assert plan is not None
    with Store(proj.project.state_dir).writer() as w:
        w.record("engagement.planned", at=dt.datetime(2026, 12, 28, tzinfo=dt.UTC),
                 engagements={"key": "northwind-2026",
                              "set": {"kept": stored_plan.pack_kept(plan, [])}})
    assert _outputs(proj)[("status", "--json")] != right[("status", "--json")]
    r = proj.cli("doctor", now=DRAFTED)
    assert r.exit_code == 5
    assert "engagement northwind-2026: the plan kept by the last run differs" in r.output
    r = proj.cli("doctor", "--repair", now=DRAFTED)
    assert r.exit_code == 0, r.output
    assert "1 kept plan(s) dropped" in r.output
    assert _kept(proj) == {"northwind-2026": False}
    assert _outputs(proj) == right
    assert told_only(proj.cli("run", now=DRAFTED))
    assert _kept(proj) == {"northwind-2026": True}
    assert _outputs(proj) == right
