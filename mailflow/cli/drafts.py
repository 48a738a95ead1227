"""The consultant's desk: drafts to review, approve, edit, reject or resolve; client replies."""

from __future__ import annotations

import os
import tempfile
import webbrowser
from pathlib import Path

import click

from mailflow.cli.app import App, cli, echo_json, json_option, pass_app
from mailflow.desk import views

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
    from mailflow.engine.sendtime import send_time_for
    rows = [views.message_row(m, state.engagements[m["engagement"]]["time_zone"],
                              send_time_for(app.loaded, state, m, app.now)) for m in msgs]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No drafts wait for you.")
        return
    views.echo_table(["id", "engagement", "stage", "to", "due (local)", "waits for"],
                     [[r["id"], r["engagement"], r["stage"] + (f" +{r['step']}" if r["step"]
                                                               else ""),
                       ", ".join(r["to"]), r["due_local"], r["why"] or r["state"]]
                      for r in rows])


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
    if msg.get("approved_by"):
        click.echo(f"Approved: by {msg['approved_by']} at {msg.get('approved_at')}")
    if msg.get("error"):
        click.echo(f"Error:   {msg['error']}")
    html, text = app.store.body(msg["body"])
    click.echo()
    click.echo(text)
    if html_file or open_browser:
        if html_file is None:
            fd, name = tempfile.mkstemp(prefix="mailflow-", suffix=".html")
            os.close(fd)
            html_file = Path(name)
        path = html_file
        path.write_text(html, encoding="utf-8")
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
    from mailflow.engine.sendtime import send_time_for
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
@click.argument("ref", metavar="ID")
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
    from mailflow.desk.actions import find_message, resolve
    if outcome is None:
        raise click.UsageError("say --sent (it went out) or --resend (send it again)")
    with app.store.writer() as w:
        msg = find_message(w.state, ref)
        resolve(w, msg, outcome == "sent", app.user, app.now)
        w.save()
    click.echo(f"{msg['key']}: {'recorded as sent' if outcome == 'sent' else 'will be resent'}")


TEXT_MARK = "=" * 20 + " text part (plain text) " + "=" * 20
HTML_MARK = "=" * 20 + " HTML part (what most mail programs show) " + "=" * 20
_EDIT_HELP = """\
# Edit the subject, the text part and/or the HTML part of this draft, save and quit.
# Keep the two ==== lines. Lines starting with # up here are ignored.
"""


def edit_document(subject: str, text: str, html: str, parts: tuple[str, ...]) -> str:
    """The file the consultant edits: subject, then the chosen parts under marker lines."""
    doc = f"{_EDIT_HELP}Subject: {subject}\n\n"
    if "text" in parts:
        doc += f"{TEXT_MARK}\n{text.rstrip()}\n\n"
    if "html" in parts:
        doc += f"{HTML_MARK}\n{html.rstrip()}\n"
    return doc


def parse_edit(doc: str, parts: tuple[str, ...]) -> tuple[str, str | None, str | None]:
    """(subject, text or None, html or None) from an edited document."""
    from mailflow.errors import ConfigError
    head, text, html = doc, None, None
    if "html" in parts:
        head, sep, html = head.partition(HTML_MARK)
        if not sep:
            raise ConfigError("drafts edit: the HTML marker line was removed; nothing was saved")
        html = html.strip("\n") + "\n"
    if "text" in parts:
        head, sep, text = head.partition(TEXT_MARK)
        if not sep:
            raise ConfigError("drafts edit: the text marker line was removed; nothing was saved")
        text = text.strip("\n") + "\n"
    lines = [line for line in head.splitlines() if line.strip() and not line.startswith("#")]
    if len(lines) != 1 or not lines[0].startswith("Subject:"):
        raise ConfigError("drafts edit: expected one 'Subject: ...' line before the parts; "
                          "nothing was saved")
    return lines[0].removeprefix("Subject:").strip(), text, html


