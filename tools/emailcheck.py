"""Score every email of the default playbook, in every language, with the tools a mail client
and a spam filter would use; not part of the test suite (they need Debian and npm packages).

    python tools/emailcheck.py [--out build/emails] [--engagement path.toml] [--languages en,fr]

- SpamAssassin's local tests (`apt-get install spamassassin`): `spamassassin -t -L`; the goal is a
  score under 0.5 for every email.
- caniemail data via doiuse-email (`npm install doiuse-email`, found on PATH or in
  ./node_modules/.bin, or set DOIUSE_EMAIL): no errors for Gmail and Apple Mail.

Prints one line per email and exits 1 when any email misses a goal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailflow.render.compose import build_message  # noqa: E402
from tools.screenshots import LANGUAGE_LOCALES, render_all  # noqa: E402

SPAM_LIMIT = 0.5
CLIENTS = ("gmail.*", "apple-mail.*")


def spam_score(eml: Path) -> tuple[float, str]:
    """SpamAssassin's score of one message and the rules that fired (local tests only)."""
    result = subprocess.run(["spamassassin", "-t", "-L"], input=eml.read_bytes(),
                            capture_output=True, timeout=120, check=False)
    out = result.stdout.decode("utf-8", "replace")
    score = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", out, re.M)
    rules = re.findall(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s", out.split("Content analysis")[-1],
                       re.M)
    fired = " ".join(f"{name}={points}" for points, name in rules)
    return (float(score.group(1)) if score else float("nan")), fired


def doiuse(html: Path) -> list[str]:
    """doiuse-email's errors for Gmail and Apple Mail."""
    tool = os.environ.get("DOIUSE_EMAIL") or shutil.which("doiuse-email") or str(
        ROOT / "node_modules" / ".bin" / "doiuse-email")
    # the package's bin script has no #! line: run it with node
    result = subprocess.run(["node", tool, f"--email-clients={','.join(CLIENTS)}", str(html)],
                            capture_output=True, text=True, timeout=120, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return [f"doiuse-email failed: {result.stderr.strip() or result.stdout.strip()}"]
    return list(report.get("errors", []))


def write_emails(engagement: dict, out: Path, languages: list[str]) -> list[Path]:
    """Each email as a .eml (and its HTML), as mailflow would send it."""
    written = []
    for language in languages:
        e = dict(engagement, locale=LANGUAGE_LOCALES[language])
        folder = out / language
        for name, rendered in render_all(e, folder, ROOT / "templates" / "emails",
                                         quiet=True):
            msg = build_message(
                subject=rendered.subject, html=rendered.html, text=rendered.text,
                sender={"name": e["consultant"]["name"], "email": e["consultant"]["email"]},
                to=e["contacts"]["to"], cc=e["contacts"].get("cc", []),
                message_id=f"<{name}.{language}@whitfield-consulting.example>",
                date=dt.datetime(2027, 1, 4, 14, 30, tzinfo=dt.UTC), where=name)
            eml = folder / f"{name}.eml"
            eml.write_bytes(msg.as_bytes())
            written.append(eml)
    return written


def main(argv: list[str] | None = None) -> int:
    """Write every email as .eml under build/emails and score each one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "emails")
    parser.add_argument("--engagement", type=Path,
                        default=ROOT / "mailflow" / "playbook" / "engagements" / "example.toml")
    parser.add_argument("--languages", default=",".join(LANGUAGE_LOCALES))
    args = parser.parse_args(argv)
    engagement = tomllib.loads(args.engagement.read_text(encoding="utf-8"))
    failed = False
    for eml in write_emails(engagement, args.out, args.languages.split(",")):
        score, fired = spam_score(eml)
        errors = doiuse(eml.with_suffix(".html"))
        ok = score < SPAM_LIMIT and not errors
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} {eml.relative_to(args.out)}: spamassassin {score:.1f}"
              f" ({fired or 'no rule'}); doiuse-email {len(errors)} error(s)")
        for error in errors:
            print(f"     {error}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
