"""Shared test helpers: a project wired to a test SMTP server, and a CLI runner."""

from __future__ import annotations

import collections
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result

from mailflow.cli import cli
from mailflow.project import Project, init_project
from mailflow.store import Store

SENDER = ("Dana Whitfield", "dana@whitfield-consulting.example")


@dataclass
class ProjectUnderTest:
    """A project folder plus a way to run the CLI in it."""

    project: Project

    @property
    def root(self) -> Path:
        """The project folder."""
        return self.project.root

    def cli(self, *args: str, now: str | None = None, input: str | None = None,
            env: dict | None = None) -> Result:
        """Run `mailflow --project ROOT [--now NOW] ARGS` in-process."""
        argv = ["--project", str(self.root)] + (["--now", now] if now else []) + list(args)
        return CliRunner().invoke(cli, argv, input=input, env=env or {}, catch_exceptions=False)

    def set_config(self, pattern: str, replacement: str) -> None:
        """Regex-replace in mailflow.toml."""
        path = self.project.config_path
        text, n = re.subn(pattern, replacement, path.read_text(), flags=re.M)
        assert n, f"{pattern!r} not found in mailflow.toml"
        path.write_text(text)

    def write_engagement(self, name: str, text: str) -> Path:
        """Write an engagement file and return its path."""
        path = self.root / "engagements" / f"{name}.toml"
        path.write_text(text)
        return path

    def example(self, **replace: str) -> str:
        """The example engagement's text with some lines replaced (key -> new line)."""
        text = (self.root / "engagements" / "example.toml").read_text()
        for old, new in replace.items():
            text, n = re.subn(old, new, text, flags=re.M)
            assert n, old
        return text


def make_project(tmp_path: Path, smtp_port: int | None = None) -> ProjectUnderTest:
    """A fresh project from the default playbook, sending to 127.0.0.1:smtp_port."""
    project = init_project(tmp_path / "proj", sender_name=SENDER[0], sender_email=SENDER[1],
                           time_zone="America/New_York")
    tp = ProjectUnderTest(project)
    if smtp_port:
        tp.set_config(r"^port = 1025", f"port = {smtp_port}")
    return tp


def imap_toml(account, **secret: str) -> str:  # noqa: ANN001 - tests.imap_server.Account
    """An [imap] section for a test Dovecot account; the secret by password_env by default."""
    secret = secret or {"password_env": account.password_env}
    (key, value), = secret.items()
    return f"""
[imap]
host = "127.0.0.1"
port = {account.server.port}
security = "none"
username = "{account.user}"
{key} = "{value}"
folders = ["INBOX"]
sent_folder = "Sent"
timeout = 10
"""


# -- moved from test modules: shared by several tiers ------------------------------------

@functools.lru_cache(maxsize=1024)
def header(raw: bytes, name: str) -> str | None:
    """A header of a message as the email package reads it (None when it has none), parsed
    once per message: the state machines' invariants ask each sent message after every step."""
    import email
    from email.policy import default
    value = email.message_from_bytes(raw, policy=default)[name]
    return None if value is None else str(value)


@functools.cache
def parsed_file(path: Path):  # noqa: ANN201 - mailflow.inbound.message.Inbound (frozen)
    """`parse_inbound` of a corpus file, once per test process: several test modules read the
    same 600 files (sisimai's bounces three times), each asserting its own facts of them."""
    from mailflow.inbound.message import parse_inbound
    return parse_inbound(path.read_bytes())


def is_to_consultant(raw: bytes) -> bool:
    """A digest (on by default) or a confirmation of a digest reply: mailflow's own mail to
    the consultant, never a client's; tests counting client mail leave these out."""
    mid = header(raw, "Message-ID") or ""
    return mid.startswith(("<mailflow-digest.", "<mailflow-confirm."))


def polling_project(proj, account, extra_toml: str = ""):  # noqa: ANN001, ANN201
    """`proj` sending to the test SMTP server, polling the test Dovecot `account`, with the
    example engagement added; `extra_toml` is appended to the [imap] table."""
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text() + imap_toml(account) + extra_toml)
    proj.account = account
    assert proj.cli("engagement", "add", str(proj.root / "engagements/example.toml")
                    ).exit_code == 0
    return proj


