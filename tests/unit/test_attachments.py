"""Attachments: the rule keys, the MIME structure on the wire, and what an approval binds to."""

from __future__ import annotations

import datetime as dt
import email
import hashlib
from email.policy import default
from pathlib import Path

import pytest

from mailflow import timing
from mailflow.config.rules import load_sequence
from mailflow.engine.digest import content_digest
from mailflow.engine.wire import wire_message
from mailflow.errors import ConfigError, RenderError

NOW = dt.datetime(2026, 12, 30, 15, 0, tzinfo=dt.UTC)
SENDER = {"name": "Dana", "email": "dana@whitfield.example"}
WINDOW = timing.Window(days=frozenset({0, 1, 2, 3, 4}), start=dt.time(9), end=dt.time(17))
PDF = b"%PDF-1.7\n\x00\xff\xfe binary \r\n bytes\n%%EOF\n"

RULE = """
name = "offboarding"
[[stage]]
id = "timeline_notice"
due = "30 days before contract_end"
{extra}
"""


def _rules(tmp_path: Path, extra: str):  # noqa: ANN202
    path = tmp_path / "offboarding.toml"
    path.write_text(RULE.format(extra=extra))
    return load_sequence(path, WINDOW)


def test_a_stage_attaches_the_document_when_its_condition_holds(tmp_path):
    seq = _rules(tmp_path, 'attach = ["offboarding_doc"]\nattach_format = "html"\n'
                           'attach_when = "not links.offboarding_doc"')
    stage = seq.stage("timeline_notice")
    assert stage.attach_format == "html"
    assert stage.attachments_for({"links": {}}) == ("offboarding_doc",)
    assert stage.attachments_for({"links": {"offboarding_doc": "https://x"}}) == ()
    assert _rules(tmp_path, "").stage("timeline_notice").attachments_for({}) == ()
    assert _rules(tmp_path, 'attach = ["offboarding_doc"]').stage(
        "timeline_notice").attach_format == "auto"


@pytest.mark.parametrize(("extra", "says"), [
    ('attach = ["invoice"]', "attach: cannot attach 'invoice' (known: offboarding_doc"),
    ('attach = ["offboarding_doc", "offboarding_doc"]', "attach: a document is listed twice"),
    ('attach = "offboarding_doc"', "attach: expected"),
    ('attach = ["offboarding_doc"]\nattach_format = "docx"', "attach_format"),
    ('attach = ["offboarding_doc"]\nattach_when = "links.("', "attach_when: cannot read"),
])
def test_bad_attach_keys_name_the_file_and_key(tmp_path, extra, says):
    with pytest.raises(ConfigError) as err:
        _rules(tmp_path, extra)
    assert "offboarding.toml" in str(err.value) and says in str(err.value)


def _record() -> dict:
    return {"key": "e/s/0", "engagement": "e", "step": 0, "thread_root": None,
            "subject": "Plan", "to": [{"name": "MJ", "email": "mj@client.example"}],
            "message_id": "<m0@whitfield.example>"}


def test_the_wire_message_carries_the_document_as_a_named_attachment():
    raw, _ = wire_message(_record(), None, [], ("<p>h</p>", "t"), SENDER, False, NOW,
                          (("offboarding-e.pdf", "application/pdf", PDF),))
    msg = email.message_from_bytes(raw, policy=default)
    assert msg.get_content_type() == "multipart/mixed"
    body, attachment = msg.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "offboarding-e.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))


def test_without_attachments_the_message_stays_multipart_alternative():
    raw, _ = wire_message(_record(), None, [], ("<p>h</p>", "t"), SENDER, False, NOW)
    assert email.message_from_bytes(raw, policy=default).get_content_type() == (
        "multipart/alternative")


def test_an_unsafe_attachment_name_is_refused():
    with pytest.raises(RenderError, match="unsafe attachment file name"):
        wire_message(_record(), None, [], ("<p>h</p>", "t"), SENDER, False, NOW,
                     (("../x\r\n.pdf", "application/pdf", PDF),))


def test_an_approval_by_number_binds_to_the_attachment_too():
    msg = {"subject": "Plan", "body": "b1", "to": [{"email": "mj@client.example"}],
           "due": "2026-12-30T14:00:00+00:00"}
    before = content_digest(msg)
    ref = hashlib.sha256(PDF).hexdigest()[:32]
    assert content_digest({**msg, "attachments": []}) == before  # older digests stay valid
    with_doc = content_digest({**msg, "attachments": [{"ref": ref}]})
    assert with_doc != before
    assert content_digest({**msg, "attachments": [{"ref": "0" * 32}]}) != with_doc


@pytest.mark.parametrize("condition", [
    "support_offer", "not links.offboarding_doc", "shared_access or invoices_open",
    "deliverables or links.deliverables_folder", " a and not b.c or d ", "notes and orders",
    "none", "true or false"])
def test_a_plain_condition_loads_without_jinja2_and_is_valid_jinja2(condition):
    # rule loading skips Jinja2 for these (start-up time, issue 18): each must compile
    from jinja2.sandbox import SandboxedEnvironment

    from mailflow.config.rules import _PLAIN_CONDITION
    assert _PLAIN_CONDITION.fullmatch(condition)
    SandboxedEnvironment().compile_expression(condition)


@pytest.mark.parametrize("condition", [
    "support_offer and", "not", "a or or b", "a and in", "links.(", "a.b.", "x if y",
    "a == 1", "not not", "and a"])
def test_any_other_condition_is_checked_by_jinja2_when_the_rules_load(tmp_path, condition):
    from mailflow.config.rules import _PLAIN_CONDITION
    assert not _PLAIN_CONDITION.fullmatch(condition)
    try:
        from jinja2.sandbox import SandboxedEnvironment
        SandboxedEnvironment().compile_expression(condition)
    except Exception:  # noqa: BLE001 - a syntax error: loading must name file and key
        with pytest.raises(ConfigError, match="when: cannot read condition"):
            _rules(tmp_path, f'when = "{condition}"')
