"""mailflow's benchmark: every figure a ratio against a baseline measured in the same run.

    python -m bench                 # full sizes (a few minutes; needs Dovecot for the polls)
    python -m bench --quick         # tiny sizes, seconds (what tests/cli/test_bench_smoke.py runs)
    python -m bench --only idle     # one figure: idle, send, store, poll, busy, big, startup,
                                    # memory, archive, years

Prints one table and writes it as JSON to bench/results/ (or --out DIR).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import data  # noqa: E402
from bench.peer import mailmerge_seconds  # noqa: E402
from bench.servers import (  # noqa: E402
    ImapServer,
    SmtpSink,
    imap_toml,
    make_reply,
    reply_shapes,
    write_maildir,
)
from mailflow.config.settings import SCHEDULE_DEFAULTS  # noqa: E402

FIGURES = ("idle", "send", "store", "poll", "busy", "big", "startup", "memory", "archive",
           "years")
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Sizes:
    """How big each figure's data is."""

    idle: tuple[int, int] = (1_000, 10_000)
    sends: int = 1_000
    store: tuple[int, int] = (1_000, 20_000)
    folder: tuple[int, int] = (500, 50_000)
    busy_new: int = 2_000
    big: tuple[int, int] = (6, 40 * 2**20)  # replies with attachments: how many, bytes each
    status_engagements: int = 1_000
    repeat: int = 3
    archive: tuple[int, int] = (1_000, 20_000)  # active, and moved out into archives
    years: tuple[int, int] = (300, 730)  # engagements, simulated days


QUICK = Sizes(idle=(20, 100), sends=20, store=(20, 100), folder=(20, 200), busy_new=20,
              big=(2, 2**20), status_engagements=20, repeat=1, archive=(20, 100),
              years=(16, 60))


@dataclass
class Row:
    """One line of the table."""

    figure: str
    measured: str
    baseline: str
    ratio: float | None
    target: str
    ok: bool | None  # None: reported only
    details: dict = field(default_factory=dict)


# --- helpers ------------------------------------------------------------------------------------


def mailflow_cmd() -> list[str]:
    """The installed console script (what cron runs), else `python -m mailflow`."""
    exe = shutil.which("mailflow")
    return [exe] if exe else [sys.executable, "-m", "mailflow"]


def run_child(argv: list[str], env: dict | None = None) -> tuple[float, int, subprocess.Popen,
                                                                  bytes, bytes]:
    """Run a command; (wall seconds, peak RSS in KiB of that child, process, stdout, stderr)."""
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out_f, stderr=err_f,
                                env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_f.seek(0)
        err_f.seek(0)
        return wall, usage.ru_maxrss, proc, out_f.read(), err_f.read()


def child_cpu(argv: list[str]) -> tuple[float, float, int, bytes]:
    """Run a command; (wall seconds, its CPU seconds (user + system), exit code, stderr).

    On a machine shared with other work the wall time counts their load too; the CPU time
    says what the command itself cost."""
    with tempfile.TemporaryFile() as err_f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err_f)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must know
        err_f.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, proc.returncode, err_f.read()


_HWM = """\
import sys
from mailflow.cli import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code or 0
with open("/proc/self/status") as f:
    hwm = next(line.split()[1] for line in f if line.startswith("VmHWM"))
sys.stderr.write(f"\\nbench-vmhwm-kib {hwm}\\n")
sys.exit(code)
"""


def peak_rss_kib(argv: list[str]) -> tuple[int, subprocess.Popen, bytes]:
    """Run `mailflow ARGV` in a child; its own peak RSS (VmHWM: not inherited from us)."""
    _, _, proc, _, err = run_child([sys.executable, "-c", _HWM, *argv])
    found = re.search(rb"bench-vmhwm-kib (\d+)", err)
    if not found:
        raise RuntimeError(f"no peak RSS from {argv}: {err[-300:]!r}")
    return int(found.group(1)), proc, err


def best(times: list[float]) -> float:
    """The least noisy summary of repeated timings on a shared machine: the minimum."""
    return min(times)