def messages_by_step(proj) -> dict[str, dict]:  # noqa: ANN001
    """The stored messages keyed "stage/step" (one engagement's sequence)."""
    return {f"{m['stage']}/{m['step']}": m for m in load(proj).messages.values()}


def told_only(result: Result) -> bool:
    """A run that failed at nothing: exit 0, or exit 1 with only "needs you" lines (issue 13:
    a run tells each thing that newly needs the consultant once, with a non-zero exit)."""
    if result.exit_code == 0:
        return True
    lines = [line for line in result.stderr.splitlines() if not line.startswith("note: ")]
    return result.exit_code == 1 and bool(lines) and all(
        line.startswith("mailflow: needs you: ") for line in lines)


def walk(proj, days, approve=True, times=("08:00", "10:30", "15:00")):
    """Run the tick at a few times a day over `days` (ISO dates), approving drafts at 08:00."""
    for day in days:
        for t in times:
            now = f"{day}T{t}"
            result = proj.cli("run", now=now)
            assert told_only(result), result.output
            if approve and t == "08:00":
                r = proj.cli("drafts", "approve", "--all", "-y", now=now)
                assert r.exit_code == 0, r.output


def dates(start: str, end: str) -> list[str]:
    import datetime as dt
    a, b = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    return [(a + dt.timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def reply(to_msg: dict, body: str, *, sender="mj.alvarez@northwind.example", extra="",
          subject=None, date="Thu, 31 Dec 2026 10:02:00 -0500", mid="<r1@northwind.example>"
          ) -> bytes:
    subject = subject or f"Re: {to_msg['subject']}"
    return (f"From: Maria Jose Alvarez <{sender}>\r\n"
            f"To: Dana Whitfield <dana@whitfield-consulting.example>\r\n"
            f"Subject: {subject}\r\nDate: {date}\r\nMessage-ID: {mid}\r\n"
            f"In-Reply-To: {to_msg['message_id']}\r\nReferences: {to_msg['message_id']}\r\n"
            f"{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{body}\r\n\r\nOn Wed, Dec 30, 2026 at 9:00 AM Dana Whitfield "
            f"<dana@whitfield-consulting.example> wrote:\r\n> Hi María José,\r\n> Our "
            f"engagement ends...\r\n").encode()


DRAFT_AT = "2026-12-28T10:00"  # the timeline notices are drafted (5 review days)


SEND_AT = "2026-12-30T09:30"   # ... and due, inside the New York send window


def fill_batch(proj: ProjectUnderTest, n: int) -> ProjectUnderTest:
    """n engagements (client-00...) whose first email is drafted, approved and due at SEND_AT."""
    proj.set_config(r"^per_minute = .*$", "per_minute = 1000")
    proj.set_config(r"^per_day = .*$", "per_day = 10000")
    rules = proj.root / "rules" / "offboarding.toml"
    text = rules.read_text()
    rules.write_text(text.replace("approval = true", "approval = false", 1))
    files = []
    for i in range(n):
        text = proj.example(**{
            r'^id = "northwind-2026"': f'id = "client-{i:02d}"',
            r"mj\.alvarez@northwind\.example": f"contact{i:02d}@client{i:02d}.example",
            r"tom\.becker@northwind\.example": f"it{i:02d}@client{i:02d}.example",
        })
        files.append(str(proj.write_engagement(f"client-{i:02d}", text)))
    (proj.root / "engagements" / "example.toml").unlink()
    r = proj.cli("engagement", "add", *files, now=DRAFT_AT)
    assert r.exit_code == 0, r.output
    r = proj.cli("run", now=DRAFT_AT)
    assert r.exit_code == 0, r.output
    states = collections.Counter(m["state"] for m in firsts(proj))
    assert states["approved"] == n, states
    return proj


def load(proj: ProjectUnderTest):
    """The state as the next run would see it (checkpoint + journal)."""
    return Store(proj.project.state_dir).load()


def firsts(proj: ProjectUnderTest) -> list[dict]:
    """The batch: each engagement's timeline notice (later stages are only planned)."""
    return [m for m in load(proj).messages.values() if m["stage"] == "timeline_notice"]


DRAFTED = "2026-12-28T10:00"  # the timeline notice (due Wed 2026-12-30 09:00 EST) is drafted


KEY = "northwind-2026/timeline_notice/0"


def add_in_zone(proj, zone: str, end: str) -> None:  # noqa: ANN001
    """The project and the example engagement ("eng") in `zone`, its contract ending `end`."""
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text().replace('time_zone = "America/New_York"',
                                           f'time_zone = "{zone}"'))
    add(proj, "eng", **{r"^time_zone = .*$": f'time_zone = "{zone}"',
                        r"^contract_end = .*$": f"contract_end = {end}",
                        r"^handover_date = .*$": f"handover_date = {end}",
                        r"^revoke_date = 2027-01-29": f"revoke_date = {end}"})


def add(proj, name: str = "example", **replace: str) -> None:
    path = proj.root / "engagements" / f"{name}.toml"
    if replace:
        path = proj.write_engagement(name, proj.example(**replace))
    r = proj.cli("engagement", "add", str(path))
    assert r.exit_code == 0, r.output


# -- the engine over the in-memory seams (no sockets) -------------------------------------

IMAP_MEMORY = """
[imap]
host = "127.0.0.1"
port = 1
security = "none"
folders = ["INBOX"]
sent_folder = "Sent"
"""


class SeamProject:
    """A project whose ticks send through a MemoryTransport and poll a MemoryMailbox."""

    def __init__(self, tmp_path: Path, *, imap: bool = True) -> None:
        from mailflow.transport.memory import MemoryMailbox, MemoryTransport
        self.proj = make_project(tmp_path)
        if imap:
            with self.proj.project.config_path.open("a") as f:
                f.write(IMAP_MEMORY)
        self.transport = MemoryTransport()
        self.mailbox = MemoryMailbox(["INBOX", "Sent"])
        self.store = Store(self.proj.project.state_dir)

    @property
    def client_accepted(self) -> list:
        """What the transport took for clients: not the digest to the consultant (on by
        default, it goes through the same transport)."""
        return [a for a in self.transport.accepted if not is_to_consultant(a.raw)]

    @property
    def loaded(self):  # noqa: ANN201 - config.loading.Loaded
        """The project's config and rules, read afresh (a test may have edited them)."""
        from mailflow.config.loading import load_project
        return load_project(self.proj.project)

    def at(self, local: str):  # noqa: ANN201 - datetime
        """A New York wall-clock time as an aware datetime."""
        import datetime as dt
        from zoneinfo import ZoneInfo
        return dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("America/New_York"))

    def add(self, path: Path | None = None, when: str = "2026-12-01T09:00") -> None:
        """Add an engagement file (the example by default)."""
        from mailflow.desk.actions import add_engagement
        with self.store.writer() as w:
            add_engagement(w, self.loaded, path or self.proj.root / "engagements" /
                           "example.toml", self.at(when))
            w.save()

    def add_clients(self, n: int) -> None:
        """Add n copies of the example, client i at to{i}@/cc{i}@client{i}.example."""
        for i in range(n):
            self.add(self.proj.write_engagement(f"c{i}", self.proj.example(**{
                r'^id = "northwind-2026"': f'id = "c{i}"',
                r"mj\.alvarez@northwind\.example": f"to{i}@client{i}.example",
                r"tom\.becker@northwind\.example": f"cc{i}@client{i}.example"})))

    def tick(self, when: str):  # noqa: ANN201 - engine.tick.TickReport
        """One `mailflow run` at a New York time, over the in-memory seams."""
        from mailflow.desk.run import run_tick
        return run_tick(self.loaded, self.store, self.at(when),
                        transport=lambda: self.transport, mailbox=lambda: self.mailbox)

    def approve_all(self, when: str) -> list[str]:
        """Approve every draft awaiting approval; returns their keys."""
        from mailflow.desk.actions import approve
        keys = []
        with self.store.writer() as w:
            for msg in list(w.state.messages.values()):
                if msg["state"] == "awaiting_approval":
                    approve(w, msg, "test", self.at(when))
                    keys.append(msg["key"])
            w.save()
        return keys

    def resolve(self, key: str, sent: bool, when: str) -> None:
        """`drafts resolve KEY --sent|--resend`."""
        from mailflow.desk.actions import resolve
        with self.store.writer() as w:
            resolve(w, w.state.messages[key], sent, "test", self.at(when))
            w.save()

    @property
    def messages(self) -> dict[str, dict]:
        """Every message record, as the next run would load them."""
        return self.store.load().messages

    def state(self):  # noqa: ANN201 - store.State
        """The whole state as the next run would load it."""
        return self.store.load()


