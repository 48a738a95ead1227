"""No secret anywhere: a full sequence with SMTP AUTH (password_env) and IMAP (password_command),
then every output line, journal event, state file and error message is searched for them."""

from __future__ import annotations

import os
import stat

import pytest

from tests.helpers import SEND_AT, fill_batch, firsts, imap_toml, reply
from tests.imap_server import dovecot, imap_account  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SMTP_SECRET = "s3cret-pass"  # the smtp_server_auth fixture's password


@pytest.fixture
def secret_proj(proj, smtp_server_auth, imap_account, tmp_path):  # noqa: F811
    secret_file = tmp_path / "imap-secret"
    secret_file.write_text(imap_account.password + "\n")
    command = tmp_path / "imap-password"
    command.write_text(f"#!/bin/sh\ncat {secret_file}\n")
    command.chmod(command.stat().st_mode | stat.S_IXUSR)
    proj.set_config(r"^port = \d+", f"port = {smtp_server_auth.port}\n"
                    'username = "consultant"\npassword_env = "MF_SECRET_SMTP_PW"')
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text() + imap_toml(imap_account, password_command=str(command)))
    os.environ.pop(imap_account.password_env, None)  # only the command knows it
    proj.account = imap_account
    proj.secrets = [SMTP_SECRET, imap_account.password]
    proj.command = command
    return fill_batch(proj, 2)


def test_no_secret_in_any_output_event_state_or_error(secret_proj, smtp_server_auth):
    p = secret_proj
    env = {"MF_SECRET_SMTP_PW": SMTP_SECRET}
    outputs = []

    def cli(*args, now=SEND_AT, env=env):
        r = p.cli(*args, now=now, env=env)
        outputs.append(r.output)
        return r

    r = cli("-vv", "run")
    assert r.exit_code == 0, r.output
    assert len(smtp_server_auth.received) == 2
    msg = {m["key"]: m for m in firsts(p)}["client-00/timeline_notice/0"]
    p.account.append("INBOX", reply(msg, "Thanks, noted.", sender="contact00@client00.example"))
    assert cli("-v", "poll", now="2026-12-31T10:00").exit_code == 0
    for args in (("-vv", "run"), ("status",), ("status", "--json"), ("drafts", "--all-states"),
                 ("log",), ("replies",), ("replies", "--json"), ("plan",),
                 ("run", "--dry-run", "-v"), ("engagement", "show", "client-00")):
        cli(*args, now="2026-12-31T10:05")
    # failures: a wrong SMTP password, a wrong IMAP password, a failing command
    r = cli("run", now="2027-01-20T10:00", env={"MF_SECRET_SMTP_PW": "not-" + SMTP_SECRET})
    outputs.append(r.output)
    p.command.write_text("#!/bin/sh\necho wrong-imap-password\n")
    r = cli("poll", now="2027-01-20T10:05")
    assert r.exit_code != 0 and "login rejected" in r.output
    p.command.write_text(f"#!/bin/sh\necho 'cannot unlock {p.secrets[1][:3]}' >&2\nexit 3\n")
    r = cli("poll", now="2027-01-20T10:06")
    assert r.exit_code != 0 and "exited 3" in r.output
    assert any("login rejected" in o for o in outputs)

    state_dir = p.root / ".mailflow"
    files = [f for f in state_dir.rglob("*") if f.is_file()]
    assert any(f.name == "events.jsonl" for f in files) and any(f.suffix == ".eml" for f in files)
    for secret in p.secrets:
        for out in outputs:
            assert secret not in out, out
        for f in files:
            assert secret.encode() not in f.read_bytes(), f
        assert secret not in p.project.config_path.read_text()
        for r in smtp_server_auth.received:
            assert secret.encode() not in r.raw
