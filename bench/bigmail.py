"""The big-reply figure: peak RSS of `mailflow poll` recording replies with large attachments.

Kept apart from bench/run.py (already long); run.py calls `big_poll` for `--only big`.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
from email.utils import formataddr
from pathlib import Path

from bench import data
from bench.servers import write_maildir

TARGET_MIB = 150


def big_reply(n: int, sent: dict, sender: str, size: int) -> bytes:
    """A reply with a short text and an attachment whose encoded size is about `size` bytes."""
    who = sent["to"][0]
    payload = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    head = (f"From: {formataddr((who.get('name') or '', who['email']))}\r\n"
            f"To: Dana Whitfield <{sender}>\r\nSubject: Re: {sent['subject']}\r\n"
            f"Date: Mon, 25 Jan 2027 10:{n % 60:02d}:00 +0000\r\n"
            f"Message-ID: <bench-big-{n}@{who['email'].rpartition('@')[2]}>\r\n"
            f"In-Reply-To: {sent['message_id']}\r\nReferences: {sent['message_id']}\r\n"
            "MIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="bench-big"\r\n\r\n')
    text = ("--bench-big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "Hi Dana, the full export is attached. The pipelines folder is empty on our "
            "side though.\r\n\r\n")
    attachment = ("--bench-big\r\nContent-Type: application/zip; name=export.zip\r\n"
                  "Content-Disposition: attachment; filename=export.zip\r\n"
                  "Content-Transfer-Encoding: base64\r\n\r\n")
    return (head + text + attachment).encode() + payload + b"\r\n--bench-big--\r\n"


def big_poll(bench, server, count: int, size: int) -> None:  # noqa: ANN001 - run.Bench, ImapServer
    """Record `count` replies of about `size` bytes each in one poll; report its peak RSS."""
    from bench.run import Row, iso, mailflow_cmd, peak_rss_kib, run_child
    from mailflow.project import Project
    from mailflow.store import Store
    root0 = bench.idle_project(bench.sizes.idle[0])
    state = Store(Project(root0).state_dir).load()
    sent = sorted((m for m in state.messages.values() if m.get("sent_at")),
                  key=lambda m: m["key"])
    account = server.account()
    account.fill("INBOX", 1)
    write_maildir(account, "INBOX", [big_reply(i, sent[i % len(sent)], data.SENDER[1], size)
                                     for i in range(count)], start=2)
    pristine = bench._poll_project("big", account, cursor_uid=1)
    args_at = iso(data.NOW + dt.timedelta(hours=3))
    # one warm-up poll in a copy, so that Dovecot has indexed the folder before the measure
    warm = pristine.with_name("big-warm")
    shutil.copytree(pristine, warm)
    _, _, proc, _, err = run_child([*mailflow_cmd(), "--project", str(warm), "--now", args_at,
                                    "poll"])
    if proc.returncode != 0:
        raise RuntimeError(f"mailflow poll exited {proc.returncode}: {err[-500:]!r}")
    shutil.rmtree(warm)
    rss = []
    for k in range(max(1, bench.sizes.repeat - 1)):
        root = pristine.with_name(f"big-{k}")
        shutil.copytree(pristine, root)
        kib, proc, err = peak_rss_kib(["--project", str(root), "--now", args_at, "poll"])
        if proc.returncode != 0:
            raise RuntimeError(f"mailflow poll exited {proc.returncode}: {err[-500:]!r}")
        recorded = len(Store(Project(root).state_dir).load().replies) - len(state.replies)
        if recorded != count:
            raise RuntimeError(f"big poll recorded {recorded} of {count}")
        kept = sorted(Path(root, ".mailflow", "raw").rglob("*.eml"))
        if len(kept) != count or any(p.stat().st_size < size for p in kept):
            raise RuntimeError("big poll: the raw .eml files are missing or short")
        rss.append(kib)
        shutil.rmtree(root)
    bare = peak_rss_kib(["--help"])[0]
    peak = min(rss) / 1024
    bench.log(f"big poll: {count} x {size / 2**20:.0f} MiB, peak RSS {peak:.1f} MiB")
    bench.rows.append(Row(f"memory: poll of {count} replies of {size / 2**20:.0f} MiB each",
                          f"{peak:.1f} MiB", f"{bare / 1024:.0f} MiB (mailflow --help)",
                          round(peak * 1024 / bare, 1), f"<= {TARGET_MIB} MiB",
                          peak <= TARGET_MIB, {"peak_rss_kib": rss, "count": count,
                                               "size": size}))