# -- crash points (issue 11): every durability point of a scenario tried, not sampled ---------

def invoke(root: Path, *args: str, now: str) -> tuple[int, str]:
    """The CLI in this process, as the entry point would run it (exceptions propagate)."""
    r = CliRunner().invoke(cli, ["--project", str(root), "--now", now, *args],
                           catch_exceptions=False)
    return r.exit_code, r.output


def forked(child) -> tuple[int, bytes]:  # noqa: ANN001 - Callable[[int], int]
    """Fork; the child runs `child(fd)`, writing what it has to say to the pipe `fd`, and
    exits with the code it returns (3 if it raises). Returns the child's exit status and
    every byte it wrote, which a crash mid-way cannot take back."""
    import os
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest or hypothesis
        os.close(read)
        code = 3
        try:
            code = child(write)
        finally:
            os._exit(code)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks)


def in_child(fn, arm: tuple[int, str] | None = None) -> tuple[int, dict]:  # noqa: ANN001
    """Run `fn` in a forked child (armed to crash at a point); its exit status and a dict of
    its JSON result, the points it passed, their names and those where a power cut would
    drop a write (or the error it died of)."""
    import json
    import os

    from mailflow import faults

    def child(fd: int) -> int:
        code = 0
        try:
            if arm is not None:
                faults.arm(*arm)
            result = fn()
            payload = json.dumps({"result": result, "points": faults.count(),
                                  "names": faults.names(), "exposed": faults.exposed()})
        except BaseException as err:  # noqa: BLE001 - reported to the parent, which fails
            payload, code = json.dumps({"error": f"{type(err).__name__}: {err}"}), 3
        os.write(fd, payload.encode())
        return code

    code, out = forked(child)
    return code, json.loads(out or b"{}")


