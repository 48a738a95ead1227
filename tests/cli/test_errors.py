"""Bad input gets one clear line, a non-zero exit, and loses nothing (issue 2's list)."""

from __future__ import annotations

import json

import pytest

from mailflow import store as store_mod
from mailflow.store import Store
from tests.helpers import make_project, told_only


def added(proj):
    r = proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
    assert r.exit_code == 0, r.output
    return r


def one_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_malformed_config_names_file_and_line_exit_2(proj, smtp_server):
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text().replace('[sender]', '[sender\n'))
    r = proj.cli("run", now="2026-12-30T10:00")
    assert r.exit_code == 2
    line = one_line(r.output)
    assert "mailflow.toml" in line and "line" in line


def test_wrong_type_in_config_names_the_key(proj, smtp_server):
    proj.set_config(r"^port = \d+", 'port = "twenty-five"')
    line = one_line(proj.cli("run").output)
    assert "smtp.port" in line and "expected an integer" in line


def test_a_misspelt_time_zone_names_the_key_and_the_zone_meant(proj, smtp_server):
    proj.set_config(r"^time_zone = .*$", 'time_zone = "America/New_Yrok"')
    r = proj.cli("status")
    assert r.exit_code == 2
    assert one_line(r.output).endswith(
        "mailflow.toml: time_zone: unknown time zone 'America/New_Yrok' "
        "(did you mean America/New_York?)")


def test_secret_in_config_file_is_refused(proj, smtp_server):
    proj.set_config(r"^security = \"none\"", 'security = "none"\npassword = "hunter2"')
    r = proj.cli("run")
    assert r.exit_code == 2 and "smtp.password" in r.output and "hunter2" not in r.output


def test_rule_typo_is_caught_with_a_suggestion(proj, smtp_server):
    rules = proj.root / "rules" / "offboarding.toml"
    rules.write_text(rules.read_text().replace('on_reply = "feedback"', 'aproval = false'))
    r = proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
    assert r.exit_code == 2
    line = one_line(r.output)
    assert "offboarding.toml" in line and "stage[4].aproval" in line
    assert "did you mean 'approval'" in line


def test_rule_referring_to_unknown_template(proj, smtp_server):
    rules = proj.root / "rules" / "offboarding.toml"
    rules.write_text(rules.read_text().replace('template = "support_offer"',
                                               'template = "support_ofer"'))
    line = one_line(proj.cli("run").output)
    assert "template 'support_ofer' not found" in line and "stage[2].template" in line


def test_malformed_engagement_file_adds_nothing(proj, smtp_server):
    bad = proj.write_engagement("bad", proj.example(**{r"^contract_end = .*$":
                                                       'contract_end = "soon"'}))
    good = proj.root / "engagements" / "example.toml"
    r = proj.cli("engagement", "add", str(good), str(bad))
    assert r.exit_code == 2
    assert "bad.toml: dates.contract_end: expected a date" in one_line(r.output)
    assert not (proj.root / ".mailflow" / "state.json").exists()
    assert json.loads(proj.cli("engagement", "list", "--json").output) == []


def test_header_injection_in_engagement_is_refused(proj, smtp_server):
    bad = proj.write_engagement("inj", proj.example(**{
        r'^client = .*$': r'client = "Acme\\r\\nBcc: victim@example.com"'}))
    r = proj.cli("engagement", "add", str(bad))
    assert r.exit_code == 2 and "client" in r.output and "line breaks" in r.output


def test_invalid_address_is_refused(proj, smtp_server):
    bad = proj.write_engagement("addr", proj.example(**{
        r'mj\.alvarez@northwind\.example': "mj.alvarez@@northwind"}))
    r = proj.cli("engagement", "add", str(bad))
    assert r.exit_code == 2 and "contacts.to[0].email" in r.output


def test_adding_the_same_id_twice_is_an_error_not_an_overwrite(proj, smtp_server):
    added(proj)
    r = proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
    assert r.exit_code == 2 and "already exists" in r.output
    assert proj.cli("engagement", "add", "--replace",
                    str(proj.root / "engagements/example.toml")).exit_code == 0


