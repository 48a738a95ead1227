"""The consultant's desk: drafts to review, approve, edit, reject or resolve; client replies."""

from __future__ import annotations

from pathlib import Path

import click

from mailflow.cli.app import (
    App,
    cli,
    complete_engagement,
    complete_message,
    complete_reply,
    echo_json,
    json_option,
    pass_app,
)
from mailflow.errors import ConfigError, MailflowError


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
    from mailflow.desk.drafts import drafts_view
    from mailflow.desk.tables import Column, echo_table
    errors: dict[str, str] = {}
    rows = drafts_view(app.store, app.loaded, app.now, all_states, errors)
    for eid, error in errors.items():  # never hidden: the rows of it show stored times
        click.echo(f"mailflow: engagement {eid}: {error}", err=True)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No drafts wait for you.")
        return
    columns = [Column("id", keep=True), Column("engagement", rank=9, min_width=10),
               Column("stage", rank=6, min_width=10), Column("subject", rank=5, min_width=16),
               Column("to", rank=7, min_width=12), Column("due (local)", rank=2, min_width=20),
               Column("waits for", rank=3, min_width=9)]
    echo_table(columns, [[r["id"], r["engagement"], r["stage"] + (
        f" +{r['step']}" if r["step"] else ""), r["subject"] or "", ", ".join(r["to"]),
        r["due_local"], r["why"] or r["state"]] for r in rows])


@drafts.command("show")
@click.argument("ref", metavar="ID", shell_complete=complete_message)
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
    import webbrowser

    from mailflow.desk import views
    from mailflow.desk.actions import find_message
    state = app.store.load()
    msg = find_message(state, ref)
    eng = state.engagements[msg["engagement"]]
    if not msg.get("subject"):
        click.echo(f"{msg['key']} is {msg['state']}; it has not been drafted yet (drafts are "
                   "prepared a few days before they are due: see `mailflow plan`).")
        if msg.get("error"):
            click.echo(f"error: {msg['error']}")
        return
    from mailflow.errors import ConfigError
    try:  # the identity it goes out as (issue 15): its lead's, kept on the message
        s = app.loaded.identity_of(msg, eng)
        sender = f"{s.name} <{s.email}>"
    except ConfigError as err:
        sender = f"(none: {err})"
    click.echo(f"Id:      {msg['key']} ({msg['state'].replace('_', ' ')})")
    click.echo(f"From:    {sender}")
    click.echo("To:      " + ", ".join(views._person(p) for p in msg.get("to") or []))
    if msg.get("cc"):
        click.echo("Cc:      " + ", ".join(views._person(p) for p in msg["cc"]))
    click.echo(f"Subject: {msg['subject']}")
    click.echo(f"Due:     {views.local(msg.get('due'), eng['time_zone'])}")
    if msg["state"] in ("planned", "awaiting_approval", "approved", "retry", "blocked"):
        from mailflow.engine.schedule import send_time_for
        # the real next send time, as plan, status and the approval give it (issue 13)
        when = views.local(send_time_for(app.loaded, state, msg, app.now), eng["time_zone"])
        once = {"awaiting_approval": " once approved", "blocked": " once fixed"}.get(
            msg["state"], "")
        click.echo(f"Goes out: {when}{once}")
    if msg.get("edited"):
        click.echo(f"Edited:  by {msg['edited']['by']} at {msg['edited']['at']}")
    if msg.get("approved_by"):
        click.echo(f"Approved: by {msg['approved_by']} at {msg.get('approved_at')}")
    if msg.get("error"):
        click.echo(f"Error:   {msg['error']}")
    for a in msg.get("attachments") or ():
        click.echo(f"Attached: {views.attachment_line(a)}")
    html, text = app.store.body(msg["body"])
    click.echo()
    click.echo(text)
    if html_file or open_browser:
        from mailflow.desk.drafts import preview_path, write_html
        # --open alone writes one preview per draft inside the project (overwritten each
        # time), never a temporary file left behind in /tmp
        path = write_html(html_file or preview_path(app.store, msg["key"]), html)
        click.echo(f"\n(HTML written to {path})", err=True)
        if open_browser:
            webbrowser.open(path.resolve().as_uri())


