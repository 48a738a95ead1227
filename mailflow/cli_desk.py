"""The consultant's desk: drafts to review, approve, edit, reject or resolve; client replies."""

from __future__ import annotations

import tempfile
import webbrowser
from pathlib import Path

import click

from . import views
from .cli import App, cli, echo_json, json_option, pass_app

REVIEW = ("awaiting_approval", "in_doubt", "blocked")


@cli.group(invoke_without_command=True)
@json_option
@click.option("--all-states", is_flag=True, help="Also list approved and planned drafts.")
@click.pass_context
def drafts(ctx: click.Context, as_json: bool, all_states: bool) -> None:
    """Drafts that wait for you: to approve, overdue, in doubt, or blocked.

    \b
    Example:
      mailflow drafts
      mailflow drafts show northwind-2026/timeline_notice
      mailflow drafts approve northwind-2026/timeline_notice
    """
    if ctx.invoked_subcommand is not None:
        return
    app: App = ctx.obj
    state = app.store.load()
    wanted = REVIEW + (("approved", "planned", "retry") if all_states else ())
    msgs = sorted((m for m in state.messages.values() if m["state"] in wanted),
                  key=lambda m: (m.get("due") or "", m["key"]))
    rows = [views.message_row(m, state.engagements[m["engagement"]]["time_zone"]) for m in msgs]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No drafts wait for you.")
        return
    views.echo_table(["id", "stage", "to", "due (local)", "waits for"],
                     [[r["id"], r["stage"], ", ".join(r["to"]), r["due_local"],
                       r["why"] or r["state"]] for r in rows])


@drafts.command("show")
@click.argument("ref", metavar="ID")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the final (inlined) HTML to this file.")
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML in your browser.")
@pass_app
def drafts_show(app: App, ref: str, html_file: Path | None, open_browser: bool) -> None:
    """Print a draft's headers and text part; optionally its HTML.

    \b
    Example:
      mailflow drafts show northwind-2026/timeline_notice --open
    """
    from .actions import find_message
    state = app.store.load()
    msg = find_message(state, ref)
    eng = state.engagements[msg["engagement"]]
    if not msg.get("subject"):
        click.echo(f"{msg['key']} is {msg['state']}; it has not been drafted yet (drafts are "
                   "prepared a few days before they are due: see `mailflow plan`).")
        if msg.get("error"):
            click.echo(f"error: {msg['error']}")
        return
    s = app.loaded.config.sender
    click.echo(f"Id:      {msg['key']} ({msg['state'].replace('_', ' ')})")
    click.echo(f"From:    {s.name} <{s.email}>")
    click.echo("To:      " + ", ".join(views._person(p) for p in msg.get("to") or []))
    if msg.get("cc"):
        click.echo("Cc:      " + ", ".join(views._person(p) for p in msg["cc"]))
    click.echo(f"Subject: {msg['subject']}")
    click.echo(f"Due:     {views.local(msg.get('due'), eng['time_zone'])}")
    if msg.get("edited"):
        click.echo(f"Edited:  by {msg['edited']['by']} at {msg['edited']['at']}")
    click.echo()
    click.echo(msg["text"])
    if html_file or open_browser:
        path = html_file or Path(tempfile.mkstemp(prefix="mailflow-", suffix=".html")[1])
        path.write_text(msg["html"], encoding="utf-8")
        click.echo(f"\n(HTML written to {path})", err=True)
        if open_browser:
            webbrowser.open(path.resolve().as_uri())