@contextmanager
def phases(into: dict[str, float]):
    """Time Tick's steps (and the store's load and save) while inside the block."""
    from mailflow import store
    from mailflow.engine import tick as runner
    wrapped = {(runner.Tick, n): getattr(runner.Tick, n) for n in
               ("settle_interrupted", "plan", "draft", "hold_overdue", "due_messages", "send")}
    wrapped[(store.Store, "load")] = store.Store.load
    wrapped[(store.Writer, "save")] = store.Writer.save

    def timer(name: str, fn: Callable) -> Callable:
        def inner(*a, **kw):  # noqa: ANN002, ANN003, ANN202
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                into[name] = into.get(name, 0.0) + time.perf_counter() - t0
        return inner

    for (cls, name), fn in wrapped.items():
        setattr(cls, name, timer(name, fn))
    try:
        yield into
    finally:
        for (cls, name), fn in wrapped.items():
            setattr(cls, name, fn)


def iso(now: dt.datetime) -> str:
    """--now for the CLI."""
    return now.isoformat()


class Bench:
    """Builds the data once, runs the figures asked for, keeps the rows."""

    def __init__(self, work: Path, sizes: Sizes, log: Callable[[str], None]) -> None:
        self.work = work
        self.sizes = sizes
        self.log = log
        self.rows: list[Row] = []
        self._seed: data.Seed | None = None
        self._idle: dict[int, Path] = {}
        self._sent: dict[int, dict] = {}

    # -- shared data -------------------------------------------------------------------------

    @property
    def seed(self) -> data.Seed:
        if self._seed is None:
            t0 = time.perf_counter()
            with SmtpSink() as sink:
                self._seed = data.walk_seeds(self.work / "seed", sink.port)
            self.log(f"seed engagements walked in {time.perf_counter() - t0:.1f}s")
        return self._seed

    def idle_project(self, n: int) -> Path:
        """A project holding n cloned engagements at data.NOW (nothing due)."""
        if n not in self._idle:
            t0 = time.perf_counter()
            project = data.new_project(self.work / f"idle-{n}")
            # cron's steady state: the day's digest went out at 08:30 and is not part of an
            # idle tick (no SMTP server listens here, so an enabled digest would be built and
            # tried again on every run: 1.6 s at 10,000 engagements with 1,667 drafts waiting)
            with project.config_path.open("a") as f:
                f.write("\n[digest]\nenabled = false\n")
            info = data.write_store(project, self.seed, n)
            self.log(f"store of {n} engagements written in {time.perf_counter() - t0:.1f}s: "
                     f"{info}")
            self._idle[n] = project.root
        return self._idle[n]

    # -- idle tick ---------------------------------------------------------------------------

    def idle(self) -> None:
        from mailflow.config.loading import load_project
        from mailflow.desk.run import run_tick
        from mailflow.project import Project
        from mailflow.store import DB_NAME, Store
        small, large = self.sizes.idle
        inproc: dict[int, float] = {}
        sub: dict[int, float] = {}
        details: dict = {}
        for n in (small, large):
            root = self.idle_project(n)
            project = Project(root)
            loaded = load_project(project)
            store = Store(project.state_dir)
            db = project.state_dir / DB_NAME
            before = db.stat().st_mtime_ns
            times, steps = [], {}
            for k in range(self.sizes.repeat + 1):  # the first is a warm-up
                now = data.NOW + dt.timedelta(minutes=5 * k)
                with phases({}) as step:
                    t0 = time.perf_counter()
                    report = run_tick(loaded, store, now)
                    elapsed = time.perf_counter() - t0
                if k:
                    times.append(elapsed)
                    steps = step if not steps or elapsed <= min(times) else steps
                if report.sent or report.drafted or report.problems:
                    raise RuntimeError(f"idle tick at {n} did something: sent "
                                       f"{len(report.sent)}, drafted {len(report.drafted)}, "
                                       f"problems {report.problems[:3]}")
            rewritten = db.stat().st_mtime_ns != before
            inproc[n] = best(times)
            subs, cpus = [], []
            for k in range(self.sizes.repeat):
                now = data.NOW + dt.timedelta(hours=1, minutes=5 * k)
                wall, cpu, code, err = child_cpu(
                    [*mailflow_cmd(), "--project", str(root), "--now", iso(now), "run"])
                if code != 0:
                    raise RuntimeError(f"mailflow run exited {code}: {err[-500:]!r}")
                subs.append(wall)
                cpus.append(cpu)
            sub[n] = best(subs)
            details[str(n)] = {"in_process_s": round(inproc[n], 4),
                               "subprocess_s": round(sub[n], 4),
                               "subprocess_cpu_s": round(best(cpus), 4),
                               "steps_s": {k: round(v, 4) for k, v in steps.items()},
                               "checkpoint_rewritten": rewritten,
                               "state_bytes": db.stat().st_size}
            self.log(f"idle {n}: in-process {inproc[n]:.3f}s, subprocess {sub[n]:.3f}s "
                     f"(CPU {details[str(n)]['subprocess_cpu_s']:.3f}s), "
                     f"steps {details[str(n)]['steps_s']}, rewritten {rewritten}")
        growth = large / small
        cap = 12 * growth / 10  # "10x engagements, at most ~12x time"
        for label, t in (("in-process", inproc), ("subprocess", sub)):
            ratio = t[large] / t[small]
            under = t[large] < 1.0
            self.rows.append(Row(
                f"idle tick ({label}) {large:,} vs {small:,}", f"{t[large]:.3f} s",
                f"{t[small]:.3f} s", round(ratio, 2),
                f"< 1 s and ratio <= {cap:g}", under and ratio <= cap, details))
        self.rows[-1].details = {}
        cpu = {n: details[str(n)]["subprocess_cpu_s"] for n in (small, large)}
        self.rows.append(Row(f"idle tick (subprocess CPU, user+sys) {large:,} vs {small:,}",
                             f"{cpu[large]:.3f} s", f"{cpu[small]:.3f} s",
                             round(cpu[large] / cpu[small], 2),
                             "reported (the wall time less others' load)", None))
        self.rows.append(Row("idle tick writes the checkpoint", str(any(
            d["checkpoint_rewritten"] for d in details.values())), "False", None, "no write",
            not any(d["checkpoint_rewritten"] for d in details.values())))

    # -- sending -----------------------------------------------------------------------------

    def _send_projects(self, extra_idle: int, sink_port: int) -> Path:
        """A project with `sends` engagements whose first email is due now (no approval)."""
        from mailflow.config.loading import load_project
        from mailflow.desk.actions import add_engagement
        from mailflow.store import Store
        n = self.sizes.sends
        root = Path(tempfile.mkdtemp(prefix=f"send-{extra_idle}-", dir=self.work))
        project = data.new_project(root / "p", smtp_port=sink_port, per_minute=10**6,
                                   per_day=10**7, approval=False, all_week=True)
        # the default configuration: `send_batch` as a user gets it (README: Never twice)
        with project.config_path.open("a") as f:
            # the figure is the client sends against a bare smtplib loop over the same bytes;
            # the digest to the consultant (on by default) is not part of that comparison
            f.write("\n[digest]\nenabled = false\n")
        loaded = load_project(project)
        names = data.Names(11)
        # the timeline notice (30 days before contract_end) is due today
        contract_end = (SEND_NOW.date() + dt.timedelta(days=30)).isoformat()
        fresh = Path(tempfile.mkdtemp(prefix="fresh-", dir=self.work))
        store = Store(fresh)
        with store.writer() as w:
            for i in range(n):
                company = names.company()
                first, last = names.person()
                eid = f"{re.sub(r'[^a-z0-9]+', '-', company.lower())}-new{i:05d}"
                text = data.engagement_toml(
                    i, eid, company, first, last,
                    f"{re.sub(r'[^a-z0-9]+', '', company.lower())}.example",
                    SEND_ZONE, contract_end, support=i % 3 != 2, access=i % 4 != 3,
                    cc=i % 2 == 0)
                path = project.engagements_dir / f"{eid}.toml"
                path.write_text(text)
                add_engagement(w, loaded, path, SEND_NOW - dt.timedelta(days=1))
            w.save()
        state = store.load()
        by_eng: dict[str, list] = {}
        for event in store.events():
            by_eng.setdefault(event["engagement"], []).append(event)
        extra = [(eid, {"engagements": [rec], "messages": [], "replies": [], "cursors": []},
                  by_eng[eid]) for eid, rec in state.engagements.items()]
        data.write_store(project, self.seed, extra_idle, extra=extra)
        shutil.rmtree(fresh)
        return root / "p"

    def _restore(self, pristine: Path, stage: str = "pristine") -> Path:
        """Put the project back as it was at `stage` (kept beside it on first use)."""
        # run where it was made: the templates' paths are part of the drafts' render signature
        root, backup = pristine, pristine.with_name(f"{pristine.name}-{stage}")
        if not backup.exists():
            shutil.copytree(root, backup)
        else:
            shutil.rmtree(root)
            shutil.copytree(backup, root)
        return root

    def _render_beforehand(self, root: Path) -> None:
        """The tick of the day before: it drafts (and approves, by rule) every message due
        today without sending any, as cron's earlier ticks do within the review period."""
        from mailflow.config.loading import load_project
        from mailflow.desk.run import run_tick
        from mailflow.project import Project
        from mailflow.store import Store
        project = Project(root)
        report = run_tick(load_project(project), Store(project.state_dir),
                          SEND_NOW - dt.timedelta(days=1))
        if len(report.drafted) != self.sizes.sends or report.held or report.sent:
            raise RuntimeError(f"render beforehand: drafted {len(report.drafted)}, held "
                               f"{len(report.held)}, sent {len(report.sent)}, problems "
                               f"{report.problems[:3]}")

    def _send_once(self, root: Path, sink: SmtpSink) -> tuple[float, dict, list]:
        from mailflow.config.loading import load_project
        from mailflow.desk.run import run_tick
        from mailflow.engine import tick as runner
        from mailflow.project import Project
        from mailflow.store import Store
        project = Project(root)
        loaded = load_project(project)
        wire = runner.Tick.wire
        wired: list = []

        def capture(tick, msg):  # noqa: ANN001, ANN202
            raw, rcpts = wire(tick, msg)
            wired.append((raw, rcpts))
            return raw, rcpts

        before = sink.received
        runner.Tick.wire = capture
        try:
            with phases({}) as steps:
                t0 = time.perf_counter()
                report = run_tick(loaded, Store(project.state_dir), SEND_NOW)
                elapsed = time.perf_counter() - t0
        finally:
            runner.Tick.wire = wire
        n = self.sizes.sends
        if len(report.sent) != n or sink.received - before != n or report.problems:
            raise RuntimeError(f"send tick: sent {len(report.sent)} of {n}, sink got "
                               f"{sink.received - before}, problems {report.problems[:3]}")
        return elapsed, dict(steps), wired

    def _bare(self, wired: list, port: int) -> float:
        import smtplib
        t0 = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as s:
            for raw, rcpts in wired:
                s.sendmail(data.SENDER[1], rcpts, raw)
        return time.perf_counter() - t0

    def send(self, store_sizes: tuple[int, ...] | None = None) -> dict[int, dict]:
        """The send ticks on stores of the given sizes; also the two send-rate rows.

        Two ticks per store: render+send (the drafts are rendered, approved by rule and sent
        in one tick), and the everyday send path (drafts rendered and approved on an earlier
        tick; this one only sends and records them). The bare smtplib loop sends the very
        bytes mailflow sent, over one connection; mailmerge sends the same recipients a
        comparable text+HTML Jinja2 template (bench/peer.py).
        """
        n = self.sizes.sends
        sizes = store_sizes or (n,)
        out = self._sent
        both = store_sizes is None  # the store figure needs render+send alone
        with SmtpSink() as sink:
            for size in sizes:
                if size in out and (not both or "send_path_s" in out[size]):
                    continue
                pristine = self._send_projects(size - n, sink.port)
                self._restore(pristine)
                if both:
                    self._render_beforehand(pristine)
                    self._restore(pristine, "rendered")
                runs, path_runs, bare, peer = [], [], [], []
                for _ in range(self.sizes.repeat):
                    elapsed, steps, wired = self._send_once(self._restore(pristine), sink)
                    runs.append((elapsed, steps))
                    if both:
                        elapsed, steps, wired = self._send_once(
                            self._restore(pristine, "rendered"), sink)
                        path_runs.append((elapsed, steps))
                    bare.append(self._bare(wired, sink.port))
                    if both:  # last: its 1,000 connections must not slow the others' sink
                        peer.append(mailmerge_seconds(self.work / "mailmerge", wired,
                                                      sink, data.SENDER))
                elapsed, steps = min(runs, key=lambda r: r[0])
                per_msg = min((s["draft"] + s["send"]) / n for _, s in runs)
                out[size] = {"tick_s": elapsed, "bare_s": best(bare), "per_message_s": per_msg,
                             "steps_s": {k: round(v, 4) for k, v in steps.items()}}
                if both:
                    path_s, path_steps = min(path_runs, key=lambda r: r[0])
                    out[size].update({
                        "send_path_s": path_s,
                        "send_path_steps_s": {k: round(v, 4) for k, v in path_steps.items()},
                        "mailmerge_s": None if None in peer else best(peer)})
                self.log(f"send {n} on {size}: render+send {elapsed:.3f}s "
                         f"(steps {out[size]['steps_s']}), send path "
                         f"{out[size].get('send_path_s')}s "
                         f"(steps {out[size].get('send_path_steps_s')}), bare {best(bare):.3f}s, "
                         f"mailmerge {out[size].get('mailmerge_s')}, "
                         f"per message {per_msg * 1000:.2f} ms")
                shutil.rmtree(pristine.parent)
        first = out[sizes[0]]
        if store_sizes:
            return out
        path_rate, bare_rate = n / first["send_path_s"], n / first["bare_s"]
        self.rows.append(Row(f"send rate, send path: {n:,} approved rendered drafts sent and "
                             f"recorded (default send_batch = {SEND_BATCH})",
                             f"{path_rate:.0f} msg/s",
                             f"{bare_rate:.0f} msg/s (bare smtplib)",
                             round(path_rate / bare_rate, 2), ">= 0.5",
                             path_rate / bare_rate >= 0.5, first))
        rate = n / first["tick_s"]
        peer_s = first["mailmerge_s"]
        if peer_s is None:
            self.rows.append(Row(f"send rate, render + send: {n:,} messages", f"{rate:.0f} msg/s",
                                 "mailmerge not installed (pip install -e '.[bench]')", None,
                                 ">= 1.0", None))
        else:
            peer_rate = n / peer_s
            self.rows.append(Row(f"send rate, render + send: {n:,} messages",
                                 f"{rate:.0f} msg/s", f"{peer_rate:.0f} msg/s (mailmerge)",
                                 round(rate / peer_rate, 2), ">= 1.0", rate / peer_rate >= 1.0))
        return out

    def store(self) -> None:
        small, large = self.sizes.store
        out = self.send(store_sizes=(small, large)) if small == self.sizes.sends else {}
        if not out:
            raise RuntimeError("store sizes must start at the number of sends")
        a, b = out[small]["per_message_s"], out[large]["per_message_s"]
        self.rows.append(Row(f"per-message cost (render+send), {large:,} vs {small:,} "
                             "engagements", f"{b * 1000:.2f} ms", f"{a * 1000:.2f} ms",
                             round(b / a, 2), "<= 1.3", b / a <= 1.3,
                             {str(k): v for k, v in out.items()}))

    # -- polling -----------------------------------------------------------------------------

    def _poll_project(self, name: str, account, cursor_uid: int | None) -> Path:  # noqa: ANN001
        """A project (the small idle store) polling the account's INBOX from cursor_uid."""
        from mailflow.project import Project
        from mailflow.store import Store
        src = self.idle_project(self.sizes.idle[0])
        root = self.work / name
        shutil.copytree(src, root)
        project = Project(root)
        with project.config_path.open("a") as f:
            f.write(imap_toml(account))
        if cursor_uid is not None:
            with account.client() as c:
                uidvalidity = c.folder_status("INBOX", ["UIDVALIDITY"])[b"UIDVALIDITY"]
            with Store(project.state_dir).writer() as w:
                w.record("cursor.moved", at=data.NOW, cursors={"key": "INBOX", "set": {
                    "uidvalidity": uidvalidity, "last_uid": cursor_uid}})
                w.save()
        return root

    def _poll_in_process(self, root: Path, now: dt.datetime) -> tuple[float, object, list]:
        from mailflow.config.loading import load_project
        from mailflow.desk.polling import poll_once
        from mailflow.project import Project
        from mailflow.store import Store
        from mailflow.transport import imap
        project = Project(root)
        loaded = load_project(project)
        stats: list = []
        fetched: list[int] = []
        exit_ = imap.Mailbox.__exit__
        fetch = imap.CountingClient.fetch

        def on_exit(mb, *exc):  # noqa: ANN001, ANN002, ANN202
            stats.append(mb.stats)
            return exit_(mb, *exc)

        def counting_fetch(client, messages, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
            fetched.extend(messages)
            return fetch(client, messages, *a, **kw)

        imap.Mailbox.__exit__ = on_exit
        imap.CountingClient.fetch = counting_fetch
        try:
            t0 = time.perf_counter()
            report = poll_once(loaded, Store(project.state_dir), now)
            elapsed = time.perf_counter() - t0
        finally:
            imap.Mailbox.__exit__ = exit_
            imap.CountingClient.fetch = fetch
        if report.problems:
            raise RuntimeError(f"poll: {report.problems[:3]}")
        return elapsed, (stats[0], report), fetched

    def poll(self, server: ImapServer) -> None:
        small, large = self.sizes.folder
        res: dict[int, dict] = {}
        for n in (small, large):
            account = server.account()
            account.fill("INBOX", n)
            root = self._poll_project(f"poll-{n}", account, cursor_uid=n)
            times, subs, rss = [], [], []
            stats = None
            for k in range(self.sizes.repeat + 1):
                elapsed, (st, report), fetched = self._poll_in_process(
                    root, data.NOW + dt.timedelta(minutes=k))
                if report.replies or fetched:
                    raise RuntimeError(f"quiet poll of {n} fetched {len(fetched)}")
                if k:
                    times.append(elapsed)
                stats = st
            for k in range(self.sizes.repeat):
                args = ["--project", str(root), "--now",
                        iso(data.NOW + dt.timedelta(hours=1, minutes=k)), "poll"]
                wall, _, proc, _, err = run_child([*mailflow_cmd(), *args])
                if proc.returncode != 0:
                    raise RuntimeError(f"mailflow poll exited {proc.returncode}: {err[-500:]!r}")
                subs.append(wall)
                rss.append(peak_rss_kib(args)[0])
            res[n] = {"in_process_s": best(times), "subprocess_s": best(subs),
                      "commands": stats.commands, "bytes_in": stats.bytes_in,
                      "bytes_out": stats.bytes_out, "peak_rss_kib": max(rss)}
            self.log(f"quiet poll {n}: {res[n]}")
        a, b = res[small], res[large]
        # the only differences allowed: the digits of UIDNEXT (the folder's size) in the STATUS
        # reply, and Dovecot's timing text in its tagged OK ("(0.001 + 0.000 secs)" becomes
        # "(0.013 + 0.000 + 0.012 secs)" when the command waited): 8 bytes
        digits = len(str(large + 1)) - len(str(small + 1)) + 8
        same = a["commands"] == b["commands"] and a["bytes_out"] == b["bytes_out"] and \
            0 <= b["bytes_in"] - a["bytes_in"] <= digits
        self.rows.append(Row(f"quiet poll: IMAP commands/bytes in/out, {large:,} vs {small:,}",
                             f"{b['commands']} / {b['bytes_in']} / {b['bytes_out']}",
                             f"{a['commands']} / {a['bytes_in']} / {a['bytes_out']}",
                             None, f"equal (bytes in +{digits} at most: UIDNEXT digits, "
                             "server's timing text)", same))
        for label, key in (("in-process", "in_process_s"), ("subprocess", "subprocess_s")):
            ratio = b[key] / a[key]
            self.rows.append(Row(f"quiet poll time ({label}), {large:,} vs {small:,}",
                                 f"{b[key] * 1000:.1f} ms", f"{a[key] * 1000:.1f} ms",
                                 round(ratio, 2), "<= 1.5", ratio <= 1.5))
        ratio = b["peak_rss_kib"] / a["peak_rss_kib"]
        self.rows.append(Row(f"memory: quiet poll peak RSS, {large:,} vs {small:,}",
                             f"{b['peak_rss_kib'] / 1024:.1f} MiB",
                             f"{a['peak_rss_kib'] / 1024:.1f} MiB", round(ratio, 2),
                             "<= 1.1 (flat)", ratio <= 1.1))

    def busy(self, server: ImapServer) -> None:
        from mailflow.project import Project
        from mailflow.store import Store
        folder = self.sizes.folder[1]
        new = self.sizes.busy_new
        old = folder - new
        root0 = self.idle_project(self.sizes.idle[0])
        state = Store(Project(root0).state_dir).load()
        sent = sorted((m for m in state.messages.values() if m.get("sent_at")),
                      key=lambda m: m["key"])
        shapes = reply_shapes()
        replies = [make_reply(shapes[i % len(shapes)], i, sent[i % len(sent)], data.SENDER[1])
                   for i in range(new)]
        account = server.account()
        account.fill("INBOX", old)
        write_maildir(account, "INBOX", replies, start=old + 1)
        pristine = self._poll_project("busy", account, cursor_uid=old)
        runs = []
        for k in range(self.sizes.repeat):
            root = pristine.with_name(f"busy-{k}")
            shutil.copytree(pristine, root)
            elapsed, (stats, report), fetched = self._poll_in_process(root, data.NOW)
            recorded = len(Store(Project(root).state_dir).load().replies) - len(state.replies)
            runs.append((elapsed, stats, report, fetched, recorded))
            shutil.rmtree(root)
        elapsed, stats, report, fetched, recorded = min(runs, key=lambda r: r[0])
        once = len(fetched) == len(set(fetched)) == new
        rate = recorded / elapsed
        details = {"seconds": elapsed, "recorded": recorded, "fetched": len(fetched),
                   "unique_fetched": len(set(fetched)), "commands": stats.commands,
                   "bytes_in": stats.bytes_in}
        self.log(f"busy poll: {details}")
        self.rows.append(Row(f"busy poll: {new:,} new in {folder:,}", f"{rate:.0f} replies/s",
                             f"{recorded} recorded in {elapsed:.2f} s", None,
                             "all recorded, each fetched once", once and recorded == new,
                             details))

    def big(self, server: ImapServer) -> None:
        from bench.bigmail import big_poll
        big_poll(self, server, *self.sizes.big)

    # -- start-up ----------------------------------------------------------------------------

    def startup(self) -> None:
        import compileall

        import mailflow
        # an installed mailflow has its bytecode compiled (pip does it); a checkout run under
        # PYTHONDONTWRITEBYTECODE would compile every changed module on every start instead
        compileall.compile_dir(Path(mailflow.__file__).parent, quiet=1)
        rep = max(self.sizes.repeat * 2 + 1, 3)

        def timed(argv: list[str]) -> tuple[float, float]:
            """(best wall, best CPU (user+sys)) of `rep` runs: the wall time counts others'
            load on a shared machine, the CPU time only the command's own work."""
            walls, cpus = [], []
            for _ in range(rep):
                wall, cpu, code, err = child_cpu(argv)
                if code != 0:
                    raise RuntimeError(f"{argv[-1]} exited {code}: {err[-300:]!r}")
                walls.append(wall)
                cpus.append(cpu)
            return best(walls), best(cpus)

        bare, bare_cpu = timed([sys.executable, "-c", "import click"])
        base = f"{bare * 1000:.0f} ms, CPU {bare_cpu * 1000:.0f} ms (python -c 'import click')"

        def rows(label: str, argv: list[str], target: float) -> None:
            t, cpu = timed(argv)
            self.rows.append(Row(label, f"{t * 1000:.0f} ms", base, round(t / bare, 2),
                                 f"<= {target:g}", t / bare <= target))
            self.rows.append(Row(f"{label} (CPU, user+sys)", f"{cpu * 1000:.0f} ms", base,
                                 round(cpu / bare_cpu, 2), f"<= {target:g}",
                                 cpu / bare_cpu <= target))

        rows("start-up: mailflow --help", [*mailflow_cmd(), "--help"], 1.5)
        n = self.sizes.status_engagements
        root = self.idle_project(n)
        heavy: set[str] = set()
        for command in ("status", "drafts"):
            args = ["--project", str(root), "--now", iso(data.NOW), command]
            rows(f"start-up: mailflow {command}, {n:,} engagements", [*mailflow_cmd(), *args], 3)
            _, _, _, _, err = run_child([sys.executable, "-X", "importtime", "-m", "mailflow",
                                         *args])
            imported = {m.group(1) for m in re.finditer(rb"\|\s+([\w.]+)\s*$", err, re.M)}
            heavy |= {f"{command}: {m.decode()}" for m in imported
                      if m.split(b".")[0] in HEAVY_FOR_VIEWS}
        self.rows.append(Row("start-up: status/drafts import premailer/lxml/cssutils/jinja2/babel",
                             ", ".join(sorted(heavy)[:4]) or "none", "none", None, "none",
                             not heavy))

    # -- memory ------------------------------------------------------------------------------

    def memory(self) -> None:
        n = self.sizes.idle[1]
        root = self.idle_project(n)
        rss = []
        for k in range(max(1, self.sizes.repeat - 1)):
            maxrss, proc, err = peak_rss_kib(["--project", str(root), "--now",
                                              iso(data.NOW + dt.timedelta(hours=2, minutes=k)),
                                              "run"])
            if proc.returncode != 0:
                raise RuntimeError(f"mailflow run exited {proc.returncode}: {err[-300:]!r}")
            rss.append(maxrss)
        bare_rss = peak_rss_kib(["--help"])[0]
        state_mib = (root / ".mailflow" / "state.json").stat().st_size / 2**20
        self.rows.append(Row(f"memory: idle tick peak RSS, {n:,} engagements",
                             f"{max(rss) / 1024:.0f} MiB",
                             f"{bare_rss / 1024:.0f} MiB (mailflow --help)",
                             round(max(rss) / bare_rss, 1),
                             f"<= 200 MiB (checkpoint {state_mib:.0f} MiB)",
                             max(rss) <= 200 * 1024))


    # -- history (bench/history.py) ----------------------------------------------------------

    def archive(self) -> None:
        from bench.history import archive_figure
        archive_figure(self, run_child, mailflow_cmd(), Row)

    def years(self) -> None:
        from bench.history import years_figure
        years_figure(self, run_child, mailflow_cmd(), Row)


# what a view that re-plans nothing must not import (the renderer's libraries: issue 18)
HEAVY_FOR_VIEWS = (b"premailer", b"lxml", b"cssutils", b"jinja2", b"babel")

# the send figure's engagements are in London, where data.NOW (a Saturday) is noon; their
# project sends on every day of the week, and its other engagements have nothing due then
SEND_NOW = data.NOW
SEND_ZONE = "Europe/London"
SEND_BATCH = SCHEDULE_DEFAULTS["send_batch"]  # not forced: the figure is the default's


def machine() -> dict:
    """Where the numbers come from."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "python": platform.python_version(), "cpu": cpu,
            "platform": platform.platform()}


def table(rows: list[Row]) -> str:
    """The rows as an aligned plain-text (Markdown) table."""
    head = ["figure", "measured", "baseline", "ratio", "target", "result"]
    body = [[r.figure, r.measured, r.baseline, "" if r.ratio is None else f"{r.ratio:g}",
             r.target, {True: "pass", False: "FAIL", None: "-"}[r.ok]] for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in [head, ["-" * w for w in widths], *body]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when a target is missed."""
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    ap.add_argument("--only", action="append", choices=FIGURES, metavar="NAME",
                    help=f"run only this figure (repeatable): {', '.join(FIGURES)}")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    ap.add_argument("--keep", action="store_true", help="keep the generated projects")
    ap.add_argument("-q", "--quiet", action="store_true", help="only the table")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    only = args.only or list(FIGURES)
    work = Path(tempfile.mkdtemp(prefix="mailflow-bench-"))

    def log(text: str) -> None:
        if not args.quiet:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    bench = Bench(work, sizes, log)
    started = time.perf_counter()
    skipped: dict[str, str] = {}
    try:
        for name in only:
            log(f"--- {name}")
            if name in ("poll", "busy", "big"):
                try:
                    server = ImapServer()
                except RuntimeError as err:
                    skipped[name] = str(err)
                    continue
                with server:
                    getattr(bench, name)(server)
            else:
                getattr(bench, name)()
    finally:
        if args.keep:
            log(f"projects kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    result = {"machine": machine(), "quick": args.quick, "sizes": asdict(sizes),
              "seconds": round(time.perf_counter() - started, 1),
              "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "skipped": skipped, "rows": [asdict(r) for r in bench.rows]}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{'quick-' if args.quick else ''}" \
                      f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    m = result["machine"]
    print(f"mailflow benchmark ({'quick' if args.quick else 'full'}) on {m['cpu']}, "
          f"{m['nproc']} CPUs, Python {m['python']}")
    print(table(bench.rows))
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    print(f"written to {path}")
    return 0 if all(r.ok is not False for r in bench.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
