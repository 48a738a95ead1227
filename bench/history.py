"""The history figures: archived engagements out of the idle tick, and two simulated years.

`archive`: the idle tick of N active engagements plus M completed long ago (moved into
archives by a real `run`) against the N alone, in process and as a subprocess.

`years`: engagements through whole sequences, one tick a simulated day (time given as `now`,
never slept): drafts approved, mail sent to a sink, the checklist marked done and the
engagement completed a week after its contract end, moved out 30 days later by the run.
The hot state folder (everything but `archive/`) and the idle tick are measured after the
first simulated month and at the end, with the same number of active engagements.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

from bench import data


def _folder_bytes(state_dir: Path, parts: dict | None = None) -> tuple[int, int]:
    """(hot bytes: the state folder without archive/, archive bytes); `parts` gets the hot
    bytes by kind of file."""
    hot = cold = 0
    for path in state_dir.rglob("*"):
        if path.is_file():
            size = path.stat().st_size
            top = path.relative_to(state_dir).parts[0]
            if top == "archive":
                cold += size
                continue
            hot += size
            if parts is not None:
                kind = "segments" if top.startswith("events.") and top != "events.jsonl" \
                    else top
                parts[kind] = parts.get(kind, 0) + size
    return hot, cold


# the in-process ticks run in a fresh interpreter of their own: the benchmark's process holds
# (frozen out of the GC) every large state it built, which slows whatever runs after it
_TICKS = """\
import datetime as dt, sys, time
from mailflow.config.loading import load_project
from mailflow.desk.run import run_tick
from mailflow.project import Project
from mailflow.store import Store
from pathlib import Path
project = Project(Path(sys.argv[1]))
loaded, store = load_project(project), Store(project.state_dir)
start, times = dt.datetime.fromisoformat(sys.argv[2]), []
for k in range(int(sys.argv[3]) + 1):  # the first is a warm-up
    t0 = time.perf_counter()
    report = run_tick(loaded, store, start + dt.timedelta(minutes=k))
    if k:
        times.append(time.perf_counter() - t0)
    if report.sent or report.drafted:
        sys.exit(f"the idle tick did something: {report.sent[:2]} {report.drafted[:2]}")
