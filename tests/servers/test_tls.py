"""TLS for IMAP: implicit TLS and STARTTLS against Dovecot with a trustme CA; the shared context."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from mailflow.config.settings import ImapConfig, ServerConfig
from mailflow.errors import ConfigError, TransportError
from mailflow.transport.imap import Mailbox
from mailflow.transport.tls import make_ssl_context
from tests.imap_server import (  # noqa: F401
    HOST,
    Account,
    Dovecot,
    dovecot_fixture,
    imap_account_fixture,
    make_message,
)


def open_and_close(cfg: ImapConfig) -> None:
    """Connect and log in (and out) once."""
    with Mailbox(cfg):
        pass


# --- the shared context ----------------------------------------------------------------------

def test_context_verifies_by_default() -> None:
    ctx = make_ssl_context(ServerConfig(host="mail.example.test", port=993, security="tls"))
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_context_loads_ca_file(dovecot: Dovecot) -> None:
    ctx = make_ssl_context(ServerConfig(host="x", port=993, security="tls",
                                        ca_file=dovecot.ca_pem))
    assert any(c.get("organizationName") or c.get("subject") for c in ctx.get_ca_certs())


def test_unreadable_ca_file_is_a_config_error(tmp_path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match="cannot load ca_file"):
        make_ssl_context(ServerConfig(host="x", port=993, security="tls", ca_file=str(missing)))


# --- against Dovecot ---------------------------------------------------------------------------

@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_trusted_ca_connects(imap_account: Account, security: str) -> None:
    imap_account.append("INBOX", make_message(1))
    cfg = imap_account.config(security)
    with Mailbox(cfg) as mb:
        assert [f.uid for f in mb.poll("INBOX", None)] == [1]
        if security == "starttls":
            # after STARTTLS the capabilities are the post-login ones, not a cached clear list
            assert "STARTTLS" not in mb.capabilities()
        assert mb.stats.bytes_in > 0


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_untrusted_ca_is_refused(dovecot: Dovecot, imap_account: Account, security: str) -> None:
    cfg = imap_account.config(security, ca_file=dovecot.other_ca_pem)
    with pytest.raises(TransportError, match=r"^imap localhost:\d+: TLS certificate verify failed: "
                                             r".*(unable to get local issuer|self.signed)"):
        open_and_close(cfg)


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_wrong_host_name_is_refused(imap_account: Account, security: str) -> None:
    # By IP address no SNI is sent, so Dovecot presents its certificate for imap.example.test.
    cfg = imap_account.config(security, host=HOST)
    with pytest.raises(TransportError) as caught:
        open_and_close(cfg)
    msg = str(caught.value)
    assert msg.startswith(f"imap {HOST}:{cfg.port}: TLS certificate verify failed: ")
    assert "mismatch" in msg and "127.0.0.1" in msg
    assert "\n" not in msg and imap_account.password not in msg


# --- STARTTLS required -------------------------------------------------------------------------

class NoStartTLSServer:
    """A minimal IMAP greeter that never offers STARTTLS and records what the client sent."""

    def __init__(self) -> None:
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as rfile:
            conn.sendall(b"* OK IMAP4rev1 ready\r\n")
            for line in rfile:
                self.received.append(line)
                tag, _, rest = line.decode().partition(" ")
                command = rest.strip().upper()
                if command == "CAPABILITY":
                    conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"
                                 + f"{tag} OK done\r\n".encode())
                elif command == "LOGOUT":
                    conn.sendall(b"* BYE bye\r\n" + f"{tag} OK done\r\n".encode())
                    return
                else:
                    conn.sendall(f"{tag} BAD not here\r\n".encode())

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


def test_starttls_required_but_not_offered(imap_account: Account) -> None:
    server = NoStartTLSServer()
    try:
        cfg = imap_account.config("starttls", host=HOST, port=server.port)
        with pytest.raises(TransportError, match=r"server does not offer STARTTLS"):
            open_and_close(cfg)
    finally:
        server.close()
    sent = b"".join(server.received)
    assert b"LOGIN" not in sent.upper() and imap_account.password.encode() not in sent
