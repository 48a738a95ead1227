"""A reply saying an invoice was paid suggests the matching `mailflow done` (replies show,
replies --json, the digest entry) and never marks the item itself."""

from __future__ import annotations

import json

from mailflow.store import Store
from tests.helpers import reply, told_only

DRAFTED = "2026-12-28T10:00"
SEND_AT = "2026-12-30T09:30"
AFTER = "2026-12-31T11:00"
KEY = "northwind-2026/timeline_notice/0"
COMMAND = "mailflow done northwind-2026 invoice-wc-2026-118"


def test_an_invoice_paid_reply_suggests_done_and_marks_nothing(proj, smtp_server, tmp_path):
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text() + '\n[digest]\nvalid_for = "7 days"\n')
    assert proj.cli("engagement", "add", str(proj.root / "engagements/example.toml")
                    ).exit_code == 0
    assert told_only(proj.cli("run", now=DRAFTED))
    assert proj.cli("drafts", "approve", KEY, "-y", now=DRAFTED).exit_code == 0
    assert told_only(proj.cli("run", now=SEND_AT))
    sent = Store(proj.project.state_dir).load().messages[KEY]
    eml = tmp_path / "paid.eml"
    eml.write_bytes(reply(sent, "Hi Dana, invoice WC-2026-118 was paid yesterday. Best, MJ"))
    r = proj.cli("replies", "add", KEY, str(eml), now=AFTER)
    assert r.exit_code in (0, 1), r.output
    rid = Store(proj.project.state_dir).load().replies.popitem()[0]
    r = proj.cli("replies", "show", rid, now=AFTER)
    assert f"Mark it?  {COMMAND}" in r.output
    (row,) = json.loads(proj.cli("replies", "--json", now=AFTER).output)
    assert row["suggested_done"] == [COMMAND]
    # a suggestion only: the item stays open
    (entry,) = json.loads(proj.cli("checklist", "northwind-2026", "--json", now=AFTER).output)
    assert not next(i for i in entry["items"] if i["id"] == "invoice-wc-2026-118")["done"]
    smtp_server.received.clear()
    proj.cli("run", now=AFTER)
    digest = next(m for m in smtp_server.received if "[mailflow digest]" in str(m.msg["Subject"]))
    assert f"Mark it? {COMMAND}" in digest.msg.get_body(("plain",)).get_content()
