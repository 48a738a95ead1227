"""The offboarding document travels with the timeline notice: drafted with it, shown for
approval (drafts show, --json, the digest), received intact by a real SMTP server, and a
changed document withdraws the approval like a changed body."""

from __future__ import annotations

import hashlib
import json

from mailflow.engine.documents import attachment_format
from mailflow.store import Store
from tests.helpers import told_only

DRAFTED = "2026-12-28T10:00"
SEND_AT = "2026-12-30T09:30"
KEY = "northwind-2026/timeline_notice/0"
# `auto`: a PDF where WeasyPrint can be loaded (the test extra installs it), else HTML
FMT = attachment_format("auto")
NAME = f"offboarding-northwind-2026.{FMT}"
TYPE = {"pdf": "application/pdf", "html": "text/html"}[FMT]


def _add_without_link(proj) -> None:
    path = proj.write_engagement("example", proj.example(**{r"^offboarding_doc = .*$": ""}))
    assert proj.cli("engagement", "add", str(path)).exit_code == 0


def _draft(proj) -> dict:
    return Store(proj.project.state_dir).load().messages[KEY]


def test_the_document_is_attached_shown_for_approval_and_received_intact(proj, smtp_server):
    _add_without_link(proj)
    r = proj.cli("run", now=DRAFTED)
    assert told_only(r), r.output
    msg = _draft(proj)
    (kept,) = msg["attachments"]
    assert kept["name"] == "offboarding_doc" and kept["filename"] == NAME
    r = proj.cli("drafts", "show", KEY, now=DRAFTED)
    assert f"Attached: {NAME} ({TYPE}, " in r.output
    assert "offboarding document attached to this email" in r.output
    rows = json.loads(proj.cli("drafts", "--json", now=DRAFTED).output)
    row = next(x for x in (rows if isinstance(rows, list) else rows["drafts"]) if x["id"] == KEY)
    assert row["attachments"][0]["filename"] == NAME
    assert row["attachments"][0]["ref"] == kept["ref"]
    assert proj.cli("drafts", "approve", KEY, "-y", now=DRAFTED).exit_code == 0
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 0, r.output
    (got,) = smtp_server.client_mail
    parts = [p for p in got.msg.iter_attachments()]
    assert [p.get_filename() for p in parts] == [NAME]
    data = parts[0].get_content()
    data = data.encode("utf-8") if isinstance(data, str) else data
    stored = Store(proj.project.state_dir).attachment(kept["ref"])
    assert data == stored and hashlib.sha256(data).hexdigest()[:32] == kept["ref"]
    assert data.startswith(b"%PDF-") if FMT == "pdf" else b"Northwind" in data
    # the text says the document is attached; no link to a document that does not exist
    assert "attached to this email" in got.msg.get_body(("plain",)).get_content()


def test_a_changed_document_withdraws_the_approval(proj, smtp_server):
    _add_without_link(proj)
    assert told_only(proj.cli("run", now=DRAFTED))
    before = _draft(proj)["attachments"][0]["ref"]
    assert proj.cli("drafts", "approve", KEY, "-y", now=DRAFTED).exit_code == 0
    assert _draft(proj)["state"] == "approved"
    docs = proj.root / "templates" / "docs" / "offboarding.html"
    docs.write_text(docs.read_text().replace("</body>", "<p>Restyled.</p></body>"))
    assert told_only(proj.cli("run", now="2026-12-28T11:00"))
    msg = _draft(proj)
    assert msg["attachments"][0]["ref"] != before
    assert msg["state"] == "awaiting_approval"
    assert proj.cli("run", now=SEND_AT).exit_code in (0, 1)
    assert smtp_server.client_mail == []  # nothing goes out unapproved


def test_a_stage_with_a_link_attaches_nothing(proj, smtp_server):
    assert proj.cli("engagement", "add", str(proj.root / "engagements/example.toml")
                    ).exit_code == 0
    assert told_only(proj.cli("run", now=DRAFTED))
    assert _draft(proj)["attachments"] == []


def test_the_digest_entry_names_and_carries_the_document(proj, smtp_server):
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text() + '\n[digest]\nvalid_for = "7 days"\n')
    _add_without_link(proj)
    proj.cli("run", now=DRAFTED)
    digest = next(m for m in smtp_server.received if "[mailflow digest]" in str(m.msg["Subject"]))
    text = digest.msg.get_body(("plain",)).get_content()
    assert f"Attached: {NAME} ({TYPE}, " in text
    names = [p.get_filename() for p in digest.msg.iter_attachments()]
    assert f"1-{NAME}" in names


def test_attach_format_html_sends_the_document_as_html(proj, smtp_server):
    rules = proj.root / "rules" / "offboarding.toml"
    rules.write_text(rules.read_text().replace('attach = ["offboarding_doc"]\n',
                                               'attach = ["offboarding_doc"]\n'
                                               'attach_format = "html"\n', 1))
    _add_without_link(proj)
    assert told_only(proj.cli("run", now=DRAFTED))
    assert proj.cli("drafts", "approve", KEY, "-y", now=DRAFTED).exit_code == 0
    assert proj.cli("run", now=SEND_AT).exit_code == 0
    (part,) = smtp_server.client_mail[0].msg.iter_attachments()
    assert part.get_filename() == "offboarding-northwind-2026.html"
    assert part.get_content_type() == "text/html"
    assert "Northwind" in part.get_content()