print(min(times))
"""


def idle_times(root: Path, repeat: int, start: dt.datetime, run_child, cmd) -> tuple[float, float]:  # noqa: ANN001
    """The best in-process and subprocess idle tick of a project at `start` and after."""
    import sys
    _, _, proc, out, err = run_child([sys.executable, "-c", _TICKS, str(root),
                                      start.isoformat(), str(repeat)])
    if proc.returncode != 0:
        raise RuntimeError(f"idle ticks of {root}: {err[-300:]!r}")
    inproc = float(out.split()[-1])
    subs = []
    for k in range(repeat):
        now = start + dt.timedelta(minutes=30 + k)
        wall, _, proc, _, err = run_child([*cmd, "--project", str(root), "--now",
                                           now.isoformat(), "run"])
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"mailflow run exited {proc.returncode}: {err[-300:]!r}")
        subs.append(wall)
    return inproc, min(subs)


def archive_figure(bench, run_child, cmd, Row) -> None:  # noqa: ANN001, N803
    """1,000 active plus 20,000 moved out vs 1,000 active alone."""
    from mailflow.config.loading import load_project
    from mailflow.desk.actions import set_status
    from mailflow.desk.run import run_tick
    from mailflow.store import Store
    active, archived = bench.sizes.archive
    alone = bench.idle_project(active)
    project = data.new_project(bench.work / f"archive-{archived}")
    with project.config_path.open("a") as f:  # as the project of `alone`: cron's steady
        f.write("\n[digest]\nenabled = false\n")  # state (the day's digest went at 08:30)
    t0 = time.perf_counter()
    data.write_store(project, bench.seed, active + archived)  # the first `active` as `alone`
    store = Store(project.state_dir)
    ended = data.NOW - dt.timedelta(days=60)
    with store.writer() as w:
        ids = list(w.state.engagements)[active:]
        for eid in ids:
            set_status(w, eid, "completed", ended)
        w.save()
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_tick(load_project(project), store, data.NOW)  # moves them out: the real path
    moved = time.perf_counter() - t0
    left = len(store.load().engagements)
    if left != active:
        raise RuntimeError(f"after the move {left} engagements are hot, not {active}")
    hot, cold = _folder_bytes(project.state_dir)
    bench.log(f"archive: {archived} completed built in {built:.1f}s, moved out in {moved:.1f}s "
              f"({hot / 2**20:.1f} MiB hot, {cold / 2**20:.1f} MiB of archives)")
    start = data.NOW + dt.timedelta(hours=3)
    with_archive = idle_times(project.root, bench.sizes.repeat, start, run_child, cmd)
    without = idle_times(alone, bench.sizes.repeat, start, run_child, cmd)
    details = {"move_out_s": round(moved, 2), "hot_bytes": hot, "archive_bytes": cold,
               "archived": archived}
    for i, label in enumerate(("in-process", "subprocess")):
        ratio = with_archive[i] / without[i]
        bench.rows.append(Row(
            f"idle tick ({label}), {active:,} active + {archived:,} archived vs {active:,}",
            f"{with_archive[i] * 1000:.0f} ms", f"{without[i] * 1000:.0f} ms", round(ratio, 2),
            "<= 1.2", ratio <= 1.2, details if i == 0 else {}))


def _engagement(project, i: int, end: dt.date) -> Path:  # noqa: ANN001
    names = data.Names(1000 + i)
    company = names.company()
    first, last = names.person()
    eid = f"y{i:04d}"
    path = project.engagements_dir / f"{eid}.toml"
    path.write_text(data.engagement_toml(
        i % 7, eid, company, first, last, f"c{i}.example", data.HOME_ZONE, end.isoformat(),
        support=i % 3 != 2, access=i % 4 != 3, cc=i % 2 == 0))
    return path


def years_figure(bench, run_child, cmd, Row) -> None:  # noqa: ANN001, N803
    """Engagements through whole sequences over simulated years; hot size and idle tick flat."""
    from bench.servers import SmtpSink
    from mailflow.config.loading import load_project
    from mailflow.desk.actions import add_engagement, approve, set_status
    from mailflow.desk.checklist import items_of, mark_done
    from mailflow.desk.run import run_tick
    from mailflow.store import Store
    count, days = bench.sizes.years
    lead, wrap = 45, 7  # added 45 days before its contract end; wrapped up a week after
    step = (days + 60 + lead) / count  # the stream goes on past the end: a steady set
    first = dt.date(2027, 1, 4)
    # engagements already under way on day one (ends in the first `lead` days) and one
    # ending every `step` days after: the active set is steady from the first week
    ends = [first - dt.timedelta(days=wrap) + dt.timedelta(days=round(k * step))
            for k in range(count)]
    added: set[int] = set()
    samples: dict[str, dict] = {}
    with SmtpSink() as sink:
        project = data.new_project(bench.work / "years", smtp_port=sink.port,
                                   per_minute=1000, per_day=100000)
        loaded = load_project(project)
        store = Store(project.state_dir)
        zone = loaded.zone
        t0 = time.perf_counter()
        for day in range(days + 61):  # on past `days` until the active count is day 30's
            date = first + dt.timedelta(days=day)
            now = dt.datetime.combine(date, dt.time(10), zone).astimezone(dt.UTC)
            new = [k for k, end in enumerate(ends) if k not in added
                   and end - dt.timedelta(days=lead) <= date]
            if new:
                with store.writer() as w:
                    for k in new:
                        add_engagement(w, loaded, _engagement(project, k, ends[k]), now)
                        added.add(k)
            run_tick(loaded, store, now)
            with store.writer() as w:
                for msg in list(w.state.messages.values()):
                    if msg["state"] == "awaiting_approval":
                        approve(w, msg, "dana", now)
                for eid, eng in list(w.state.engagements.items()):
                    end = dt.date.fromisoformat(str(eng["dates"]["contract_end"]))
                    if eng["status"] == "active" and date >= end + dt.timedelta(days=wrap):
                        for item in items_of(w.state, loaded, eng):
                            if not item.done:
                                mark_done(w, loaded, eng, item.id, "dana", now)
                        set_status(w, eid, "completed", now)
            state = store.load()
            active = sum(e["status"] == "active" for e in state.engagements.values())
            month = day == 30
            end = day >= days and (active == samples["month"]["active"] or day == days + 60)
            if month or end:
                parts: dict[str, int] = {}
                hot, cold = _folder_bytes(project.state_dir, parts)
                later = now + dt.timedelta(hours=4)
                # small and noisy: more repeats (the best of them)
                inproc, sub = idle_times(project.root, 2 * bench.sizes.repeat + 1, later,
                                         run_child, cmd)
                samples["month" if month else "end"] = {
                    "day": day, "active": active, "hot_engagements": len(state.engagements),
                    "hot_bytes": hot, "archive_bytes": cold, "idle_in_process_s": inproc,
                    "idle_subprocess_s": sub, "sent": sink.received,
                    "segments": len(list(project.state_dir.glob("events.*.jsonl"))),
                    "hot_parts": parts}
                bench.log(f"years day {day}: {samples['month' if month else 'end']}")
                if end:
                    break
        bench.log(f"years: {days} days simulated in {time.perf_counter() - t0:.0f}s, "
                  f"{sink.received} messages sent")
    m, e = samples["month"], samples["end"]
    details = {"month": m, "end": e, "engagements": count, "days": days}
    same = m["active"] == e["active"]
    for label, key, fmt in (("hot state folder size", "hot_bytes",
                             lambda v: f"{v / 2**20:.2f} MiB"),
                            ("idle tick (in-process)", "idle_in_process_s",
                             lambda v: f"{v * 1000:.0f} ms"),
                            ("idle tick (subprocess)", "idle_subprocess_s",
                             lambda v: f"{v * 1000:.0f} ms")):
        ratio = e[key] / m[key]
        bench.rows.append(Row(
            f"years: {label}, day {e['day']} vs day 30 ({e['active']} vs {m['active']} active)",
            fmt(e[key]), fmt(m[key]), round(ratio, 2), "<= 1.2 (same active count)",
            ratio <= 1.2 and same, details if key == "hot_bytes" else {}))
    shutil.rmtree(bench.work / "years", ignore_errors=True)