@drafts.command("approve")
@click.argument("refs", metavar="[ID]...", nargs=-1, shell_complete=complete_message)
@click.option("--engagement", "eid", metavar="ID", help="Every draft of this engagement.",
              shell_complete=complete_engagement)
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
    from mailflow.desk import views
    from mailflow.desk.actions import approve, find_engagement, find_message
    if not (refs or eid or approve_all):
        raise click.UsageError("name drafts to approve, or use --engagement ID or --all")
    # choose and confirm before taking the lock: cron's runs go on while you read the prompt
    state = app.store.load()
    if eid:
        find_engagement(state, eid)
    keys = [find_message(state, r)["key"] for r in refs]
    if eid or approve_all:
        keys += sorted(k for k, m in state.messages.items() if m["state"] == "awaiting_approval"
                       and (approve_all or m["engagement"] == eid) and k not in keys)
        if not keys:
            click.echo("No drafts await approval.")
            return
        if not yes:
            click.echo("\n".join(f"  {k}: {state.messages[k].get('subject')}" for k in keys))
            click.confirm(f"Approve these {len(keys)} draft(s) as {app.user}?", abort=True)
    with app.store.writer() as w:
        chosen = [w.state.messages[k] for k in keys]
        for msg in chosen:
            approve(w, msg, app.user, app.now)
        w.save()
    from mailflow.engine.schedule import send_time_for
    for msg in chosen:
        eng = w.state.engagements[msg["engagement"]]
        # the real next send time: a past due date means the next opening from now
        when = send_time_for(app.loaded, w.state, msg, app.now)
        after = w.state.messages.get(msg.get("after") or "")
        wait = (f", after {after['stage']} goes out" if after and not after.get("sent_at")
                and after["state"] not in ("rejected", "cancelled", "failed", "bounced") else "")
        click.echo(f"approved {msg['key']} (goes out {views.local(when, eng['time_zone'])}"
                   f"{wait})")


@drafts.command("reject")
@click.argument("ref", metavar="ID", shell_complete=complete_message)
@click.option("--reason", required=True, help="Why (kept in the record).")
@pass_app
def drafts_reject(app: App, ref: str, reason: str) -> None:
    """Reject a draft: it will never be sent; later stages go on.

    \b
    Example:
      mailflow drafts reject northwind-2026/support_offer --reason "they hired in-house"
    """
    from mailflow.desk.actions import find_message, reject
    with app.store.writer() as w:
        msg = find_message(w.state, ref)
        reject(w, msg, app.user, reason, app.now)
        w.save()
    click.echo(f"rejected {msg['key']}")


@drafts.command("resolve")
@click.argument("ref", metavar="ID", shell_complete=complete_message)
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
    from mailflow.desk.actions import find_message, resolve
    if outcome is None:
        raise click.UsageError("say --sent (it went out) or --resend (send it again)")
    with app.store.writer() as w:
        msg = find_message(w.state, ref)
        resolve(w, msg, outcome == "sent", app.user, app.now)
        w.save()
    click.echo(f"{msg['key']}: {'recorded as sent' if outcome == 'sent' else 'will be resent'}")


@drafts.command("edit")
@click.argument("ref", metavar="ID", shell_complete=complete_message)
@click.option("--part", type=click.Choice(["both", "text", "html"]), default="both",
              show_default=True, help="Which body to edit alongside the subject.")
