"""The checklist drives the sequence: a stage timed "when access done" goes out after the last
access item is marked done, on the next tick, and not before."""

from __future__ import annotations

from tests.helpers import dates, walk

CONFIRMATION = """
[[stage]]
id = "access_confirmation"
name = "Access removed: confirmation"
template = "access_revocation"
when = "shared_access"
due = "when access done"
approval = false
"""


def test_a_stage_timed_when_access_done_waits_for_the_last_done(proj, smtp_server):
    rules = proj.root / "rules" / "offboarding.toml"
    text = rules.read_text()
    # before the feedback request, so that nothing but the checklist holds it back
    at = text.index("[[stage]]\nid = \"feedback_request\"")
    rules.write_text(text[:at] + CONFIRMATION.lstrip() + "\n" + text[at:])
    assert proj.cli("engagement", "add", str(proj.root / "engagements/example.toml")
                    ).exit_code == 0
    walk(proj, dates("2026-12-14", "2027-01-29"))
    subjects = [str(m.msg["Subject"]) for m in smtp_server.client_mail]
    assert len(subjects) == 4, subjects  # timeline, recap, support, access revocation
    r = proj.cli("plan", "northwind-2026", now="2027-01-29T12:00")
    assert "waits until the checklist's access items are done" in r.output
    for item in ("access-1", "access-2"):
        assert proj.cli("done", "northwind-2026", item, now="2027-01-29T12:00").exit_code == 0
    proj.cli("run", now="2027-01-29T13:00")
    assert len(smtp_server.client_mail) == 4  # one access item is still open
    assert proj.cli("done", "northwind-2026", "access-3", now="2027-01-29T14:00").exit_code == 0
    r = proj.cli("run", now="2027-01-29T14:05")
    assert r.exit_code == 0, r.output
    assert len(smtp_server.client_mail) == 5
    assert smtp_server.client_mail[-1].msg["Subject"] == smtp_server.client_mail[3].msg["Subject"]
    # undoing a done item after the email went out changes nothing that was sent
    assert proj.cli("undo", "northwind-2026", "access-3", now="2027-01-29T15:00").exit_code == 0
    proj.cli("run", now="2027-01-29T15:05")
    assert len(smtp_server.client_mail) == 5


def test_a_condition_on_open_invoices(proj, smtp_server):
    rules = proj.root / "rules" / "offboarding.toml"
    rules.write_text(rules.read_text().replace('when = "shared_access or invoices_open"',
                                               'when = "invoices_open"'))
    assert proj.cli("engagement", "add", str(proj.root / "engagements/example.toml")
                    ).exit_code == 0
    r = proj.cli("plan", "northwind-2026", now="2027-01-05T10:00")
    assert "access_revocation" in r.output and "is false" not in r.output
    assert proj.cli("done", "northwind-2026", "invoice-wc-2026-118",
                    now="2027-01-05T10:00").exit_code == 0
    r = proj.cli("plan", "northwind-2026", now="2027-01-05T10:01")
    assert "condition 'invoices_open' is false" in r.output
