"""Every crash point tried, not sampled (issue 11 item 5).

Each scenario runs once in a forked child that only counts its durability points (journal
appends and fsyncs, checkpoint writes and renames, body writes, each SMTP and IMAP command):
K of them. Then for every N in 1..K a fresh copy of the project is handed to a forked child
that ends itself at point N, as a kill (`os._exit`) or a power cut (also dropping every write
not yet fsynced). A plain `mailflow run` recovers, and the invariants must hold: the state
loads and every command works; no recipient receives a message twice (counted by the test
SMTP server); every message is sent and recorded, pending, or in doubt and shown in `drafts`;
a command's changes are all there or none; no reply is lost.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailflow import faults
from mailflow.cli import cli
from mailflow.engine.records import FINAL, PENDING
from mailflow.engine.records import MessageState as S
from mailflow.store import Store
from tests.helpers import DRAFT_AT, SEND_AT, imap_toml, make_project, reply
from tests.imap_server import dovecot_fixture, imap_account_fixture  # noqa: F401

FIGURES: dict[str, dict[str, int]] = collections.defaultdict(dict)


def invoke(root: Path, *args: str, now: str) -> tuple[int, str]:
    """The CLI in this process, as the entry point would run it (exceptions propagate)."""
    r = CliRunner().invoke(cli, ["--project", str(root), "--now", now, *args],
                           catch_exceptions=False)
    return r.exit_code, r.output


def in_child(fn: Callable[[], object], arm: tuple[int, str] | None = None) -> tuple[int, object]:
    """Run `fn` in a forked child (armed to crash at a point); its status and its result."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read)
        code = 0
        try:
            if arm is not None:
                faults.arm(*arm)
            result = fn()
            payload = json.dumps({"result": result, "points": faults.count(),
                                  "names": faults.names()})
        except BaseException as err:  # noqa: BLE001 - reported to the parent, which fails
            payload, code = json.dumps({"error": f"{type(err).__name__}: {err}"}), 3
        os.write(write, payload.encode())
        os._exit(code)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    data = json.loads(b"".join(chunks) or b"{}")
    return os.waitstatus_to_exitcode(status), data


def state_of(root: Path):  # noqa: ANN201
    return Store(root / ".mailflow").load()


