"""Completion is offered when the sequence is done and the checklist clear, and not before."""

from __future__ import annotations

import json

from tests.helpers import dates, walk

AFTER = "2027-02-22T10:00"


def _attention(proj) -> list[str]:
    return json.loads(proj.cli("status", "--json", now=AFTER).output)["needs_attention"]


def test_completion_is_offered_once_the_sequence_is_done_and_the_checklist_clear(proj,
                                                                                 smtp_server):
    assert proj.cli("engagement", "add", str(proj.root / "engagements/example.toml")
                    ).exit_code == 0
    walk(proj, dates("2026-12-14", "2027-02-20"))
    assert len(smtp_server.client_mail) == 6  # the sequence is done
    offer = ("northwind-2026: sequence done and checklist clear: "
             "mailflow engagement complete northwind-2026")
    assert offer not in _attention(proj)
    (entry,) = json.loads(proj.cli("checklist", "northwind-2026", "--json", now=AFTER).output)
    still = [i["id"] for i in entry["items"] if not i["done"]]
    for item in still[:-1]:
        r = proj.cli("done", "northwind-2026", item, now=AFTER)
        assert r.exit_code == 0, r.output
    r = proj.cli("engagement", "complete", "northwind-2026", now=AFTER)
    assert r.exit_code == 4 and still[-1] in r.output and "email(s)" not in r.output
    assert proj.cli("done", "northwind-2026", still[-1], now=AFTER).exit_code == 0
    assert offer in _attention(proj)
    (row,) = json.loads(proj.cli("status", "--json", now=AFTER).output)["engagements"]
    assert row["ready_to_complete"] is True and row["checklist"]["open"] == 0
    r = proj.cli("engagement", "complete", "northwind-2026", now=AFTER)
    assert r.exit_code == 0, r.output
    assert offer not in _attention(proj)
