"""The one lifecycle: every state, the table of allowed changes, and the states code emits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mailflow
from mailflow.engine.records import (
    FINAL,
    PENDING,
    TRANSITIONS,
    MessageState,
    PlanStatus,
    transition,
)
from mailflow.errors import StateError

S = MessageState
PACKAGE = Path(mailflow.__file__).parent


def test_every_state_has_a_row_and_final_states_lead_nowhere_sendable():
    assert set(TRANSITIONS) == set(MessageState)
    for state in FINAL - {S.SENT}:
        assert not TRANSITIONS[state], state
    assert TRANSITIONS[S.SENT] == {S.BOUNCED}  # a bounce may still come back
    assert not FINAL & PENDING


@pytest.mark.parametrize(("current", "wanted"), [
    ("planned", "awaiting_approval"), ("awaiting_approval", "approved"), ("approved", "sending"),
    ("sending", "sent"), ("sending", "in_doubt"), ("sending", "retry"), ("retry", "sending"),
    ("in_doubt", "sent"), ("in_doubt", "approved"), ("sent", "bounced"), ("approved", "approved"),
])
def test_the_life_of_a_message_is_allowed(current, wanted):
    assert transition("k", current, wanted) == wanted


@pytest.mark.parametrize(("current", "wanted"), [
    ("sent", "approved"), ("sent", "sending"), ("cancelled", "approved"), ("planned", "sent"),
    ("awaiting_approval", "sending"), ("in_doubt", "sending"), ("failed", "retry"),
    ("rejected", "approved"),
])
def test_an_illegal_change_names_the_message_its_state_and_the_one_asked_for(current, wanted):
    with pytest.raises(StateError) as err:
        transition("acme/recap/0", current, wanted)
    text = str(err.value)
    assert text.startswith("acme/recap/0 is ")
    assert current.replace("_", " ") in text and wanted.replace("_", " ") in text


def test_a_new_message_starts_planned_and_unknown_states_are_refused():
    assert transition("k", None, "planned") == S.PLANNED
    with pytest.raises(StateError, match="starts planned"):
        transition("k", None, "approved")
    with pytest.raises(StateError, match="not a message state"):
        transition("k", "planned", "done")


def test_the_states_the_code_writes_are_the_documented_ones():
    written = set()
    for path in PACKAGE.rglob("*.py"):
        written |= set(re.findall(r"state=S\.([A-Z_]+)", path.read_text()))
    assert written and written <= {s.name for s in MessageState}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "records.py":
            continue
        text = path.read_text()
        assert not re.search(r"state=\"[a-z_]+\"", text), path  # no literal states written


def test_plan_statuses_are_one_set():
    assert {s.value for s in PlanStatus} == {"scheduled", "waiting", "skipped", "stopped",
                                             "error", "done"}
