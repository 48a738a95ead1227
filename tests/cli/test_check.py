"""`mailflow check [--connect]`: every problem at once, with file and key; servers only asked."""

from __future__ import annotations

import datetime as dt

import pytest

from mailflow.desk.checks import run_checks
from mailflow.transport.sink import Sink, free_port
from tests.helpers import make_project
from tests.imap_server import dovecot, imap_account  # noqa: F401
from tests.smtp_server import RecordingHandler, _Auth

NOW = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def auth_server():
    """An aiosmtpd that offers AUTH without TLS (loopback) for user consultant."""
    from aiosmtpd.controller import Controller
    handler = RecordingHandler()
    sink = Sink(handler, "127.0.0.1", free_port())
    sink.controller = Controller(handler, hostname="127.0.0.1", port=sink.port, loop=sink.loop,
                                 authenticator=_Auth({"consultant": "s3cret-pass"}),
                                 auth_require_tls=False)
    sink.start()
    sink.received = handler.received
    yield sink
    sink.stop()


def smtp_login(proj) -> None:
    proj.set_config(r'^# username = .*\n# password_env = "MAILFLOW_SMTP_PASSWORD"',
                    'username = "consultant"\npassword_env = "MF_TEST_SMTP_PW"')


def problems_of(proj, connect: bool = False) -> list[str]:
    return run_checks(proj.project, connect=connect, now=NOW)[0]


def test_a_fresh_project_is_all_good(tmp_path):
    proj = make_project(tmp_path)
    r = proj.cli("check")
    assert r.exit_code == 0, r.output
    assert r.output.strip().endswith("all good")
    # the example engagement is rendered: five stages + one reminder
    assert "1 engagement(s), rendered 6 email(s)" in r.output


def test_stored_engagements_are_rendered_too(tmp_path):
    proj = make_project(tmp_path)
    # issue 17: a stored copy of a file in engagements/ is the same engagement (counted once,
    # see test_a_stored_copy_of_a_file_is_one_engagement); one added from elsewhere is another
    other = tmp_path / "elsewhere.toml"
    other.write_text(proj.example(**{r'^id = "northwind-2026"': 'id = "other-2026"'}))
    assert proj.cli("engagement", "add", str(other)).exit_code == 0
    r = proj.cli("check")
    assert r.exit_code == 0, r.output
    assert "2 engagement(s), rendered 12 email(s)" in r.output


def test_a_stored_copy_of_a_file_is_one_engagement(tmp_path):
    proj = make_project(tmp_path)
    assert proj.cli("engagement", "add", str(proj.root / "engagements/example.toml")
                    ).exit_code == 0
    r = proj.cli("check")
    assert r.exit_code == 0, r.output
    assert "1 engagement(s), rendered 6 email(s)" in r.output


def test_every_problem_is_reported_at_once_with_file_and_key(tmp_path):
    proj = make_project(tmp_path)
    root = proj.root
    # a second rule file with a typo, and a third one that is not TOML
    (root / "rules" / "typo.toml").write_text(
        'name = "typo"\n[[stage]]\nid = "hello"\ndue = "on contract_end"\naproval = true\n')
    (root / "rules" / "broken.toml").write_text("name = \n")
    # a template with a syntax error, and one with an undefined variable
    (root / "templates/emails/en/support_offer/body.txt").write_text(
        "{% if support.summary %}never closed\n")
    (root / "templates/emails/en/timeline_notice/subject.txt").write_text(
        "Wrap-up plan for {{ clent }}\n")
    # a template folder missing a file
    (root / "templates/emails/orphan").mkdir()
    (root / "templates/emails/orphan/subject.txt").write_text("hi\n")
    # an engagement file with a bad address, another fine
    proj.write_engagement("bad", proj.example(**{
        r'^id = .*': 'id = "bad-one"',
        r'email = "mj\.alvarez@northwind\.example"': 'email = "not an address"'}))
    r = proj.cli("check")
    assert r.exit_code == 2
    lines = [line.removeprefix("problem: ") for line in r.stderr.splitlines()]
    assert lines[-1] == f"{len(lines) - 1} problem(s)"
    text = "\n".join(lines)
    assert f"{root}/rules/typo.toml: stage[0].aproval: unknown key (did you mean 'approval'?)" \
        in text
    assert f"{root}/rules/broken.toml: invalid TOML" in text
    assert f"{root}/templates/emails/en/support_offer/body.txt: line " in text
    assert f"{root}/templates/emails/orphan: missing body.html, body.txt" in text
    assert f"{root}/engagements/bad.toml: contacts.to[0].email: not a valid email address" in text
    # the example engagement: the undefined variable, named, for the stage that uses it
    assert (f"{root}/engagements/example.toml: stage timeline_notice (template "
            "timeline_notice): template timeline_notice/subject.txt: undefined variable 'clent'"
            ) in text
    # each problem on one line
    assert all("\n" not in p for p in problems_of(proj))