@pass_app
def drafts_edit(app: App, ref: str, part: str) -> None:
    """Edit one draft's subject and bodies in $EDITOR; the edit needs approving again.

    The file holds the subject, the plain-text part and the HTML source, under marker lines.
    The HTML is inlined again and the whole message re-validated before it is kept; the
    record keeps who edited it and when, and a later template change no longer redraws it.

    \b
    Example:
      EDITOR=nano mailflow drafts edit northwind-2026/timeline_notice
      mailflow drafts edit northwind-2026/timeline_notice --part text
    """
    from mailflow.desk.editing import begin_edit, save_edit
    session = begin_edit(app.store, ref, part)
    # the editor runs without the lock: cron goes on meanwhile; save_edit checks the draft
    # did not change under us
    try:
        edited = click.edit(session.document, extension=".html" if part == "html" else ".txt",
                            require_save=True)
    except UnicodeDecodeError as err:
        raise ConfigError(f"drafts edit: the editor saved text that is not UTF-8 (byte "
                          f"{err.start}); nothing was changed: save it as UTF-8") from None
    except click.ClickException as err:  # no such editor, or it failed
        raise MailflowError(f"drafts edit: {err.message}; nothing was changed") from None
    notes = save_edit(app.store, app.loaded, session, edited, app.user, app.now)
    if not notes:
        click.echo("no change")
        return
    for note in notes[1:]:
        click.echo(f"note: {note}", err=True)
    key = session.before["key"]
    click.echo(f"edited {key}; approve it when ready: mailflow drafts approve {key}")


@cli.group(invoke_without_command=True)
@click.option("--needs-action", is_flag=True, help="Only replies that need you.")
@click.option("--engagement", "eid", metavar="ID", help="Only this engagement.",
              shell_complete=complete_engagement)
@click.option("--all-kinds", is_flag=True, help="Include auto-replies and bounces.")
@json_option
@click.pass_context
def replies(ctx: click.Context, needs_action: bool, eid: str | None, all_kinds: bool,
            as_json: bool) -> None:
    """Clients' replies, newest first.

    \b
    Example:
      mailflow replies --needs-action
      mailflow replies show 1
    """
    from mailflow.desk import views
    if ctx.invoked_subcommand is not None:
        return
    app: App = ctx.obj
    from mailflow.desk.drafts import reply_rows
    from mailflow.desk.tables import Column
    state = app.store.load()
    if eid:
        from mailflow.desk.actions import find_engagement
        find_engagement(state, eid, archived_ok=True)  # unknown: exit 3, not "No replies."
    rows = reply_rows(state, needs_action=needs_action, eid=eid, all_kinds=all_kinds,
                      default_zone=app.loaded.config.time_zone, loaded=app.loaded)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No replies." if not needs_action else "No replies need you.")
        return
    columns = [Column("id", keep=True), Column("received (local)", rank=3, min_width=16),
               Column("from", rank=4, min_width=12), Column("engagement", rank=6, min_width=10),
               Column("stage", rank=7, min_width=10), Column("kind", rank=2, min_width=6),
               Column("intent", rank=4, min_width=8), Column("says", rank=5, min_width=12)]
    views.echo_table(columns, [[r["id"], r["received_local"], r.get("from"),
                                r.get("engagement"), r.get("stage"),
                                r.get("kind") + (" !" if r["needs_action"] else "")
                                + ("" if r.get("trusted", True) else " (flagged)"),
                                views.intent_cell(r.get("intent")),
                                views.one_line(r.get("text") or "")[:50]] for r in rows])