@drafts.command("approve")
@click.argument("refs", metavar="[ID]...", nargs=-1)
@click.option("--engagement", "eid", metavar="ID", help="Every draft of this engagement.")
@click.option("--all", "approve_all", is_flag=True, help="Every draft awaiting approval.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def drafts_approve(app: App, refs: tuple[str, ...], eid: str | None, approve_all: bool,
                   yes: bool) -> None:
    """Approve drafts; each goes out on the first run at or after its due time.

    \b
    Example:
      mailflow drafts approve northwind-2026/timeline_notice
      mailflow drafts approve --engagement northwind-2026 -y
    """
    from .actions import approve, find_engagement, find_message
    if not (refs or eid or approve_all):
        raise click.UsageError("name drafts to approve, or use --engagement ID or --all")
    with app.store.writer() as w:
        if eid:
            find_engagement(w.state, eid)
        chosen = [find_message(w.state, r) for r in refs]
        if eid or approve_all:
            chosen += [m for m in w.state.messages.values() if m["state"] == "awaiting_approval"
                       and (approve_all or m["engagement"] == eid) and m not in chosen]
            if not chosen:
                click.echo("No drafts await approval.")
                return
            if not yes:
                click.echo("\n".join(f"  {m['key']}: {m.get('subject')}" for m in chosen))
                click.confirm(f"Approve these {len(chosen)} draft(s)?", abort=True)
        for msg in chosen:
            approve(w, msg, app.user, app.now)
        w.save()
    for msg in chosen:
        eng = w.state.engagements[msg["engagement"]]
        click.echo(f"approved {msg['key']} (goes out {views.local(msg['due'], eng['time_zone'])}"
                   f"{' or at the next opening' if msg.get('late_ok') else ''})")


@drafts.command("reject")
@click.argument("ref", metavar="ID")
@click.option("--reason", required=True, help="Why (kept in the record).")
@pass_app
def drafts_reject(app: App, ref: str, reason: str) -> None:
    """Reject a draft: it will never be sent; later stages go on.

    \b
    Example:
      mailflow drafts reject northwind-2026/support_offer --reason "they hired in-house"
    """
    from .actions import find_message, reject
    with app.store.writer() as w:
        msg = find_message(w.state, ref)
        reject(w, msg, app.user, reason, app.now)
        w.save()
    click.echo(f"rejected {msg['key']}")


@drafts.command("resolve")
@click.argument("ref", metavar="ID")
@click.option("--sent", "outcome", flag_value="sent", help="It did go out: record it as sent.")
@click.option("--resend", "outcome", flag_value="resend", help="It did not: send it again.")
@pass_app
def drafts_resolve(app: App, ref: str, outcome: str | None) -> None:
    """Settle a message in doubt (mailflow stopped while sending it).

    Look in your Sent folder or ask the client first: --resend may send it twice.

    \b
    Example:
      mailflow drafts resolve northwind-2026/timeline_notice --sent
    """
    from .actions import find_message, resolve
    if outcome is None:
        raise click.UsageError("say --sent (it went out) or --resend (send it again)")
    with app.store.writer() as w:
        msg = find_message(w.state, ref)
        resolve(w, msg, outcome == "sent", app.user, app.now)
        w.save()
    click.echo(f"{msg['key']}: {'recorded as sent' if outcome == 'sent' else 'will be resent'}")


@drafts.command("edit")
@click.argument("ref", metavar="ID")
@click.option("--part", type=click.Choice(["text", "html"]), default="text", show_default=True,
              help="Which body to edit alongside the subject.")
@pass_app
def drafts_edit(app: App, ref: str, part: str) -> None:
    """Edit one draft's subject and body in $EDITOR; the edit needs approving again.

    The first line is the subject; the body follows after a blank line. Editing the text
    part leaves the HTML part as rendered unless you also edit it (--part html).

    \b
    Example:
      EDITOR=nano mailflow drafts edit northwind-2026/support_offer
    """
    from .actions import apply_edit, find_message
    from .errors import StateError
    with app.store.writer() as w:
        msg = find_message(w.state, ref)
        if not msg.get("subject"):
            raise StateError(f"{msg['key']} has not been drafted yet")
        body = msg["text"] if part == "text" else msg["html"]
        edited = click.edit(f"{msg['subject']}\n\n{body}", extension=".txt" if part == "text"
                            else ".html", require_save=True)
        if edited is None:
            click.echo("no change")
            return
        subject, _, new_body = edited.partition("\n")
        new_body = new_body.lstrip("\n")
        html, text = (msg["html"], new_body) if part == "text" else (new_body, msg["text"])
        if part == "html":
            from .render import inline_css
            html = inline_css(html)
        apply_edit(w, msg, subject, html, text, app.user, app.now)
        w.save()
    click.echo(f"edited {msg['key']}; approve it when ready: mailflow drafts approve {msg['key']}")