def state_of(root: Path):  # noqa: ANN201 - store.State
    """The state of the project at `root`, as the next command would load it."""
    return Store(root / ".mailflow").load()


def copy_project(template: Path, dest: Path) -> Path:
    """A fresh copy of a project folder (state included) at `dest`; its templates and rules,
    which no command writes, are links to the template's (a crash run copies no more than
    the state and the engagement files, the part a command may change)."""
    import shutil
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    for item in template.iterdir():
        if item.name in ("templates", "rules"):
            (dest / item.name).symlink_to(item.resolve(), target_is_directory=True)
        elif item.is_dir():
            shutil.copytree(item, dest / item.name, symlinks=True)
        else:
            shutil.copy2(item, dest / item.name)
    return dest


def received_pairs(received) -> collections.Counter:  # noqa: ANN001 - [smtp_server.Received]
    """How often each (Message-ID, recipient) reached the test SMTP server."""
    return collections.Counter((str(r.msg["Message-ID"]), rcpt.lower())
                               for r in received for rcpt in r.rcpt_tos)


def check_invariants(root: Path, server, recover_at: str, before: dict) -> list[str]:  # noqa: ANN001
    """Recover with a plain run, then check every invariant of issue 11; returns what broke.

    `before`: "received" (what the server got before the scenario), "sent_before" (keys sent
    before it) and "check" (the scenario's own invariant, given the recovered state).
    """
    from mailflow.engine.records import FINAL, PENDING
    from mailflow.engine.records import MessageState as S
    broken: list[str] = []

    def recover() -> dict:
        return {" ".join(args): invoke(root, *args, now=recover_at)
                for args in (("run",), ("status",), ("drafts",), ("doctor",))}

    status, data = in_child(recover)
    if status != 0:
        return [f"recovery crashed: {data.get('error')}"]
    for cmd, (code, output) in data["result"].items():
        if "Traceback" in output or code not in (0, 1):
            broken.append(f"`{cmd}` exit {code}: {output.strip()[:300]}")
    state = state_of(root)
    earlier = before.get("sent_before", set())
    old = before.get("received", [])
    twice = [k for k, n in received_pairs([*old, *server.handler.received]).items() if n > 1]
    if twice:
        broken.append(f"received twice (Message-ID, recipient): {twice}")
    mids = {str(r.msg["Message-ID"]) for r in server.handler.received}
    old_mids = {str(r.msg["Message-ID"]) for r in old}
    by_mid = {m.get("message_id"): m for m in state.messages.values() if m.get("message_id")}
    drafts, shown = data["result"]["drafts"][1], data["result"]["status"][1]
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
        for field_ in ("engagement", "stage", "due", "state"):
            if field_ not in msg:
                broken.append(f"{msg['key']}: no {field_}")
        if msg["state"] == S.IN_DOUBT and (msg["key"] not in drafts or msg["key"] not in shown):
            broken.append(f"{msg['key']} is in doubt but not shown in drafts and status")
        if msg["state"] not in FINAL | PENDING | {S.IN_DOUBT}:
            broken.append(f"{msg['key']}: left {msg['state']}")
        if msg.get("sent_at") and msg.get("message_id") not in mids | old_mids \
                and msg["key"] not in earlier:
            broken.append(f"{msg['key']}: recorded sent but never received")
    broken.extend((before.get("check") or (lambda s: []))(state))
    return broken


