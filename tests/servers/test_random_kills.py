"""`mailflow run` killed (SIGKILL) at random moments, black-box, against aiosmtpd and Dovecot.

The crash-point tests (test_crash_points*.py) end a scenario at every durability point through
the fault injector; this is their randomised complement through the real entry point, with
client replies arriving between runs: after each kill the next runs settle it (the consultant
resolves what is in doubt by looking at what the server got), and in the end nothing reached
a recipient twice, every reply was recorded exactly once, and `doctor` finds the state sound.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailflow import faults
from tests.helpers import imap_toml, received_pairs, reply, two_engagements
from tests.imap_server import dovecot_fixture, imap_account_fixture  # noqa: F401

pytestmark = pytest.mark.slow

# drafting, then each stage's send day inside the New York window
TIMES = ("2026-12-28T10:00", "2026-12-30T09:30", "2027-01-20T09:30", "2027-01-22T09:30",
         "2027-01-26T09:30", "2027-02-02T09:30")


def entry() -> list[str]:
    exe = Path(sys.executable).with_name("mailflow")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mailflow"]


def cli(root: Path, now: str, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([*entry(), "--project", str(root), "--now", now, *args],
                       capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def killed_run(root: Path, now: str, after: float, crash_at: int = 0) -> int:
    """A run SIGKILLed `after` seconds in, or ended by the fault injector at point `crash_at`
    (a kill at a known durability point: the poll's first IMAP commands are points too)."""
    env = {**os.environ, "MAILFLOW_CRASH_AT": str(crash_at)} if crash_at else None
    proc = subprocess.Popen([*entry(), "--project", str(root), "--now", now, "run"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    if not crash_at:
        time.sleep(after)
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    return proc.returncode


def settle(root: Path, now: str, smtp_server) -> None:  # noqa: ANN001
    """Plain runs until nothing is in doubt, resolving as the consultant would."""
    for _ in range(5):
        r = cli(root, now, "run")
        assert r.returncode in (0, 1), r.stderr
        drafts = json.loads(cli(root, now, "drafts", "--json", "--all-states").stdout)
        doubt = [d for d in drafts if d["state"] == "in_doubt"]
        if not doubt:
            return
        got = {str(m.msg["Message-ID"]) for m in smtp_server.received}
        for d in doubt:
            how = "--sent" if d["message_id"] in got else "--resend"
            assert cli(root, now, "drafts", "resolve", d["id"], how).returncode == 0
    pytest.fail(f"still in doubt at {now}")


@pytest.mark.parametrize("seed", [11])
def test_random_kills_never_send_twice_nor_lose_a_reply(tmp_path, smtp_server, imap_account,
                                                        seed):
    rnd = random.Random(seed)
    root, files = two_engagements(tmp_path, smtp_server.port, approval=False, n=6)
    config = root / "mailflow.toml"
    config.write_text(config.read_text() + imap_toml(imap_account))
    assert cli(root, "2026-12-01T10:00", "engagement", "add", *files).returncode == 0
    replied: set[str] = set()
    kills = 0
    for now in TIMES:
        sent = [m for m in json.loads(cli(root, now, "drafts", "--json", "--all-states").stdout)
                if m["sent_at"] and m["id"] not in replied]
        for msg in rnd.sample(sent, k=len(sent) // 2):
            mid = f"<r{len(replied)}@client.example>"
            contact = msg["to"][0]
            imap_account.append("INBOX", reply(msg, "Thanks, noted.", sender=contact, mid=mid))
            replied.add(msg["id"])
        # whether a SIGKILL lands before the run ends is up to the machine's load; one
        # injected crash a day is certain (each run has more than 8 points)
        kills += killed_run(root, now, 0, crash_at=rnd.randint(1, 8)) == faults.CRASH_EXIT
        for _ in range(rnd.randint(1, 2)):
            killed_run(root, now, rnd.uniform(0.2, 1.6))
        settle(root, now, smtp_server)
    assert kills == len(TIMES)
    twice = [pair for pair, n in received_pairs(smtp_server.received).items() if n > 1]
    assert not twice
    recorded = json.loads(cli(root, TIMES[-1], "replies", "--json", "--all-kinds").stdout)
    assert sorted(r["message_id"] for r in recorded) == sorted(
        f"<r{i}@client.example>" for i in range(len(replied)))
    assert cli(root, TIMES[-1], "doctor").returncode == 0
