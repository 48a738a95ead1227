"""`mailflow doc`: the offboarding document and the deliverables review, for the client."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mailflow.cli.app import App, cli, pass_app
from mailflow.cli.checklist import _complete_engagement


@cli.command()
@click.argument("eid", metavar="ID", shell_complete=_complete_engagement)
@click.option("--kind", type=click.Choice(["offboarding", "deliverables"]), default="offboarding",
              show_default=True, help="The offboarding document, or the one-page deliverables "
              "review.")
@click.option("--format", "fmt", type=click.Choice(["html", "md", "pdf"]), default=None,
              help="Default: from --out's extension, else html. PDF needs mailflow[pdf].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (default: standard output; PDF needs --out).")
@pass_app
def doc(app: App, eid: str, kind: str, fmt: str | None, out: Path | None) -> None:
    """Write the external offboarding document the lead shares with the client.

    It gives who leads the offboarding, the timeline with every date from the plan (each
    email, the handover, the last day, when each access ends), the final deliverables, the
    support option, the access removal schedule, open invoices, the meeting offer and how
    feedback will be asked. Restyle it in templates/docs/. `--kind deliverables` writes the
    one-page deliverables review instead.

    \b
    Example:
      mailflow doc northwind-2026 --out northwind-offboarding.html
      mailflow doc northwind-2026 --format md
      mailflow doc northwind-2026 --kind deliverables --out deliverables.pdf
    """
    from mailflow.desk.actions import find_engagement
    from mailflow.desk.documents import render_document, write_document
    if fmt is None:
        suffix = out.suffix.lower().lstrip(".") if out else ""
        fmt = {"md": "md", "markdown": "md", "pdf": "pdf"}.get(suffix, "html")
    if fmt == "pdf" and out is None:
        raise click.UsageError("a PDF needs --out FILE.pdf")
    state = app.store.load()
    eng = find_engagement(state, eid, archived_ok=True)
    content = render_document(app.project, state, app.loaded, eng, app.now, kind=kind, fmt=fmt)
    if out is None:
        sys.stdout.write(content.decode("utf-8"))
        sys.stdout.flush()
        return
    path = write_document(content, out)
    click.echo(f"wrote {path} ({kind}, {fmt})", err=True)