def crash_everywhere(tmp_path: Path, server, template: Path, scenario, name: str, *,  # noqa: ANN001, PLR0913
                     recover_at: str, check=None, modes=("kill", "powercut"),  # noqa: ANN001
                     every: int = 1, reset=None, mode_check=None  # noqa: ANN001
                     ) -> dict[str, int]:
    """Count the scenario's K points, then crash a fresh copy of `template` at each point
    1..K in each mode, recover with a plain run and check the invariants; returns the
    figures ({"points": K, mode: crashes tried, "powercut as kill": points skipped}).

    A power cut is tried at the points where it would drop a write not yet durable; at the
    others it leaves the very files a kill leaves (faults.exposed), already tried as a kill.

    `scenario(root)` runs in a forked child; `reset()`, when given, puts the servers back as
    they were for the template before each run (e.g. the IMAP Sent folder). Each crashed and
    recovered copy is `tmp_path / "run"` when `check(state)` is called; `mode_check(state,
    mode)`, when given, is checked too, knowing whether it was a kill or a power cut.
    """
    from mailflow import faults
    old = list(server.handler.received)  # what the template's own runs sent
    # once in this process first: every module the scenario needs is imported before the
    # forks, so that each child only does the scenario's own work
    for step in (reset, lambda: scenario(copy_project(template, tmp_path / "warm"))):
        if step is not None:
            step()
    invoke(tmp_path / "warm", "drafts", now=recover_at)
    invoke(tmp_path / "warm", "status", now=recover_at)
    sent_before = {k for k, m in state_of(template).messages.items() if m.get("sent_at")}
    work = copy_project(template, tmp_path / "count")
    server.handler.received.clear()
    if reset is not None:
        reset()
    status, data = in_child(lambda: scenario(work), arm=(0, "count"))
    assert status == 0, data
    points, exposed = data["points"], set(data["exposed"])
    assert points > 0
    figures, failures = {"points": points}, []
    for mode in modes:
        tried = 0
        for n in range(1, points + 1, every):
            if mode == "powercut" and "kill" in modes and n not in exposed:
                figures["powercut as kill"] = figures.get("powercut as kill", 0) + 1
                continue
            root = copy_project(template, tmp_path / "run")
            server.handler.received.clear()
            if reset is not None:
                reset()
            status, data = in_child(lambda root=root: scenario(root), arm=(n, mode))
            if status != faults.CRASH_EXIT:
                failures.append(f"{mode} at {n}: the scenario did not crash ({status}, {data})")
                continue
            tried += 1
            # (a child armed for a power cut ran in a boot of its own: faults.simulated_boot)
            both = (lambda state, mode=mode: [*(check(state) if check else []),
                                              *mode_check(state, mode)]) \
                if mode_check else check
            for problem in check_invariants(root, server, recover_at, {
                    "check": both, "sent_before": sent_before, "received": old}):
                failures.append(f"{mode} at point {n}: {problem}")
        figures[mode] = tried
    print(f"\n{name}: {points} crash points, tried {figures}")
    assert not failures, "\n".join(failures[:20])
    return figures