def test_missing_anchor_dates_and_sequences_are_named(tmp_path):
    proj = make_project(tmp_path)
    rules = proj.root / "rules" / "offboarding.toml"
    rules.write_text(rules.read_text().replace('due = "30 days before contract_end"',
                                               'due = "10 days before kickoff_review"'))
    proj.write_engagement("other", proj.example(**{
        r'^id = .*': 'id = "other-seq"',
        r'^client = .*': 'client = "Other"\nsequence = "renewal"'}))
    got = problems_of(proj)
    assert (f"{proj.root}/engagements/example.toml: dates.kickoff_review: required by stage "
            "'timeline_notice' of offboarding.toml (10 days before kickoff_review)") in got
    assert any(p.startswith(f"{proj.root}/engagements/other.toml: sequence: 'renewal' is not "
                            "defined") for p in got)


def test_a_broken_config_does_not_hide_rule_problems(tmp_path):
    proj = make_project(tmp_path)
    proj.set_config(r'^per_day = 400', 'per_day = "lots"')
    (proj.root / "rules" / "offboarding.toml").write_text("[[stage]]\nid = 'X'\n")
    got = problems_of(proj)
    assert any(p.endswith("schedule.per_day: expected a whole number >= 0, got 'lots'")
               for p in got)
    assert any("offboarding.toml: stage[0].id" in p for p in got)


def test_connect_logs_in_to_smtp_and_sends_nothing(tmp_path, auth_server):
    proj = make_project(tmp_path, auth_server.port)
    smtp_login(proj)
    r = proj.cli("check", "--connect", env={"MF_TEST_SMTP_PW": "s3cret-pass"})
    assert r.exit_code == 0, r.output + r.stderr
    assert f"smtp 127.0.0.1:{auth_server.port}: connected (no encryption), logged in as " \
           "consultant" in r.output
    assert "offers AUTH LOGIN PLAIN" in r.output or "offers AUTH PLAIN LOGIN" in r.output
    assert "sub-addressing" in r.output and "cannot be detected" in r.output
    assert "imap: not configured" in r.output
    assert auth_server.received == []
    assert "s3cret-pass" not in r.output + r.stderr


def test_connect_without_a_server_is_a_problem(tmp_path):
    proj = make_project(tmp_path, free_port())
    r = proj.cli("check", "--connect")
    # issue 17: a server that cannot be reached is 6, as the README's table says (was 2)
    assert r.exit_code == 6
    assert "connection refused" in r.stderr


@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
def test_connect_asks_imap_for_its_capabilities(tmp_path, smtp_server, imap_account,  # noqa: F811
                                                 security):
    proj = make_project(tmp_path, smtp_server.port)
    cfg = imap_account.config(security)
    proj.project.config_path.write_text(proj.project.config_path.read_text() + f"""
[imap]
host = "{cfg.host}"
port = {cfg.port}
security = "{security}"
username = "{imap_account.user}"
password_env = "{imap_account.password_env}"
folders = ["INBOX", "Clients"]
sent_folder = "Sent"
timeout = 10
{f'ca_file = "{cfg.ca_file}"' if cfg.ca_file else ''}
""")
    r = proj.cli("check", "--connect")
    assert r.exit_code == 2  # the folder Clients does not exist
    assert "imap.folders" in r.stderr and "'Clients' does not exist" in r.stderr
    assert f"imap {cfg.address}: connected" in r.output
    assert "IDLE" in r.output and "UIDPLUS" in r.output
    assert "sent folder 'Sent' does not exist yet" in r.output
    imap_account.create_folder("Clients")
    r = proj.cli("check", "--connect")
    assert r.exit_code == 0, r.stderr
    assert imap_account.password not in r.output + r.stderr
