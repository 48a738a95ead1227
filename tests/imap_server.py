"""A real Dovecot IMAP server on 127.0.0.1 for the tests (see /work/shared/dovecot-test-server.md).

Use it from a test module (tests/ is a package; no conftest needed):

    from tests.imap_server import dovecot_fixture, imap_account_fixture  # noqa: F401

and ask for `dovecot` / `imap_account` in test parameters. (The functions carry a _fixture
suffix and register the short names with pytest, so ruff's F811 does not fire on every test
parameter; `from tests.imap_server import dovecot  # noqa: F401` works too, but then ruff
flags each `dovecot` parameter as a redefinition.)

`dovecot` (session) is the server: host, port (plaintext + STARTTLS), tls_port (implicit TLS),
ca_pem (the trustme CA that signed its certificates), add_user(), stop()/start(), log().
`imap_account` (function) is a fresh user with an empty mailbox: append(), create_folder(),
delete_folder(), fill(), flags(), client(), config().

TLS: with SNI "localhost" Dovecot serves a certificate for localhost/127.0.0.1; without SNI
(connecting to an IP address sends none, RFC 6066 section 3) it serves a certificate for
"imap.example.test" only, so connecting to 127.0.0.1 by IP exercises the host-name check.
"""

from __future__ import annotations

import contextlib
import grp
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from imapclient import IMAPClient

from mailflow.config.settings import Credentials, ImapConfig

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot")
                                      else None)
HOST = "127.0.0.1"
TLS_NAME = "localhost"  # the name the valid certificate is issued for (reached via SNI)
WRONG_NAME = "imap.example.test"  # the only name in the certificate served without SNI

