"""The lead sends as themselves (issue 15): two identities, each with its own aiosmtpd server
and Dovecot mailbox; one identity's trouble (server down, secret missing) stays its own."""

from __future__ import annotations

import email
from email.policy import default

import pytest

from mailflow.transport.sink import free_port
from tests.helpers import DRAFT_AT, SEND_AT, imap_toml, load, reply
from tests.imap_server import dovecot_fixture, imap_account_fixture  # noqa: F401
from tests.smtp_server import SmtpServer

LEE = ("Lee Park", "lee@parkassoc.example")
LEE_KEY = "lee-2026/timeline_notice/0"
DANA_KEY = "northwind-2026/timeline_notice/0"


def identity_toml(smtp_port: int, account, *, smtp_secret: str = "",  # noqa: ANN001
                  imap_secret: dict | None = None) -> str:
    """Lee's [[identity]]: its own SMTP server and its own Dovecot mailbox."""
    imap = imap_toml(account, **(imap_secret or {})).replace("[imap]", "[identity.imap]")
    smtp_login = f'username = "lee"\npassword_env = "{smtp_secret}"\n' if smtp_secret else ""
    return f"""
[[identity]]
name = "{LEE[0]}"
email = "{LEE[1]}"
reply_to_token = true
per_minute = 5

[identity.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
timeout = 5
{smtp_login}{imap}"""


@pytest.fixture
def lee_smtp():
    """Lee's own SMTP server, beside the project's (Dana's)."""
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def two(proj, imap_account, dovecot, lee_smtp):  # noqa: F811
    """Dana ([sender], [smtp], [imap]) and Lee ([[identity]]), each leading one engagement."""
    lee_account = dovecot.add_user()
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text() + imap_toml(imap_account)
                   + identity_toml(lee_smtp.port, lee_account))
    add_both(proj)
    return proj, imap_account, lee_account


def add_both(proj) -> None:  # noqa: ANN001
    lee = proj.example(**{
        r'^id = "northwind-2026"': 'id = "lee-2026"',
        r'^name = "Dana Whitfield"': f'name = "{LEE[0]}"',
        r'^email = "dana@whitfield-consulting.example"': f'email = "{LEE[1]}"',
        r"mj\.alvarez@northwind\.example": "ops@contoso.example",
        r"tom\.becker@northwind\.example": "it@contoso.example"})
    path = proj.write_engagement("lee", lee)
    r = proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"), str(path),
                 now=DRAFT_AT)
    assert r.exit_code == 0, r.output
    proj.cli("run", now=DRAFT_AT)
    r = proj.cli("drafts", "approve", "--all", "-y", now=DRAFT_AT)
    assert r.exit_code == 0, r.output