@cli.group(invoke_without_command=True)
@click.option("--needs-action", is_flag=True, help="Only replies that need you.")
@click.option("--engagement", "eid", metavar="ID", help="Only this engagement.")
@click.option("--all-kinds", is_flag=True, help="Include auto-replies and bounces.")
@json_option
@click.pass_context
def replies(ctx: click.Context, needs_action: bool, eid: str | None, all_kinds: bool,
            as_json: bool) -> None:
    """Clients' replies, newest first.

    \b
    Example:
      mailflow replies --needs-action
      mailflow replies show 3
    """
    if ctx.invoked_subcommand is not None:
        return
    app: App = ctx.obj
    state = app.store.load()
    rows = sorted(state.replies.values(), key=lambda r: r.get("received_at") or "", reverse=True)
    rows = [r for r in rows if (not eid or r.get("engagement") == eid)
            and (not needs_action or (r.get("needs_action") and not r.get("handled")))
            and (all_kinds or needs_action or eid or r.get("kind") in ("human", "unsubscribe"))]
    out = [dict(r) for r in rows]
    if as_json:
        echo_json(out)
        return
    if not rows:
        click.echo("No replies." if not needs_action else "No replies need you.")
        return
    views.echo_table(["id", "received", "from", "engagement", "stage", "kind", "says"],
                     [[r["id"], (r.get("received_at") or "")[:16], r.get("from"),
                       r.get("engagement"), r.get("stage"),
                       r.get("kind") + (" !" if r.get("needs_action") and not r.get("handled")
                                        else ""),
                       " ".join((r.get("text") or "").split())[:50]] for r in rows])


@replies.command("show")
@click.argument("rid", metavar="ID")
@click.option("--done", is_flag=True, help="Mark it handled (it no longer needs you).")
@pass_app
def replies_show(app: App, rid: str, done: bool) -> None:
    """One reply: who, when, which stage, what kind, and what they wrote.

    \b
    Example:
      mailflow replies show 3 --done
    """
    from .errors import NotFoundError
    state = app.store.load()
    r = state.replies.get(rid)
    if r is None:
        raise NotFoundError(f"no reply {rid!r} (see `mailflow replies`)")
    zone = state.engagements.get(r.get("engagement"), {}).get("time_zone", "UTC")
    click.echo(f"Reply:    {r['id']} ({r.get('kind')}: {r.get('kind_reason', '')})")
    click.echo(f"From:     {r.get('from_name') or ''} <{r.get('from')}>")
    click.echo(f"Received: {views.local(r.get('received_at'), zone)}")
    click.echo(f"About:    {r.get('engagement')} / {r.get('stage')} ({r.get('message')}, "
               f"matched by {r.get('how')})")
    click.echo(f"Subject:  {r.get('subject')}")
    if r.get("bounce"):
        b = r["bounce"]
        click.echo(f"Bounce:   {b.get('recipient')} {b.get('status')} {b.get('diagnostic')}")
    if r.get("return_date"):
        click.echo(f"Back on:  {r['return_date']}")
    click.echo(f"Raw:      {r.get('raw')}")
    click.echo()
    click.echo(r.get("text") or "(no text)")
    if done:
        from .store import now_iso
        with app.store.writer() as w:
            w.record("reply.handled", at=app.now, engagement=r.get("engagement"),
                     replies={"key": rid, "set": {"handled": now_iso(app.now),
                                                  "handled_by": app.user}})
            w.save()
        click.echo(f"\nmarked {rid} handled", err=True)