def two_engagements(tmp_path: Path, port: int, approval: bool, n: int = 2
                    ) -> tuple[Path, list[str]]:
    """A project of n engagements (client-00...), the first stage without approval unless
    `approval`; returns its folder and the engagement files (not added yet)."""
    proj = make_project(tmp_path / "template", port)
    proj.set_config(r"^per_minute = .*$", "per_minute = 1000")
    if not approval:
        rules = proj.root / "rules" / "offboarding.toml"
        rules.write_text(rules.read_text().replace("approval = true", "approval = false", 1))
    files = []
    for i in range(n):
        text = proj.example(**{
            r'^id = "northwind-2026"': f'id = "client-{i:02d}"',
            r"mj\.alvarez@northwind\.example": f"contact{i:02d}@client{i:02d}.example",
            r"tom\.becker@northwind\.example": f"it{i:02d}@client{i:02d}.example"})
        files.append(str(proj.write_engagement(f"client-{i:02d}", text)))
    (proj.root / "engagements" / "example.toml").unlink()
    return proj.root, files


def built_both_ways(**fields):  # noqa: ANN003, ANN201 - build_message's keyword arguments
    """A message as the email package builds it (build_message, as_bytes) and as
    mailflow.render.mime writes it, each from the same random seed (the MIME boundary)."""
    import random

    from mailflow.render.compose import build_message, recipients
    from mailflow.render.mime import message_bytes

    random.seed(18)
    email = build_message(**fields)
    package = (email.as_bytes(), recipients(email))
    random.seed(18)
    return package, message_bytes(**fields)


# -- the suite's one Jinja2 compile of each template (the fast loop's largest waste) --------

def _jinja_settings(env, name: str | None) -> tuple | None:  # noqa: ANN001 - jinja2.Environment
    """Everything of `env` the code Jinja2 generates for template `name` depends on, or None
    where that cannot be told (extensions may rewrite the source; they are compiled afresh)."""
    if env.extensions:
        return None
    auto = env.autoescape(name) if callable(env.autoescape) else env.autoescape
    return (type(env), env.code_generator_class, env.block_start_string, env.block_end_string,
            env.variable_start_string, env.variable_end_string, env.comment_start_string,
            env.comment_end_string, env.line_statement_prefix, env.line_comment_prefix,
            env.trim_blocks, env.lstrip_blocks, env.newline_sequence,
            env.keep_trailing_newline, env.optimized, env.finalize, env.is_async, auto,
            getattr(env, "intercepted_binops", None), getattr(env, "intercepted_unops", None),
            # the compiler checks each filter and test exists and how it is called, and the
            # optimizer may call one on constants: the very functions, not their names
            tuple(sorted(env.filters.items())), tuple(sorted(env.tests.items())))