def sent_ids(account, folder: str = "Sent") -> list[str]:  # noqa: ANN001
    with account.client() as c:
        if not c.folder_exists(folder):
            return []
        c.select_folder(folder, readonly=True)
        fetched = c.fetch(c.search("ALL"), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        return [email.message_from_bytes(d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"],
                                         policy=default)["Message-ID"] for d in fetched.values()]


def test_each_lead_sends_as_themselves_through_their_own_server_and_mailbox(
        two, smtp_server, lee_smtp):
    proj, dana_box, lee_box = two
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 0, r.output
    assert len(smtp_server.client_mail) == 1 and len(lee_smtp.received) == 1
    dana, lee = smtp_server.client_mail[0], lee_smtp.received[0]
    assert dana.mail_from == "dana@whitfield-consulting.example"
    assert "Dana Whitfield" in str(dana.msg["From"])
    assert dana.msg["Message-ID"].endswith("@whitfield-consulting.example>")
    assert lee.mail_from == LEE[1]
    assert str(lee.msg["From"]) == f"{LEE[0]} <{LEE[1]}>"
    assert lee.msg["Message-ID"].endswith("@parkassoc.example>")
    reply_to = lee.msg["Reply-To"].addresses[0]
    assert reply_to.username.startswith("lee+") and reply_to.domain == "parkassoc.example"
    assert dana.msg["Reply-To"] is None  # Dana's [sender] has no reply_to_token
    text = lee.msg.get_body(("plain",)).get_content()
    signature = text.rpartition("\n-- ")[2]  # the example's access owners name Dana too
    assert LEE[0] in signature and LEE[1] in signature and "Dana" not in signature
    state = load(proj)
    assert state.messages[LEE_KEY]["sender_email"] == LEE[1]
    # each Sent copy is in its own lead's mailbox, and only there
    assert sent_ids(dana_box) == [dana.msg["Message-ID"]]
    assert sent_ids(lee_box) == [lee.msg["Message-ID"]]
    # replies land in each lead's own inbox; both are read, each with its own cursor
    lee_msg = state.messages[LEE_KEY]
    dana_box.append("INBOX", reply(state.messages[DANA_KEY], "Thanks Dana, all clear."))
    lee_box.append("INBOX", reply(lee_msg, "Thanks Lee, noted.", sender="ops@contoso.example",
                                  mid="<r2@contoso.example>"))
    r = proj.cli("run", now="2026-12-30T11:00")
    assert r.exit_code in (0, 1), r.output
    replies = {rep["message"]: rep for rep in load(proj).replies.values()}
    assert set(replies) == {DANA_KEY, LEE_KEY}
    assert replies[LEE_KEY]["source"].startswith(f"{LEE[1]}:INBOX:")
    assert replies[DANA_KEY]["source"].startswith("INBOX:")  # the project's own: as before
    cursors = load(proj).cursors
    assert {"INBOX", f"{LEE[1]}:INBOX"} <= set(cursors)
    assert cursors[f"{LEE[1]}:INBOX"]["last_uid"] == 1  # past Lee's one reply
    r = proj.cli("drafts", "show", LEE_KEY, now="2026-12-30T11:00")
    assert f"From:    {LEE[0]} <{LEE[1]}>" in r.output


def test_one_identity_s_smtp_down_holds_only_its_own_engagements(two, smtp_server, lee_smtp):
    proj, _, _ = two
    down = free_port()  # nothing listens there: Lee's server is down
    proj.set_config(rf"^port = {lee_smtp.port}$", f"port = {down}")
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 6, r.output
    lines = [line for line in r.stderr.splitlines() if "smtp" in line]
    assert len(lines) == 1 and f"identity {LEE[1]} (Lee Park)" in lines[0], r.stderr
    assert f"127.0.0.1:{down}" in lines[0]
    assert len(smtp_server.client_mail) == 1  # Dana's went out all the same
    messages = load(proj).messages
    assert messages[DANA_KEY]["state"] == "sent"
    assert messages[LEE_KEY]["state"] == "approved"  # untouched: never in doubt
    proj.set_config(rf"^port = {down}$", f"port = {lee_smtp.port}")  # back up
    r = proj.cli("run", now="2026-12-30T09:45")
    assert r.exit_code == 0, r.output
    assert len(lee_smtp.received) == 1 and len(smtp_server.client_mail) == 1
    assert load(proj).messages[LEE_KEY]["state"] == "sent"


def test_a_missing_secret_names_the_identity_and_the_others_go_on(
        proj, imap_account, dovecot, lee_smtp, smtp_server, monkeypatch):  # noqa: F811
    lee_account = dovecot.add_user()
    monkeypatch.delenv("MAILFLOW_TEST_LEE_SMTP", raising=False)
    monkeypatch.delenv("MAILFLOW_TEST_LEE_IMAP", raising=False)
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text() + imap_toml(imap_account) + identity_toml(
        lee_smtp.port, lee_account, smtp_secret="MAILFLOW_TEST_LEE_SMTP",
        imap_secret={"password_env": "MAILFLOW_TEST_LEE_IMAP"}))
    add_both(proj)
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 6, r.output
    named = [line for line in r.stderr.splitlines() if "is not set" in line]
    assert len(named) == 2, r.stderr  # the poll and the send, each naming Lee's identity
    assert all(f"identity {LEE[1]} (Lee Park)" in line for line in named), named
    assert any("MAILFLOW_TEST_LEE_SMTP" in line for line in named)
    assert any("MAILFLOW_TEST_LEE_IMAP" in line for line in named)
    assert len(smtp_server.client_mail) == 1 and not lee_smtp.received
    assert sent_ids(imap_account) == [smtp_server.client_mail[0].msg["Message-ID"]]
    state = load(proj)
    assert state.messages[DANA_KEY]["state"] == "sent"
    assert state.messages[LEE_KEY]["state"] == "approved"
    # Dana's mailbox is still read while Lee's cannot be
    imap_account.append("INBOX", reply(state.messages[DANA_KEY], "Thanks, all clear."))
    r = proj.cli("run", now="2026-12-30T11:00")
    assert [rep["message"] for rep in load(proj).replies.values()] == [DANA_KEY]
    assert all(f"identity {LEE[1]}" in line for line in r.stderr.splitlines()
               if "is not set" in line)


def test_check_connect_logs_in_as_every_identity_and_names_the_one_that_fails(
        two, lee_smtp):
    proj, _, lee_box = two
    r = proj.cli("check", "--connect")
    assert r.exit_code == 0, r.output
    assert f"identity {LEE[1]} (Lee Park):" in r.output
    assert f"smtp 127.0.0.1:{lee_smtp.port}: connected" in r.output
    assert f"logged in as {lee_box.user}" in r.output
    down = free_port()
    proj.set_config(rf"^port = {lee_smtp.port}$", f"port = {down}")
    r = proj.cli("check", "--connect")
    assert r.exit_code == 6, r.output
    assert f"127.0.0.1:{down}" in r.stderr and "Dana" not in r.stderr
