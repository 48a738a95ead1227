"""The peer in the send figure: awdeorio's `mailmerge` (pip install -e '.[bench]').

mailmerge renders one Jinja2 template per row of a CSV and sends each message over SMTP. It
is given the same recipients as mailflow's render+send tick and a comparable template: the
text and HTML parts of mailflow's first message (CSS already inlined, so the same bytes to
render and send), with the greeting's name, the subject and the addresses as CSV columns. It
runs in this process like mailflow's tick (imported beforehand, output discarded).
"""

from __future__ import annotations

import contextlib
import csv
import email
import email.policy
import os
import time
from pathlib import Path

_CONF = """\
[smtp_server]
host = 127.0.0.1
port = {port}
"""


def _template(raw: bytes, sender: tuple[str, str]) -> str:
    """A multipart/alternative mailmerge template made of one sent message's two parts."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    first = str(msg["To"].addresses[0].display_name).split()[0]
    text = msg.get_body(("plain",)).get_content().replace(first, "{{name}}")
    html = msg.get_body(("html",)).get_content().replace(first, "{{name}}")
    # mailmerge's template is Jinja2 too: the rendered text must not read as template syntax
    text, html = (f"{{% raw %}}{part}{{% endraw %}}".replace(
        "{{name}}", "{% endraw %}{{name}}{% raw %}") for part in (text, html))
    return (f"TO: {{{{to}}}}\n{{% if cc %}}CC: {{{{cc}}}}\n{{% endif %}}"
            f"SUBJECT: {{{{subject}}}}\nFROM: {sender[0]} <{sender[1]}>\nMIME-Version: 1.0\n"
            'Content-Type: multipart/alternative; boundary="mailmerge-boundary"\n\n'
            f"--mailmerge-boundary\nContent-Type: text/plain; charset=utf-8\n\n{text}\n"
            f"--mailmerge-boundary\nContent-Type: text/html; charset=utf-8\n\n{html}\n"
            "--mailmerge-boundary--\n")


def mailmerge_seconds(work: Path, wired: list[tuple[bytes, list[str]]], sink,  # noqa: ANN001
                      sender: tuple[str, str]) -> float | None:
    """Seconds mailmerge takes to send one message per wired message's recipients (None:
    mailmerge is not installed)."""
    try:
        from mailmerge.__main__ import main
    except ImportError:
        return None
    work.mkdir(parents=True, exist_ok=True)
    template, database, config = (work / "mailmerge_template.txt",
                                  work / "mailmerge_database.csv", work / "mailmerge_server.conf")
    template.write_text(_template(wired[0][0], sender))
    config.write_text(_CONF.format(port=sink.port))
    with database.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["to", "cc", "subject", "name"])
        for raw, _ in wired:
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            to = msg["To"]
            out.writerow([str(to), str(msg["Cc"] or ""), str(msg["Subject"]),
                          str(to.addresses[0].display_name).split()[0]])
    before = sink.received
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        t0 = time.perf_counter()
        try:
            main(["--no-dry-run", "--no-limit", "--output-format", "raw", "--template",
                  str(template), "--database", str(database), "--config", str(config)],
                 standalone_mode=False)
        except SystemExit as exit_:
            if exit_.code:
                raise RuntimeError(f"mailmerge exited {exit_.code}") from None
        elapsed = time.perf_counter() - t0
    if sink.received - before != len(wired):
        raise RuntimeError(f"mailmerge sent {sink.received - before} of {len(wired)}")
    return elapsed