_CONF = """\
base_dir = {tmp}/run
state_dir = {tmp}/run/state
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{tmp}/tls/wrong-cert.pem
ssl_key = <{tmp}/tls/wrong-key.pem
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
log_path = {tmp}/dovecot.log
default_login_user = nobody
default_internal_user = root
default_internal_group = root
first_valid_uid = 1
# SNI (RFC 6066): clients that ask for "localhost" get the certificate valid for it
local_name {tls_name} {{
  ssl_cert = <{tmp}/tls/cert.pem
  ssl_key = <{tmp}/tls/key.pem
}}
passdb {{
  driver = passwd-file
  # One file per user: Dovecot re-reads a passwd-file at most once a second, so users added
  # to a single shared file in quick succession would fail to log in.
  args = scheme=PLAIN username_format=%u {tmp}/users.d/%u
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={tmp}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # Failed logins (the wrong-password tests) would otherwise earn 127.0.0.1 an auth penalty
  # of 2, 4, 8... seconds on every later login; mode 0 turns penalty tracking off.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    # The daemonized master is re-parented to an init that may never reap it: a zombie
    # answers kill(pid, 0), so look at its state too.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    """The pids whose parent is pid (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return found


def make_message(n: int, *, subject: str | None = None, message_id: str | None = None,
                 sender: str = "client@example.test", to: str = "consultant@example.test",
                 body: str | None = None) -> bytes:
    """A small RFC 5322 message (CRLF line ends) numbered n."""
    mid = message_id or f"<msg-{n}@example.test>"
    lines = [
        f"From: Client <{sender}>",
        f"To: {to}",
        f"Subject: {subject or f'Re: message {n}'}",
        f"Message-ID: {mid}",
        "Date: Mon, 02 Jun 2025 10:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body or f"Reply number {n}.",
        "",
    ]
    return "\r\n".join(lines).encode()


@dataclass
class Account:
    """One IMAP user on the test Dovecot, with helpers that talk to it directly."""

    server: Dovecot
    user: str
    password: str
    password_env: str

    def client(self, *, tls: bool = False) -> IMAPClient:
        """A logged-in imapclient connection (use as a context manager)."""
        port = self.server.tls_port if tls else self.server.port
        ctx = None
        if tls:
            import ssl
            ctx = ssl.create_default_context(cafile=self.server.ca_pem)
        c = IMAPClient(TLS_NAME if tls else HOST, port=port, ssl=tls, ssl_context=ctx, timeout=10)
        try:
            c.login(self.user, self.password)
        except Exception:
            c.shutdown()
            raise
        return c

    def config(self, security: str = "none", **overrides) -> ImapConfig:
        """An ImapConfig for this account; password via the env var the fixture set."""
        port = {"none": self.server.port, "starttls": self.server.port,
                "tls": self.server.tls_port}[security]
        kw: dict = dict(
            host=TLS_NAME if security != "none" else HOST, port=port, security=security,
            credentials=Credentials(username=self.user, password_env=self.password_env),
            timeout=10.0, ca_file=self.server.ca_pem if security != "none" else None,
        )
        kw.update(overrides)
        return ImapConfig(**kw)

    def append(self, folder: str, raw: bytes, flags: Iterable[bytes | str] = (),
               when: datetime | None = None) -> None:
        """APPEND one message (creating the folder if needed)."""
        with self.client() as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            c.append(folder, raw, flags=tuple(flags), msg_time=when)

    def create_folder(self, folder: str) -> None:
        """CREATE a folder."""
        with self.client() as c:
            c.create_folder(folder)

    def delete_folder(self, folder: str) -> None:
        """DELETE a folder (its next incarnation gets a new UIDVALIDITY)."""
        with self.client() as c:
            c.delete_folder(folder)

    def flags(self, folder: str) -> dict[int, tuple[bytes, ...]]:
        """UID -> FLAGS of every message in a folder (read-only; does not change flags)."""
        with self.client() as c:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            return {uid: d[b"FLAGS"] for uid, d in c.fetch(uids, ["FLAGS"]).items()}

    def folder_state(self, folder: str) -> tuple[int, int]:
        """(UIDVALIDITY, UIDNEXT) as seen by a separate connection."""
        with self.client() as c:
            st = c.folder_status(folder, ["UIDVALIDITY", "UIDNEXT"])
            return st[b"UIDVALIDITY"], st[b"UIDNEXT"]

    def fill(self, folder: str, n: int, *, size: int = 0, start: int = 1) -> None:
        """Put n messages into a folder fast by writing Maildir files directly.

        Dovecot indexes them on the next access (UIDs in file-name order). Works on a folder
        that was never opened, and also later: Dovecot rescans cur/ when its mtime changes.
        """
        maildir = self.server.mail_dir / self.user / "Maildir"
        box = maildir if folder.upper() == "INBOX" else maildir / f".{folder}"
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        if box != maildir:
            (box / "maildirfolder").touch()
        now = int(time.time())
        pad = "x" * size
        for i in range(start, start + n):
            raw = make_message(i, body=f"Reply number {i}.{pad}")
            # Maildir name: time.unique.host,S=size:2,flags (empty flags: unseen)
            name = f"{now}.M{i:08d}P{os.getpid()}.mailflowtest,S={len(raw)}:2,"
            (box / "cur" / name).write_bytes(raw)
        self.server.chown_mail()


class Dovecot:
    """A Dovecot process serving IMAP (plain + STARTTLS) and IMAPS on 127.0.0.1."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.host = HOST
        self.tls_name = TLS_NAME
        self.wrong_name = WRONG_NAME
        self.port = free_port()
        self.tls_port = free_port()
        self.mail_dir = tmp / "mail"
        self.users_dir = tmp / "users.d"
        self.conf = tmp / "dovecot.conf"
        self.log_file = tmp / "dovecot.log"
        self._counter = itertools.count(1)
        self._env_vars: list[str] = []
        self._write_files()

    def _write_files(self) -> None:
        import trustme

        tls = self.tmp / "tls"
        tls.mkdir()
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(tls / "ca.pem"))
        good = ca.issue_cert(TLS_NAME, HOST)
        good.cert_chain_pems[0].write_to_path(str(tls / "cert.pem"))
        good.private_key_pem.write_to_path(str(tls / "key.pem"))
        wrong = ca.issue_cert(WRONG_NAME)
        wrong.cert_chain_pems[0].write_to_path(str(tls / "wrong-cert.pem"))
        wrong.private_key_pem.write_to_path(str(tls / "wrong-key.pem"))
        # A second, unrelated CA: trusting it must not be enough to connect.
        trustme.CA().cert_pem.write_to_path(str(tls / "other-ca.pem"))
        self.ca_pem = str(tls / "ca.pem")
        self.other_ca_pem = str(tls / "other-ca.pem")
        self.mail_dir.mkdir()
        self.users_dir.mkdir()
        self.conf.write_text(_CONF.format(tmp=self.tmp, port=self.port, tls_port=self.tls_port,
                                          tls_name=TLS_NAME))
        # mkdtemp makes 0700; the dovecot user must traverse it or every login fails.
        os.chmod(self.tmp, 0o755)
        self.chown_mail()

    def chown_mail(self) -> None:
        """Give the mail tree to the dovecot user (mail may not belong to uid 0)."""
        uid = pwd.getpwnam("dovecot").pw_uid
        gid = grp.getgrnam("dovecot").gr_gid
        for root, dirs, files in os.walk(self.mail_dir):
            os.chown(root, uid, gid)
            for name in itertools.chain(dirs, files):
                os.chown(os.path.join(root, name), uid, gid)

    @property
    def pid(self) -> int | None:
        """The master process id, from master.pid, or None when not running."""
        try:
            pid = int((self.tmp / "run" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _alive(pid) else None

    @property
    def running(self) -> bool:
        """True while the master process is alive."""
        return self.pid is not None

    def start(self, timeout: float = 15.0) -> None:
        """Start Dovecot (daemonizes) and wait until both ports accept connections."""
        with contextlib.suppress(FileNotFoundError):
            (self.tmp / "run" / "master.pid").unlink()  # a zombie's stale pid blocks startup
        # The daemon inherits our stdio: never give it a pipe we would wait on (EOF never comes).
        err_file = self.tmp / "dovecot.stderr"
        with err_file.open("w") as err:
            done = subprocess.run([DOVECOT, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=err, check=False)
        if done.returncode != 0:
            pytest.fail(f"dovecot did not start (exit {done.returncode}): "
                        f"{err_file.read_text().strip()}\n{self.log()}")
        deadline = time.monotonic() + timeout
        # master.pid may appear after the listeners: wait for both, so stop() finds the pid.
        while not (_accepts(self.port) and _accepts(self.tls_port) and self.running):
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"dovecot did not listen on {HOST}:{self.port}/{self.tls_port} "
                            f"within {timeout}s\n{self.log()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Dovecot by the pid in its master.pid and end its own children (open sessions).

        The master's children are found by their parent pid before it goes: a stopped server
        must also drop the IMAP sessions it was serving (the master alone leaves them running).
        """
        pid = self.pid
        if pid is None:
            return
        children = _children(pid)
        os.kill(pid, signal.SIGTERM)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) or _accepts(self.port) or any(_alive(c) for c in children):
            if time.monotonic() > deadline:
                for p in [pid, *children]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)
                break
            time.sleep(0.02)

    def log(self, lines: int = 40) -> str:
        """The last lines of dovecot.log."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no dovecot.log)"
        return "--- dovecot.log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    def add_user(self, user: str | None = None, password: str | None = None) -> Account:
        """Add a passwd-file user (fresh name by default); its password goes in an env var."""
        n = next(self._counter)
        user = user or f"user{n}-{os.getpid()}@example.test"
        password = password or f"pw-{n}-{os.urandom(6).hex()}"
        (self.users_dir / user).write_text(f"{user}:{{PLAIN}}{password}\n")
        env = f"MAILFLOW_TEST_IMAP_PASSWORD_{n}"
        os.environ[env] = password
        self._env_vars.append(env)
        return Account(self, user, password, env)

    def cleanup_env(self) -> None:
        """Remove the password env vars add_user set."""
        for env in self._env_vars:
            os.environ.pop(env, None)


@pytest.fixture(scope="session", name="dovecot")
def dovecot_fixture() -> Iterator[Dovecot]:
    """A Dovecot on 127.0.0.1 for the whole session (skips, or fails under CI, if missing)."""
    if DOVECOT is None:
        msg = "dovecot not installed (apt-get install dovecot-imapd)"
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI must run the IMAP tests")
        pytest.skip(msg)
    tmp = Path(tempfile.mkdtemp(prefix="mailflow-dovecot-"))
    server = Dovecot(tmp)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.cleanup_env()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(name="imap_account")
def imap_account_fixture(dovecot: Dovecot) -> Iterator[Account]:
    """A fresh user with an empty mailbox on the session's Dovecot (restarts it if a test
    stopped it)."""
    if not dovecot.running:
        dovecot.start()
    account = dovecot.add_user()
    yield account
    # Captured output is shown only when the test fails: then the server's side is there too.
    print(dovecot.log())


@dataclass
class SilentServer:
    """A TCP listener that accepts connections and never writes a byte (for timeout tests)."""

    host: str = HOST
    port: int = 0
    _sock: socket.socket | None = field(default=None, repr=False)

    def __enter__(self) -> SilentServer:
        self._sock = socket.socket()
        self._sock.bind((self.host, 0))
        self._sock.listen(8)  # the kernel completes handshakes; we never accept or answer
        self.port = self._sock.getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            self._sock.close()


# The short names, for importing the fixtures under the names they are requested by.
dovecot = dovecot_fixture
imap_account = imap_account_fixture
