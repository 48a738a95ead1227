"""`mailflow demo`: a whole offboarding in seconds, against a local SMTP sink."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

from mailflow import timing
from mailflow.config.loading import load_project
from mailflow.desk.actions import add_engagement, approve
from mailflow.desk.run import run_tick
from mailflow.engine.records import MessageState
from mailflow.errors import CommandLineError
from mailflow.project import init_project
from mailflow.store import Store
from mailflow.transport.sink import free_port, start_sink

DEMO_SENDER = ("Dana Whitfield", "dana@whitfield-consulting.example")


def run_demo(folder: Path | None, echo: Callable[[str], None] = print) -> Path:
    """Create a project, walk its example engagement through every stage, print the timeline.

    Without `folder` the project lives in a temporary folder that is removed at the end,
    whatever happens: a demo leaves nothing behind unless asked to keep it.
    """
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="mailflow-demo-") as tmp:
            _demo(Path(tmp), echo)
            echo("\n(The demo ran in a temporary folder, now removed with its .eml files; "
                 "`mailflow demo --dir DIR` keeps the project and the emails to open.)")
        return Path(tmp)
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        # the demo writes its own mailflow.toml and playbook: never over a project of yours
        raise CommandLineError(f"demo --dir: {folder} is not empty; give a new or empty "
                               "folder (the demo writes a whole project into it)")
    root = _demo(folder, echo)
    echo(f"\nThe demo project is {root}; try:  mailflow --project {root} status")
    return root


def _demo(root: Path, echo: Callable[[str], None]) -> Path:
    project = init_project(root, sender_name=DEMO_SENDER[0], sender_email=DEMO_SENDER[1],
                           time_zone="America/New_York", force=True)
    port = free_port()
    config = project.config_path.read_text(encoding="utf-8")
    project.config_path.write_text(config.replace("port = 1025", f"port = {port}"),
                                   encoding="utf-8")
    outbox = project.root / "sent"
    controller = start_sink(outbox, port=port)
    try:
        _walk(project, echo)
    finally:
        controller.stop()
    files = sorted(outbox.glob("*.eml"))
    digests = sum(1 for d in Store(project.state_dir).load().digests.values()
                  if d.get("kind") == "digest")
    echo("")
    echo(f"{len(files)} emails were delivered to the local SMTP sink (127.0.0.1:{port}), "
         f"in {outbox}/" + (f" ({len(files) - digests} to the client, {digests} digest"
                            f"{'s' if digests != 1 else ''} to you)" if digests else "") + ":")
    for path in files:
        echo(f"  {path.name}")
    return project.root


def _walk(project, echo: Callable[[str], None]) -> None:  # noqa: ANN001
    loaded = load_project(project)
    store = Store(project.state_dir)
    zone = timing.load_zone("America/New_York")
    contract_end = dt.date(2027, 1, 29)  # the example engagement's
    start = dt.datetime.combine(contract_end - dt.timedelta(days=45), dt.time(8, 0), zone)
    with store.writer() as w:
        record = add_engagement(w, loaded, project.engagements_dir / "example.toml", start)
        w.save()
    echo(f"Engagement {record['id']}: {record['client']}, contract ends "
         f"{contract_end:%a %d %b %Y}; clock starts {start:%a %d %b %Y}.")
    echo("Each day the clock stops at 08:00, 10:30 and 15:00 New York time and runs "
         "`mailflow run`; drafts are approved at 08:00 as a consultant would.\n")
    day = start
    digests: set[str] = set()
    for _ in range(75):
        for hour, minute in ((8, 0), (10, 30), (15, 0)):
            now = day.replace(hour=hour, minute=minute)
            report = run_tick(loaded, store, now)
            state = store.load()
            for key in report.drafted:
                msg = state.messages[key]
                echo(f"{timing.format_local(now, zone)}  drafted   {key}  "
                     f"(due {timing.format_local(dt.datetime.fromisoformat(msg['due']), zone)})")
            for key in report.sent:
                msg = state.messages[key]
                echo(f"{timing.format_local(now, zone)}  SENT      {key}  \"{msg['subject']}\" "
                     f"-> {', '.join(p['email'] for p in msg['to'] + msg.get('cc', []))}")
            for line in report.problems:
                echo(f"{timing.format_local(now, zone)}  problem   {line}")
            _say_digests(state, digests, now, zone, echo)
            if hour == 8:
                waiting = [m for m in state.messages.values()
                           if m["state"] == MessageState.AWAITING_APPROVAL]
                if waiting:
                    with store.writer() as w:
                        for msg in waiting:
                            approve(w, w.state.messages[msg["key"]], "dana (demo)", now)
                            echo(f"{timing.format_local(now, zone)}  approved  {msg['key']}")
                        w.save()
        day += dt.timedelta(days=1)


def _say_digests(state, seen: set[str], now: dt.datetime, zone,  # noqa: ANN001
                 echo: Callable[[str], None]) -> None:
    """Name each digest the run sent; the first one says what a digest is for."""
    for did, record in sorted(state.digests.items()):
        if did in seen or record.get("kind") != "digest":
            continue
        seen.add(did)
        echo(f"{timing.format_local(now, zone)}  digest    to {record['to']}: "
             f"\"{record['subject']}\"")
        if len(seen) == 1:
            pad = " " * 26
            echo(f"{pad}(the digest: an email to you, never to a client, listing each draft "
                 f"that waits\n{pad} for you with a number; replying \"approve 1\" approves "
                 f"it. Here the demo\n{pad} approves at the terminal instead; [digest] in "
                 f"mailflow.toml sets\n{pad} when it goes, enabled = false stops it.)")
