"""Transport security against aiosmtpd with a throwaway CA (trustme): implicit TLS and STARTTLS
with a valid certificate work; an untrusted CA or a wrong host name is refused with one clear
line; a password in clear text to a non-loopback host is refused at config load."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.config.settings import load_config
from mailflow.errors import ConfigError
from tests.helpers import SEND_AT, fill_batch, firsts, told_only
from tests.smtp_server import TlsSmtpServer

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(params=["tls", "starttls"])
def tls_server(request, tmp_path):
    folder = tmp_path / "tls"
    folder.mkdir()
    server = TlsSmtpServer(folder, mode=request.param, users={"consultant": "s3cret-pass"})
    server.mode = request.param
    yield server
    server.stop()


def wire(proj, server, *, host="localhost", ca=None) -> None:
    proj.set_config(r'^host = "127\.0\.0\.1"', f'host = "{host}"')
    proj.set_config(r"^port = \d+", f"port = {server.port}\nca_file = \"{ca or server.ca_pem}\"\n"
                    'username = "consultant"\npassword_env = "MF_TLS_SMTP_PW"')
    proj.set_config(r'^security = "none".*$', f'security = "{server.mode}"')


ENV = {"MF_TLS_SMTP_PW": "s3cret-pass"}


def test_a_valid_certificate_connects_and_sends(proj, tls_server):
    fill_batch(proj, 2)
    wire(proj, tls_server)
    r = proj.cli("run", now=SEND_AT, env=ENV)
    assert told_only(r), r.output
    assert len(tls_server.received) == 2
    assert {m["state"] for m in firsts(proj)} == {"sent"}


def test_an_untrusted_certificate_is_refused_with_one_line(proj, tls_server):
    fill_batch(proj, 2)
    wire(proj, tls_server, ca=tls_server.other_ca_pem)
    r = proj.cli("run", now=SEND_AT, env=ENV)
    assert r.exit_code == 6  # issue 17: README's code for a server not reached (was 1)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert lines[0].startswith(f"mailflow: smtp localhost:{tls_server.port}: TLS certificate "
                               "verify failed")
    assert "self-signed" in lines[0] or "unable to get local issuer" in lines[0]
    assert "s3cret-pass" not in r.output
    assert tls_server.received == []
    assert {m["state"] for m in firsts(proj)} == {"approved"}


def test_a_wrong_host_name_is_refused_with_one_line(proj, tls_server):
    fill_batch(proj, 1)
    wire(proj, tls_server, host="127.0.0.1")  # the certificate is for localhost only
    r = proj.cli("run", now=SEND_AT, env=ENV)
    assert r.exit_code == 6  # issue 17: README's code for a server not reached (was 1)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert f"smtp 127.0.0.1:{tls_server.port}: TLS certificate verify failed" in lines[0]
    assert "mismatch" in lines[0].lower() or "127.0.0.1" in lines[0]
    assert tls_server.received == []


def test_a_missing_ca_file_is_named(proj, tls_server, tmp_path):
    fill_batch(proj, 1)
    wire(proj, tls_server, ca=str(tmp_path / "nope.pem"))
    r = proj.cli("run", now=SEND_AT, env=ENV)
    assert r.exit_code != 0
    assert "nope.pem" in r.output and len(r.output.strip().splitlines()) == 1
    assert tls_server.received == []


def test_starttls_required_but_not_offered_is_refused(proj, smtp_server):
    fill_batch(proj, 1)
    proj.set_config(r'^security = "none".*$', 'security = "starttls"')
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 6  # issue 17: README's code for a server not reached (was 1)
    assert f"smtp 127.0.0.1:{smtp_server.port}: the server does not offer STARTTLS" in r.output
    assert smtp_server.client_mail == []


def _config(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "mailflow.toml"
    path.write_text(f"""
[sender]
name = "Dana"
email = "dana@example.com"

[smtp]
host = "mail.example.com"
port = 25
security = "none"
username = "dana"
{server}
""")
    return path


@pytest.mark.parametrize("secret", ['password_env = "X"', 'password_command = "pass x"',
                                    'oauth2_token_command = "tok"'])
def test_a_password_in_clear_to_a_remote_host_is_refused_at_load(tmp_path, secret):
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, secret))
    assert "smtp.security" in str(err.value) and "mail.example.com:25" in str(err.value)
    assert "allow_insecure" in str(err.value)
    cfg = load_config(_config(tmp_path, secret + "\nallow_insecure = true"))
    assert cfg.smtp.allow_insecure


def test_the_same_for_imap(tmp_path):
    path = _config(tmp_path, "")
    path.write_text(path.read_text() + '\n[imap]\nhost = "imap.example.com"\nsecurity = "none"\n'
                    'username = "dana"\npassword_env = "X"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "imap.security" in str(err.value)


def test_a_password_in_mailflow_toml_is_refused(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, 'password = "hunter2"'))
    assert "smtp.password" in str(err.value) and "hunter2" not in str(err.value)