@drafts.command("edit")
@click.argument("ref", metavar="ID")
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
      EDITOR=nano mailflow drafts edit northwind-2026/support_offer
      mailflow drafts edit northwind-2026/support_offer --part text
    """
    from mailflow.desk.actions import apply_edit, find_message
    from mailflow.errors import StateError
    from mailflow.render.compose import build_message
    parts = ("text", "html") if part == "both" else (part,)
    state = app.store.load()
    before = find_message(state, ref)
    if not before.get("subject"):
        raise StateError(f"{before['key']} has not been drafted yet (see `mailflow plan`)")
    if before["state"] not in ("awaiting_approval", "approved", "blocked"):
        raise StateError(f"{before['key']} is {before['state'].replace('_', ' ')}; only unsent "
                         "drafts can be edited")
    # the editor runs without the lock: cron goes on meanwhile, and we check below that the
    # draft did not change under us
    before_html, before_text = app.store.body(before["body"])
    original = edit_document(before["subject"], before_text, before_html, parts)
    edited = click.edit(original, extension=".html" if part == "html" else ".txt",
                        require_save=True)
    if edited is None or edited == original:
        click.echo("no change")
        return
    subject, text, html = parse_edit(edited, parts)
    if text is None or text.strip() == before_text.strip():
        text = before_text
    if html is None or html.strip() == before_html.strip():
        html = before_html
    else:
        from mailflow.render.templates import inline_css
        html = inline_css(html)
    if (subject, text, html) == (before["subject"], before_text, before_html):
        click.echo("no change")
        return
    sender = app.loaded.config.sender
    build_message(subject=subject, html=html, text=text,
                  sender={"name": sender.name, "email": sender.email}, to=before["to"],
                  cc=before.get("cc") or [], message_id="<edit@mailflow>", date=app.now,
                  where=before["key"])
    with app.store.writer() as w:
        msg = w.state.messages[before["key"]]
        if any(msg.get(k) != before.get(k) for k in ("state", "subject", "body")):
            raise StateError(f"{msg['key']} changed while you were editing (now "
                             f"{msg['state'].replace('_', ' ')}); nothing was saved, edit again")
        apply_edit(w, msg, subject, html, text, app.user, app.now)
        w.save()
    if text != before_text and html == before_html:
        click.echo("note: only the text part changed; the HTML part (what most mail programs "
                   "show) is as before", err=True)
    elif html != before_html and text == before_text:
        click.echo("note: only the HTML part changed; the text part is as before", err=True)
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
            and (all_kinds or needs_action or eid or r.get("kind") in ("human", "unsubscribe")
                 or not r.get("trusted", True))]  # a flagged bounce is shown until accepted
    out = [dict(r) for r in rows]
    if as_json:
        echo_json(out)
        return
    if not rows:
        click.echo("No replies." if not needs_action else "No replies need you.")
        return
    views.echo_table(["id", "received", "from", "engagement", "stage", "kind", "intent", "says"],
                     [[r["id"], (r.get("received_at") or "")[:16], r.get("from"),
                       r.get("engagement"), r.get("stage"),
                       r.get("kind") + (" !" if r.get("needs_action") and not r.get("handled")
                                        else "") + ("" if r.get("trusted", True)
                                                    else " (flagged)"),
                       views.intent_cell(r.get("intent")),
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
    from mailflow.errors import NotFoundError
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
    if not r.get("trusted", True):
        click.echo(f"Trust:    not acted on: {r.get('distrust')} "
                   f"(`mailflow replies accept {rid}` acts on it)")
    elif r.get("accepted_by"):
        click.echo(f"Trust:    accepted by {r['accepted_by']} at {r.get('accepted_at')}")
    if r.get("intent"):
        click.echo(f"Intent:   {r['intent']['label']} - a suggestion; nothing was done")
    click.echo(f"Raw:      {r.get('raw')}")
    click.echo()
    click.echo(r.get("text") or "(no text)")
    if done:
        from mailflow.store import now_iso
        with app.store.writer() as w:
            w.record("reply.handled", at=app.now, engagement=r.get("engagement"),
                     replies={"key": rid, "set": {"handled": now_iso(app.now),
                                                  "handled_by": app.user}})
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
      mailflow replies show 4
      mailflow replies accept 4
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