@replies.command("add")
@click.argument("ref", metavar="ID", shell_complete=complete_message)
@click.argument("eml", metavar="FILE.eml", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def replies_add(app: App, ref: str, eml: Path) -> None:
    """Record a reply yourself (saved as .eml from your mail program), when IMAP is not set up.

    ID is the message it answers. It is kept, classified and acted on exactly like a
    polled reply (a human reply stops the stage's reminders, and so on).

    \b
    Example:
      mailflow replies add northwind-2026/timeline_notice reply.eml
    """
    from mailflow.cli.run import fail_on_problems  # (cli.run: the run commands' module)
    from mailflow.desk.polling import record_reply_file
    report = record_reply_file(app.loaded, app.store, app.now, ref, eml)
    state = app.store.load()
    newest = max(state.replies.values(), key=lambda r: int(r["id"]) if r["id"].isdigit() else 0)
    click.echo(f"recorded reply {newest['id']} ({newest.get('kind')}) to {newest['message']}: "
               f"mailflow replies show {newest['id']}")
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    fail_on_problems(report)


@replies.command("show")
@click.argument("rid", metavar="ID", shell_complete=complete_reply)
@click.option("--done", is_flag=True, help="Mark it handled (it no longer needs you).")
@pass_app
def replies_show(app: App, rid: str, done: bool) -> None:
    """One reply: who, when, which stage, what kind, and what they wrote.

    \b
    Example:
      mailflow replies show 1 --done
    """
    from mailflow.desk import views
    from mailflow.desk.lookup import archived_error, find_reply
    state = app.store.load()
    r = find_reply(state, rid)
    moved_out = state.engagements.get(r.get("engagement"), {}).get("moved_out")
    if done and moved_out:  # nothing more happens to an archived engagement
        raise archived_error(state, r["engagement"])
    zone = state.engagements.get(r.get("engagement"), {}).get("time_zone", "UTC")
    click.echo(f"Reply:    {r['id']} ({r.get('kind')}: {r.get('kind_reason', '')})")
    click.echo(f"From:     {views.shown(r.get('from_name'))} <{views.shown(r.get('from'))}>")
    click.echo(f"Received: {views.local(r.get('received_at'), zone)}")
    click.echo(f"About:    {r.get('engagement')} / {r.get('stage')} ({r.get('message')}, "
               f"matched by {r.get('how')})")
    click.echo(f"Subject:  {views.shown(r.get('subject'))}")
    if r.get("bounce"):
        b = r["bounce"]
        click.echo(f"Bounce:   {b.get('recipient')} {b.get('status')} {b.get('diagnostic')}")
    if r.get("return_date"):
        click.echo(f"Back on:  {r['return_date']}")
    if not r.get("trusted", True):
        click.echo(f"Trust:    not acted on: {r.get('distrust')} "
                   f"(`mailflow replies accept {rid}` acts on it)")
    elif r.get("accepted_by"):
        click.echo(f"Trust:    accepted by {r['accepted_by']} at {r.get('accepted_at')}")
    if r.get("intent"):
        click.echo(f"Intent:   {r['intent']['label']} - a suggestion; nothing was done")
        from mailflow.desk.checklist import done_suggestions
        for command in done_suggestions(state, app.loaded, r):
            click.echo(f"Mark it?  {command}")
    click.echo(f"Raw:      {r.get('raw')}")
    click.echo()
    click.echo(views.shown(r.get("text")) or "(no text)")
    if done:
        from mailflow.desk.actions import mark_reply_handled
        with app.store.writer() as w:
            mark_reply_handled(w, rid, app.user, app.now)
            w.save()
        click.echo(f"\nmarked {rid} handled", err=True)


@replies.command("accept")
@click.argument("rid", metavar="ID")
@pass_app
def replies_accept(app: App, rid: str) -> None:
    """Act on a reply mailflow flagged instead of trusting (a stranger, a failed check).

    The reply then does what a contact's reply does: its stage's on_reply, a pause for an
    opt-out, a suppressed address for a bounce, a later reminder for an out-of-office.

    \b
    Example:
      mailflow replies show 1
      mailflow replies accept 1
    """
    from mailflow.desk.replies import accept_reply
    with app.store.writer() as w:
        reaction = accept_reply(w, app.loaded, rid, app.user, app.now)
        w.save()
    done = len(reaction.changes)
    click.echo(f"accepted reply {rid}: {done} change(s) made"
               + ("; it still needs you (`mailflow replies show " + rid + " --done` when handled)"
                  if reaction.needs_action else ""))
    for line in reaction.problems:
        click.echo(line, err=True)
