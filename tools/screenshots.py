"""Render every offboarding email for the example engagement, in every language, to HTML (and
PNGs at 600 and 375 px wide, light and dark, when chromium is installed), to look at them the
way a client would.

    python tools/screenshots.py [--out build/screenshots] [--engagement path.toml]
                                [--languages en,fr,de,es]

"dark" is what a mail app that darkens emails on its own does (Gmail's and Outlook's apps):
chromium's forced dark mode; the emails declare a light colour scheme only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailflow.config.engagements import hydrate, validate_engagement  # noqa: E402
from mailflow.render.context import template_context  # noqa: E402
from mailflow.render.locale import LANGUAGE_LOCALES  # noqa: E402
from mailflow.render.templates import Rendered, Renderer  # noqa: E402

# (template, stage id, stage name, step, local send time): the example's calendar as planned
STAGES = [
    ("timeline_notice", "timeline_notice", "Timeline notice", 0, dt.datetime(2026, 12, 30, 9, 30)),
    ("deliverables_recap", "deliverables_recap", "Deliverables recap", 0,
     dt.datetime(2027, 1, 20, 9, 30)),
    ("support_offer", "support_offer", "Support offer", 0, dt.datetime(2027, 1, 22, 10, 0)),
    ("access_revocation", "access_revocation", "Access revocation notice", 0,
     dt.datetime(2027, 1, 26, 9, 30)),
    ("feedback_request", "feedback_request", "Feedback request", 0,
     dt.datetime(2027, 2, 2, 9, 30)),
    ("feedback_request_reminder", "feedback_request", "Feedback request", 1,
     dt.datetime(2027, 2, 9, 9, 30)),
]
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]
WIDTHS = (600, 375)
MODES = {"light": [], "dark": ["--force-dark-mode", "--enable-features=WebContentsForceDark"]}


def render_all(engagement: dict, out: Path, templates: Path, quiet: bool = False
               ) -> list[tuple[str, Rendered]]:
    """Write one HTML and one text file per email, as the runner renders them; return them."""
    renderer = Renderer(templates)
    record = hydrate(validate_engagement(engagement, Path("engagement.toml"), "UTC"))
    consultant = record["consultant"]
    out.mkdir(parents=True, exist_ok=True)
    sent: dict[str, dt.datetime] = {}
    done = []
    for template, stage_id, stage_name, step, when in STAGES:
        cc = [] if step else record["contacts"]["cc"]  # the reminder goes to To only
        context = template_context(
            record, sender_name=consultant["name"], sender_email=consultant["email"],
            stage_id=stage_id, stage_name=stage_name, step=step, now_local=when, sent=sent,
            recipient=record["contacts"]["to"][0], cc=cc,
        )
        rendered = renderer.render(template, context)
        sent.setdefault(stage_id, when)
        page = out / f"{template}.html"
        page.write_text(rendered.html, encoding="utf-8")
        (out / f"{template}.txt").write_text(
            f"Subject: {rendered.subject}\n\n{rendered.text}", encoding="utf-8"
        )
        done.append((template, rendered))
        if not quiet:
            print(f"{page}  [{rendered.subject}]")
    return done


def screenshot(pages: list[Path]) -> None:
    """PNGs of each page at each width, light and dark, with headless chromium if installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium not found: HTML only (apt-get install -y chromium for PNGs)")
        return
    with tempfile.TemporaryDirectory(prefix="mailflow-chromium-") as profile:
        for page in pages:
            for width in WIDTHS:
                for mode, flags in MODES.items():
                    png = page.with_name(f"{page.stem}-{width}-{mode}.png")
                    subprocess.run(
                        [chromium, *CHROMIUM_FLAGS, *flags, f"--window-size={width},1600",
                         f"--user-data-dir={profile}", f"--screenshot={png}",
                         page.resolve().as_uri()],
                        check=True, capture_output=True, timeout=120,
                    )
                    print(png)


def main(argv: list[str] | None = None) -> int:
    """Render the example engagement's emails into build/screenshots/."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "screenshots")
    parser.add_argument("--engagement", type=Path,
                        default=ROOT / "mailflow" / "playbook" / "engagements" / "example.toml")
    parser.add_argument("--templates", type=Path, default=ROOT / "templates" / "emails")
    parser.add_argument("--languages", default=",".join(LANGUAGE_LOCALES))
    args = parser.parse_args(argv)
    engagement = tomllib.loads(args.engagement.read_text(encoding="utf-8"))
    pages = []
    for language in args.languages.split(","):
        folder = args.out / language
        e = dict(engagement, locale=LANGUAGE_LOCALES[language])
        pages += [folder / f"{name}.html" for name, _ in render_all(e, folder, args.templates)]
    screenshot(pages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