def test_missing_template_variable_blocks_that_draft_only(proj, smtp_server):
    body = proj.root / "templates" / "emails" / "en" / "timeline_notice" / "body.txt"
    body.write_text(body.read_text().replace("Questions of any size are welcome.",
                                             "{{ engagement.purchase_order }}"))
    added(proj)
    other = proj.write_engagement("other", proj.example(**{r'^id = ".*"': 'id = "other"'}))
    assert proj.cli("engagement", "add", str(other)).exit_code == 0
    r = proj.cli("run", now="2026-12-28T10:00")
    # issue 17: a draft that cannot be rendered is 7, the README's code (was 1)
    assert r.exit_code == 7
    assert "undefined variable" in r.output and "purchase_order" in r.output
    assert "northwind-2026" in r.output
    drafts = json.loads(proj.cli("drafts", "--json").output)
    assert {d["id"]: d["state"] for d in drafts}["northwind-2026/timeline_notice/0"] == "blocked"
    # fix the template: the next run drafts it
    body.write_text(body.read_text().replace("{{ engagement.purchase_order }}", ""))
    assert told_only(proj.cli("run", now="2026-12-28T11:00"))
    drafts = json.loads(proj.cli("drafts", "--json").output)
    assert all(d["state"] == "awaiting_approval" for d in drafts)


def test_other_engagements_go_on_when_one_draft_is_blocked(proj, smtp_server):
    added(proj)
    other = proj.write_engagement("other", proj.example(**{
        r'^id = ".*"': 'id = "other"', r'^client = ".*"': 'client = "Other Co"'}))
    assert proj.cli("engagement", "add", str(other)).exit_code == 0
    body = proj.root / "templates" / "emails" / "en" / "timeline_notice" / "body.txt"
    body.write_text(body.read_text().replace(
        "Questions of any size are welcome.", "{% if client == 'Other Co' %}{{ nope }}{% endif %}"))
    proj.cli("run", now="2026-12-28T10:00")
    proj.cli("drafts", "approve", "--all", "-y", now="2026-12-28T10:00")
    r = proj.cli("run", now="2026-12-30T10:00")
    # issue 17: a draft that cannot be rendered is 7, the README's code (was 1)
    assert r.exit_code == 7 and "other/timeline_notice/0" in r.output
    assert len(smtp_server.client_mail) == 1
    assert smtp_server.client_mail[0].rcpt_tos[0] == "mj.alvarez@northwind.example"


def test_unreachable_smtp_is_one_line_and_nothing_is_marked_sent(tmp_path):
    from mailflow.transport.sink import free_port
    proj = make_project(tmp_path, free_port())  # nothing listens there
    added(proj)
    proj.cli("run", now="2026-12-28T10:00")
    proj.cli("drafts", "approve", "--all", "-y", now="2026-12-28T10:00")
    r = proj.cli("run", now="2026-12-30T10:00")
    assert r.exit_code == 6  # issue 17: the README's code for a server not reached (was 1)
    line = one_line(r.output)
    assert "127.0.0.1:" in line and "connection refused" in line
    state = Store(proj.project.state_dir).load()
    assert state.messages["northwind-2026/timeline_notice/0"]["state"] == "approved"


@pytest.mark.parametrize("args,code", [
    (("engagement", "show", "nope"), 3), (("drafts", "show", "nope/x"), 3),
    (("drafts", "approve", "nope/x"), 3), (("engagement", "pause", "nope"), 3),
    (("replies", "show", "99"), 3)])
def test_unknown_ids_are_clear_errors(proj, smtp_server, args, code):
    added(proj)
    r = proj.cli(*args)
    assert r.exit_code == code
    assert "nope" in r.output or "99" in r.output


def test_approving_a_sent_message_is_refused(proj, smtp_server):
    added(proj)
    proj.cli("run", now="2026-12-28T10:00")
    proj.cli("drafts", "approve", "--all", "-y", now="2026-12-28T10:00")
    proj.cli("run", now="2026-12-30T10:00")
    r = proj.cli("drafts", "approve", "northwind-2026/timeline_notice")
    assert r.exit_code == 4 and "is sent" in r.output


def test_a_tick_writes_the_database_a_bounded_number_of_times(proj, smtp_server, monkeypatch):
    text = proj.example()
    import re
    for i in range(30):
        path = proj.write_engagement(f"e{i}", re.sub(r'^id = ".*"', f'id = "c{i}"', text,
                                                     flags=re.M))
        assert proj.cli("engagement", "add", str(path)).exit_code == 0
    proj.set_config(r"^per_minute = 20", "per_minute = 100")
    writes = []
    real = store_mod.AtomicJSONStorage.write
    monkeypatch.setattr(store_mod.AtomicJSONStorage, "write",
                        lambda self, data: (writes.append(1), real(self, data)))
    assert told_only(proj.cli("run", now="2026-12-28T10:00"))  # plans + drafts 30
    assert len(writes) == 1
    proj.cli("drafts", "approve", "--all", "-y", now="2026-12-28T10:00")
    writes.clear()
    assert told_only(proj.cli("run", now="2026-12-30T10:00"))  # sends 30
    assert len(smtp_server.client_mail) == 30 and len(writes) == 1
    writes.clear()
    assert told_only(proj.cli("run", now="2026-12-30T10:05"))  # nothing to do
    assert len(writes) <= 1