def _refiled(code, filename: str):  # noqa: ANN001, ANN202 - types.CodeType
    """`code` as compiled from `filename`: the only part of Jinja2's code that the template's
    file name changes (tracebacks and mailflow's error messages read it)."""
    from types import CodeType
    if code.co_filename == filename:
        return code
    consts = tuple(_refiled(c, filename) if isinstance(c, CodeType) else c
                   for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def compile_templates_once() -> None:
    """Make `jinja2.Environment.compile` compile each (source, name, settings) once per test
    process, as its bytecode cache would; what a template runs is what a fresh compile gives.

    Every test builds a project and so a Renderer, whose environments compile the same ~100
    playbook templates again: about 5,000 compiles of 3 ms, a fifth of the fast loop. The
    product compiles a template once per process too (one environment per language); a
    subprocess of the real entry point runs without this. MAILFLOW_TEST_COMPILE=fresh turns
    it off, to check that nothing depends on it.
    """
    import os

    import jinja2
    from jinja2.utils import internal_code
    if os.environ.get("MAILFLOW_TEST_COMPILE") == "fresh" or \
            getattr(jinja2.Environment.compile, "compiled_once", False):
        return
    real = jinja2.Environment.compile
    memo: dict[tuple, object] = {}

    def compile(self, source, name=None, filename=None, raw=False, defer_init=False):  # noqa: ANN001, ANN202, A001, PLR0913 - jinja2's signature
        settings = _jinja_settings(self, name) if isinstance(source, str) and not raw else None
        if settings is None:
            return real(self, source, name, filename, raw, defer_init)
        key = (source, name, defer_init, settings)
        code = memo.get(key)
        if code is None:  # errors propagate and are not kept: each caller sees its own
            code = memo[key] = real(self, source, name, filename, raw, defer_init)
        return _refiled(code, "<template>" if filename is None else filename)

    compile.compiled_once = True
    compile.fresh = real
    # hidden from the tracebacks Jinja2 rewrites, as its own compile is
    internal_code.add(compile.__code__)
    jinja2.Environment.compile = compile


# -- a state machine of two engagements (New York, and Berlin across its DST change) -----------

MACHINE_START = "2027-01-11T08:00"  # New York wall time, as SeamProject.at reads it
MACHINE_ENGAGEMENTS = {  # id -> (zone, contract end, client address)
    "northwind-2026": ("America/New_York", "2027-02-12", "mj.alvarez@northwind.example"),
    "berlin": ("Europe/Berlin", "2027-04-02", "kunde@berlin.example"),
}


def two_engagements_machine():  # noqa: ANN201 - a RuleBasedStateMachine subclass
    """The base of the hypothesis state machines that drive two engagements through ticks
    (cron down over a due date too), approvals and rejections, pauses lifted, and servers
    refusing for a while; subclasses add their own rules and the invariants they check."""
    import datetime as dt
    import shutil
    import tempfile

    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

    from mailflow.engine.outcomes import Outcome

    class TwoEngagements(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.tmp = Path(tempfile.mkdtemp(prefix="mailflow-machine-"))
            self.p = SeamProject(self.tmp)
            self.now = dt.datetime.fromisoformat(MACHINE_START)

        def teardown(self) -> None:
            shutil.rmtree(self.tmp, ignore_errors=True)

        @property
        def when(self) -> str:
            return self.now.isoformat(timespec="minutes")

        def status(self, eid: str) -> str | None:
            """The engagement's status; None once it moved out, a month after it ended."""
            return (self.p.state().engagements.get(eid) or {}).get("status")

        @initialize()
        def engagements(self) -> None:
            for eid, (zone, end, to) in MACHINE_ENGAGEMENTS.items():
                path = self.p.proj.write_engagement(eid, self.p.proj.example(**{
                    r'^id = "northwind-2026"': f'id = "{eid}"',
                    r"^time_zone = .*$": f'time_zone = "{zone}"',
                    r"^contract_end = .*$": f"contract_end = {end}",
                    r"^handover_date = .*$": f"handover_date = {end}",
                    r"mj\.alvarez@northwind\.example": to}))
                self.p.add(path, when=self.when)

        @rule(step=st.sampled_from([dt.timedelta(minutes=20), dt.timedelta(hours=3),
                                    dt.timedelta(days=1), dt.timedelta(days=4),
                                    dt.timedelta(days=9)]))  # (cron down over a due date)
        def tick(self, step: dt.timedelta) -> None:
            self.now += step
            self.p.tick(self.when)

        @rule(data=st.data(), approve=st.booleans())
        def the_consultant_decides_on_one_draft(self, data, approve: bool) -> None:  # noqa: ANN001
            from mailflow.desk.actions import approve as approve_msg
            from mailflow.desk.actions import reject
            waiting = sorted(k for k, m in self.p.messages.items()
                             if m["state"] == "awaiting_approval")
            if not waiting:
                return
            key = data.draw(st.sampled_from(waiting))
            with self.p.store.writer() as w:
                msg = w.state.messages[key]
                if approve:
                    approve_msg(w, msg, "test", self.p.at(self.when))
                else:
                    reject(w, msg, "test", "not needed", self.p.at(self.when))
                w.save()

        @rule(eid=st.sampled_from(sorted(MACHINE_ENGAGEMENTS)), pause=st.booleans())
        def the_consultant_pauses_or_resumes(self, eid: str, pause: bool) -> None:
            from mailflow.desk.actions import set_status
            if self.status(eid) not in ("active", "paused"):
                return
            with self.p.store.writer() as w:
                set_status(w, eid, "paused" if pause else "active", self.p.at(self.when))
                w.save()

        @rule(fault=st.sampled_from(["refuse", "down", "up"]))
        def the_server_refuses_for_a_while(self, fault: str) -> None:
            t = self.p.transport
            if fault == "refuse":  # the next two attempts to each client: retried later
                for _, _, to in MACHINE_ENGAGEMENTS.values():
                    t.answer(to, Outcome.TEMPORARY, "451 later", times=2)
            else:
                t.down = "connection refused" if fault == "down" else None

    return TwoEngagements