def _copy(template: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(template, dest, symlinks=True)
    return dest


def check_invariants(root: Path, server, recover_at: str, before: dict) -> list[str]:  # noqa: ANN001
    """Recover with a plain run, then every invariant; returns what broke."""
    broken: list[str] = []

    def recover() -> dict:
        out = {}
        for args in (("run",), ("status",), ("drafts",), ("doctor",)):
            out[" ".join(args)] = invoke(root, *args, now=recover_at)
        return out

    status, data = in_child(recover)
    if status != 0:
        return [f"recovery crashed: {data.get('error')}"]
    for cmd, (code, output) in data["result"].items():
        if "Traceback" in output or code not in (0, 1):
            broken.append(f"`{cmd}` exit {code}: {output.strip()[:300]}")
    state = state_of(root)
    earlier = before.get("sent_before", set())
    mids = collections.Counter(str(r.msg["Message-ID"]) for r in server.handler.received)
    twice = [m for m, n in mids.items() if n > 1]
    if twice:
        broken.append(f"received twice: {twice}")
    by_mid = {m.get("message_id"): m for m in state.messages.values() if m.get("message_id")}
    drafts = data["result"]["drafts"][1]
    # the digest to the consultant (on by default) and confirmations are announced before
    # they go, so they cannot go twice either
    ours = {d.get(k) for d in state.digests.values() for k in ("message_id", "confirm_message_id")
            if d.get("kind") in ("digest", "reply")}
    for mid in mids:
        if mid in ours:
            continue
        msg = by_mid.get(mid)
        if msg is None or not (msg.get("sent_at") or msg["state"] == S.IN_DOUBT):
            broken.append(f"{mid} was received but is recorded as "
                          f"{msg and msg['state']} (it could go out again)")
    for msg in state.messages.values():
        for field in ("engagement", "stage", "due", "state"):
            if field not in msg:
                broken.append(f"{msg['key']}: no {field}")
        if msg["state"] == S.IN_DOUBT and msg["key"] not in drafts:
            broken.append(f"{msg['key']} is in doubt but not shown in drafts")
        if msg["state"] not in FINAL | PENDING | {S.IN_DOUBT}:
            broken.append(f"{msg['key']}: left {msg['state']}")
        if msg.get("sent_at") and msg.get("message_id") not in mids \
                and msg["key"] not in earlier:
            broken.append(f"{msg['key']}: recorded sent but never received")
    broken.extend((before.get("check") or (lambda s: []))(state))
    return broken


def crash_everywhere(tmp_path: Path, server, template: Path, scenario: Callable[[Path], object],  # noqa: ANN001
                     name: str, *, recover_at: str, check=None, modes=("kill", "powercut"),  # noqa: ANN001
                     every: int = 1) -> None:
    """Count the scenario's points, then crash it at each one in each mode and check."""
    # once in this process first: every module the scenario needs is imported before the
    # forks, so that each child only does the scenario's own work
    scenario(_copy(template, tmp_path / "warm"))
    invoke(tmp_path / "warm", "drafts", now=recover_at)
    invoke(tmp_path / "warm", "status", now=recover_at)
    sent_before = {k for k, m in state_of(template).messages.items() if m.get("sent_at")}
    work = _copy(template, tmp_path / "count")
    server.handler.received.clear()
    status, data = in_child(lambda: scenario(work), arm=(0, "count"))
    assert status == 0, data
    points = data["points"]
    assert points > 0
    failures: list[str] = []
    for mode in modes:
        tried = 0
        for n in range(1, points + 1, every):
            root = _copy(template, tmp_path / "run")
            server.handler.received.clear()
            status, data = in_child(lambda root=root: scenario(root), arm=(n, mode))
            if status != faults.CRASH_EXIT:
                failures.append(f"{mode} at {n}: the scenario did not crash ({status}, {data})")
                continue
            tried += 1
            for problem in check_invariants(root, server, recover_at,
                                            {"check": check, "sent_before": sent_before}):
                failures.append(f"{mode} at point {n}: {problem}")
        FIGURES[name][mode] = tried
    FIGURES[name]["points"] = points
    print(f"\n{name}: {points} crash points, tried {dict(FIGURES[name])}")
    assert not failures, "\n".join(failures[:20])


# -- projects ---------------------------------------------------------------------------------

def two_engagements(tmp_path: Path, port: int, approval: bool) -> tuple[Path, list[str]]:
    proj = make_project(tmp_path / "template", port)
    proj.set_config(r"^per_minute = .*$", "per_minute = 1000")
    if not approval:
        rules = proj.root / "rules" / "offboarding.toml"
        rules.write_text(rules.read_text().replace("approval = true", "approval = false", 1))
    files = []
    for i in range(2):
        text = proj.example(**{
            r'^id = "northwind-2026"': f'id = "client-{i:02d}"',
            r"mj\.alvarez@northwind\.example": f"contact{i:02d}@client{i:02d}.example",
            r"tom\.becker@northwind\.example": f"it{i:02d}@client{i:02d}.example"})
        files.append(str(proj.write_engagement(f"client-{i:02d}", text)))
    (proj.root / "engagements" / "example.toml").unlink()
    return proj.root, files


def test_crash_points_of_a_first_tick_that_plans_drafts_and_sends(tmp_path, smtp_server):
    template, files = two_engagements(tmp_path, smtp_server.port, approval=False)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    crash_everywhere(tmp_path, smtp_server, template,
                     lambda root: invoke(root, "run", now=SEND_AT), "first tick sends",
                     recover_at=SEND_AT)


def test_crash_points_of_drafts_approve_all(tmp_path, smtp_server):
    template, files = two_engagements(tmp_path, smtp_server.port, approval=True)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    assert invoke(template, "run", now=DRAFT_AT)[0] == 1  # drafts that need you (issue 13)

    def all_or_none(state) -> list[str]:  # noqa: ANN001
        firsts = [m for m in state.messages.values() if m["step"] == 0
                  and m["stage"] == "timeline_notice"]
        approved = {m["state"] == S.APPROVED for m in firsts}
        return [] if len(approved) == 1 else [f"approve --all half done: {firsts}"]

    crash_everywhere(tmp_path, smtp_server, template,
                     lambda root: invoke(root, "drafts", "approve", "--all", "-y", now=DRAFT_AT),
                     "drafts approve --all", recover_at=DRAFT_AT, check=all_or_none)


def test_crash_points_of_engagement_add_of_several_files(tmp_path, smtp_server):
    template, files = two_engagements(tmp_path, smtp_server.port, approval=True)
    rel = [os.path.relpath(f, template) for f in files]

    def add(root: Path) -> object:
        return invoke(root, "engagement", "add", *(str(root / f) for f in rel), now=DRAFT_AT)

    def all_or_none(state) -> list[str]:  # noqa: ANN001
        return [] if len(state.engagements) in (0, 2) else [
            f"engagement add half done: {sorted(state.engagements)}"]

    crash_everywhere(tmp_path, smtp_server, template, add, "engagement add (2 files)",
                     recover_at=DRAFT_AT, check=all_or_none)


def test_crash_points_of_engagement_set_moving_a_date(tmp_path, smtp_server):
    template, files = two_engagements(tmp_path, smtp_server.port, approval=True)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    assert invoke(template, "run", now=DRAFT_AT)[0] == 1  # drafts that need you (issue 13)

    before = str(state_of(template).engagements["client-00"]["dates"]["contract_end"])

    def moved_or_not(state) -> list[str]:  # noqa: ANN001
        end = str(state.engagements["client-00"]["dates"]["contract_end"])
        return [] if end in (before, "2027-02-10") else [f"contract_end {end}"]

    crash_everywhere(tmp_path, smtp_server, template,
                     lambda root: invoke(root, "engagement", "set", "client-00",
                                         "contract_end=2027-02-10", now=DRAFT_AT),
                     "engagement set (re-plan)", recover_at=DRAFT_AT, check=moved_or_not)


@pytest.fixture
def polled(tmp_path, smtp_server, imap_account):  # noqa: F811
    """A project whose timeline notice went out, with two replies waiting in the INBOX."""
    template, files = two_engagements(tmp_path, smtp_server.port, approval=False)
    cfg = template / "mailflow.toml"
    cfg.write_text(cfg.read_text() + imap_toml(imap_account))
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    assert invoke(template, "run", now=SEND_AT)[0] == 0
    for i, msg in enumerate(m for m in state_of(template).messages.values() if m.get("sent_at")):
        imap_account.append("INBOX", reply(msg, f"Question {i} about the handover.",
                                           sender=f"contact{i:02d}@client{i:02d}.example",
                                           mid=f"<r{i}@client.example>"))
    return template


def test_crash_points_of_a_poll_with_replies_arriving(tmp_path, smtp_server, polled):
    def no_reply_lost(state) -> list[str]:  # noqa: ANN001
        texts = sorted(r["text"] for r in state.replies.values())
        ok = texts == ["Question 0 about the handover.", "Question 1 about the handover."]
        return [] if ok else [f"replies after recovery: {texts}"]

    crash_everywhere(tmp_path, smtp_server, polled,
                     lambda root: invoke(root, "poll", now="2026-12-31T11:00"),
                     "poll with 2 replies", recover_at="2026-12-31T11:05", check=no_reply_lost)


def test_crash_points_of_the_checkpoint_save(tmp_path, smtp_server):
    template, files = two_engagements(tmp_path, smtp_server.port, approval=True)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0

    def paused_or_not(state) -> list[str]:  # noqa: ANN001
        return [] if state.engagements["client-00"]["status"] in ("active", "paused") else [
            "status changed"]

    crash_everywhere(tmp_path, smtp_server, template,
                     lambda root: invoke(root, "engagement", "pause", "client-00", now=DRAFT_AT),
                     "checkpoint save (pause)", recover_at=DRAFT_AT, check=paused_or_not)


@pytest.mark.parametrize(("mode", "every"), [("enospc", 1), ("erofs", 3), ("eacces", 3),
                                             ("enoent", 3)])
def test_a_storage_fault_at_any_write_is_one_line_exit_5_and_leaves_no_temp_file(
        tmp_path, smtp_server, mode, every):
    """Disk full, read-only folder, another user's file, a vanished file: at each write."""
    template, files = two_engagements(tmp_path, smtp_server.port, approval=False)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    invoke(_copy(template, tmp_path / "warm"), "run", now=SEND_AT)  # imports, before forking
    work = _copy(template, tmp_path / "count")
    status, data = in_child(lambda: invoke(work, "run", now=SEND_AT), arm=(0, "count"))
    assert status == 0, data
    io_points = [n for n in data["names"]
                 if not n.startswith(("journal append", "smtp", "imap", "body write"))]
    failures = []
    for n in range(1, len(io_points) + 1, every):
        root = _copy(template, tmp_path / "run")
        smtp_server.handler.received.clear()
        status, data = in_child(lambda root=root: invoke(root, "run", now=SEND_AT),
                                arm=(n, mode))
        code, output = data.get("result") or (None, data.get("error"))
        lines = output.strip().splitlines()
        if code != 5 or len(lines) != 1 or str(root) not in lines[0] or "Traceback" in output:
            failures.append(f"{mode} at {n} ({io_points[n - 1]}): exit {code}: {output}")
        strays = list((root / ".mailflow").rglob("*.tmp"))
        if strays:
            failures.append(f"{mode} at {n}: stray {strays}")
        failures.extend(f"{mode} at {n}: {p}" for p in check_invariants(
            root, smtp_server, SEND_AT, {}))
    FIGURES[f"storage fault ({mode})"] = {"points": len(io_points)}
    assert not failures, "\n".join(failures[:10])


def test_crash_points_of_a_retry_after_a_per_recipient_4xx(tmp_path, smtp_server):
    """The Cc of each first email was refused for now (451); the retry goes to the Cc alone.
    Killed anywhere in that retry, the To never gets it again and the Cc gets it at most once."""
    template, files = two_engagements(tmp_path, smtp_server.port, approval=False)
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    ccs = [f"it{i:02d}@client{i:02d}.example" for i in range(2)]
    smtp_server.handler.behaviour.rcpt_replies = {cc: "451 4.3.0 try again later" for cc in ccs}
    invoke(template, "run", now=SEND_AT)
    smtp_server.handler.behaviour.rcpt_replies = {}
    firsts = [m for m in state_of(template).messages.values() if m["stage"] == "timeline_notice"]
    assert firsts and all(m["state"] == S.RETRY for m in firsts), [m["state"] for m in firsts]
    retry_at = "2026-12-30T10:30"  # past the first retry delay, inside the send window

    def only_the_cc(state) -> list[str]:  # noqa: ANN001
        problems = []
        for received in smtp_server.client_mail:  # (the digest goes to the consultant)
            if set(received.rcpt_tos) - set(ccs):
                problems.append(f"the retry went to {received.rcpt_tos}, not only the Cc")
        return problems

    crash_everywhere(tmp_path, smtp_server, template,
                     lambda root: invoke(root, "run", now=retry_at), "retry after a 4xx",
                     recover_at=retry_at, check=only_the_cc)
