"""`mailflow check`: every problem of a project at once, each on one line with file and key.

Unlike loading a project for a run (which stops at the first bad file), a check goes on after
each problem: one bad rule file must not hide a typo in a template or an engagement. With
`connect`, it also logs in to the SMTP and IMAP servers (sending nothing) and says what they
offer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from mailflow import timing
from mailflow.config.loading import Loaded, config_problems
from mailflow.config.rules import Sequence, load_sequence
from mailflow.config.settings import Config, load_config
from mailflow.desk.actions import missing_dates
from mailflow.errors import ConfigError, MailflowError, RenderError
from mailflow.project import Project
from mailflow.render.templates import TEMPLATE_FILES

# IMAP capabilities worth naming: what mailflow uses or would use when present
IMAP_CAPS = ("IDLE", "CONDSTORE", "QRESYNC", "UIDPLUS", "MOVE", "SPECIAL-USE", "ENABLE")
SUBADDRESSING = ("sub-addressing (you+tag@domain, for reply_to_token) cannot be detected over "
                 "IMAP or SMTP: send yourself a message at a +tag address to be sure")


@dataclass
class Findings:
    """Problems (each makes the check fail) and notes (worth saying, not failures)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        """Record a problem (once: the same line twice says nothing new)."""
        if text not in self.problems:
            self.problems.append(text)


def run_checks(project: Project, connect: bool, now: dt.datetime
               ) -> tuple[list[str], list[str]]:
    """Validate a project's config, rules, templates and engagements; optionally log in.

    Returns (problems, notes); the project is fine when problems is empty.
    """
    found = Findings()
    config = _check_config(project, found)
    window = _window(config)
    sequences = _check_rules(project, window, found)
    renderer = _check_templates(project, found)
    if config is not None and sequences:
        loaded = Loaded(project, config, sequences, window)
        engagements = _file_engagements(project, config, found) + _stored_engagements(
            project, found)
        rendered = 0
        for where, record in engagements:
            rendered += _check_engagement(loaded, renderer, where, record, now, found)
        found.notes.append(f"checked {len(sequences)} sequence(s), {len(engagements)} "
                           f"engagement(s), rendered {rendered} email(s)")
    if connect:
        if config is None:
            found.problem("--connect: skipped, mailflow.toml has problems")
        else:
            check_smtp(config, found)
            check_imap(config, found)
    return found.problems, found.notes


# -- files ---------------------------------------------------------------------------------

def _check_config(project: Project, found: Findings) -> Config | None:
    try:
        config = load_config(project.config_path)
    except ConfigError as err:
        found.problem(str(err))
        return None
    problems = config_problems(config)
    for problem in problems:
        found.problem(problem)
    if config.imap is not None and not config.imap.authserv_id:
        found.notes.append(f"{config.path}: imap.authserv_id is not set: replies are trusted by "
                           "their sender's address alone; set it to the first word of the "
                           "Authentication-Results headers your mail server adds")
    ok = not problems
    return config if ok else None


def _window(config: Config | None) -> timing.Window:
    # rule files are checked even when mailflow.toml is broken: against the default window
    try:
        return timing.parse_window((config.window or None) if config else None)
    except ValueError:
        return timing.parse_window(None)


def _check_rules(project: Project, window: timing.Window, found: Findings
                 ) -> dict[str, Sequence]:
    files = sorted(project.rules_dir.glob("*.toml"))
    if not files:
        found.problem(f"{project.rules_dir}: no rule files (*.toml)")
    sequences: dict[str, Sequence] = {}
    for path in files:
        try:
            seq = load_sequence(path, window, project.templates_dir)
        except ConfigError as err:
            found.problem(str(err))
            continue
        if seq.name in sequences:
            found.problem(f"{path}: name: sequence {seq.name!r} is also defined in "
                          f"{sequences[seq.name].path}")
            continue
        sequences[seq.name] = seq
    return sequences


def _check_templates(project: Project, found: Findings) -> Any:
    """Every template folder has its three files and every file compiles; the renderer."""
    from jinja2 import TemplateError, TemplateSyntaxError

    from mailflow.render.templates import Renderer
    root = project.templates_dir
    if not root.is_dir():
        found.problem(f"{root}: the templates folder is missing")
        return None
    renderer = Renderer(root)
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        missing = [f for f in TEMPLATE_FILES if not (folder / f).is_file()]
        if missing:
            found.problem(f"{folder}: missing {', '.join(missing)}")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        if path.suffix not in (".txt", ".html"):
            continue
        try:
            renderer.env.get_template(name)
        except TemplateSyntaxError as err:
            found.problem(f"{path}: line {err.lineno}: {err.message}")
        except (TemplateError, UnicodeDecodeError) as err:
            found.problem(f"{path}: {err}")
        except RenderError as err:  # e.g. a symlink out of the templates folder
            found.problem(f"{path}: {err}")
    return renderer


def _file_engagements(project: Project, config: Config, found: Findings
                      ) -> list[tuple[str, dict]]:
    from mailflow.config.engagements import load_engagement_file
    out = []
    for path in sorted(project.engagements_dir.glob("*.toml")):
        try:
            out.append((str(path), load_engagement_file(path, config.time_zone)))
        except ConfigError as err:
            found.problem(str(err))
    return out


def _stored_engagements(project: Project, found: Findings) -> list[tuple[str, dict]]:
    from mailflow.store import Store
    try:
        state = Store(project.state_dir).load()
    except MailflowError as err:
        found.problem(str(err))
        return []
    return [(f"engagement {e['id']} (stored)", e) for e in state.engagements.values()
            if e.get("status") in ("active", "paused")]


# -- engagements against their sequence ----------------------------------------------------

def _check_engagement(loaded: Loaded, renderer: Any, where: str, record: dict,
                      now: dt.datetime, found: Findings) -> int:
    """Dates the stages anchor on, conditions, and every stage and reminder rendered."""
    from mailflow.config.engagements import hydrate
    try:
        seq = loaded.sequence_for(record)
    except ConfigError:
        found.problem(f"{where}: sequence: {record.get('sequence')!r} is not defined in "
                      f"{loaded.project.rules_dir} (have: {', '.join(loaded.sequences)})")
        return 0
    for missing in missing_dates(seq, record):
        found.problem(f"{where}: {missing}")
    if renderer is None:
        return 0
    try:
        hydrated = hydrate(record)
        zone = loaded.context_for(record).zone
    except (ValueError, KeyError, TypeError) as err:
        found.problem(f"{where}: {err}")
        return 0
    count = 0
    sent: dict[str, dt.datetime] = {}
    for stage in seq.stages:
        try:
            applies = stage.applies(hydrated)
        except Exception as err:  # noqa: BLE001 - a condition failing on this data is a finding
            found.problem(f"{where}: {seq.path.name}: stage {stage.id}: condition "
                          f"{stage.when!r} failed: {err}")
            continue
        if not applies:
            continue  # never sent for this engagement, so never rendered for it
        # render as the email would be: the earlier stages (and this one, for reminders) sent
        templates = [(0, stage.template)]
        step = 0
        for reminder in stage.reminders:
            for _ in range(reminder.max):
                step += 1
                templates.append((step, reminder.template))
        local = now.astimezone(zone)
        for step, template in templates:
            seen = {**sent, stage.id: local} if step else dict(sent)
            count += _render_one(loaded, renderer, where, hydrated, record, stage, step,
                                 template, local, seen, found)
        sent[stage.id] = local
    return count


def _render_one(loaded: Loaded, renderer: Any, where: str, hydrated: dict, record: dict,
                stage: Any, step: int, template: str, now_local: dt.datetime,
                sent: dict[str, dt.datetime], found: Findings) -> int:
    from mailflow.render.compose import build_message
    from mailflow.render.context import template_context
    label = f"{where}: stage {stage.id}" + (f" reminder {step}" if step else "") + \
        f" (template {template})"
    to = record["contacts"]["to"]
    sender = loaded.config.sender
    try:
        context = template_context(
            hydrated, sender_name=sender.name, sender_email=sender.email, stage_id=stage.id,
            stage_name=stage.name, step=step, now_local=now_local, sent=sent, recipient=to[0])
        rendered = renderer.render(template, context)
        build_message(subject=rendered.subject, html=rendered.html, text=rendered.text,
                      sender={"name": sender.name, "email": sender.email}, to=to,
                      cc=record["contacts"].get("cc", []), message_id="<check@mailflow>",
                      date=now_local, where=where)
    except MailflowError as err:
        found.problem(f"{label}: {_without_prefix(str(err), where)}")
        return 0
    if not rendered.text.strip():
        found.problem(f"{label}: the plain-text part is empty")
    return 1


def _without_prefix(text: str, where: str) -> str:
    return text.removeprefix(f"{where}: ")


# -- servers -------------------------------------------------------------------------------

def check_smtp(config: Config, found: Findings) -> None:
    """Log in to the SMTP server (no MAIL FROM: nothing is sent) and say what it offers."""
    cfg = config.smtp
    if cfg is None:
        found.problem(f"{config.path}: smtp: not configured; nothing can be sent")
        return
    from mailflow.transport.smtp import SmtpTransport
    try:
        with SmtpTransport(cfg) as transport:
            features = transport.probe()
    except MailflowError as err:
        found.problem(str(err))
        return
    login = (f"logged in as {cfg.credentials.username}" if cfg.credentials.username
             else "no username configured, so no login")
    security = {"tls": "implicit TLS", "starttls": "STARTTLS",
                "none": "no encryption"}[cfg.security]
    found.notes.append(f"smtp {cfg.address}: connected ({security}), {login}")
    offers = []
    if "starttls" in features:
        offers.append("STARTTLS")
    elif cfg.security == "starttls":
        offers.append("STARTTLS (in use)")
    auth = features.get("auth", "").split()
    offers.append("AUTH " + " ".join(auth) if auth else "no AUTH offered")
    if "size" in features:
        size = features["size"].strip()
        offers.append(f"SIZE {_mib(size)}" if size.isdigit() and int(size) else "SIZE")
    offers += [k.upper() for k in ("8bitmime", "smtputf8", "pipelining") if k in features]
    found.notes.append(f"smtp {cfg.address}: offers {', '.join(offers)}")
    if cfg.security == "none" and "starttls" in features and not cfg.is_loopback:
        found.notes.append(f"smtp {cfg.address}: the server offers STARTTLS; set "
                           "security = \"starttls\" in mailflow.toml")
    found.notes.append(SUBADDRESSING)


def _mib(size: str) -> str:
    return f"{int(size) / 1024 / 1024:.0f} MiB max"


def check_imap(config: Config, found: Findings) -> None:
    """Log in to the IMAP server, say what it offers, and check the watched folders exist."""
    cfg = config.imap
    if cfg is None:
        found.notes.append(f"{config.path}: imap: not configured; replies are not read "
                           "(sequences only stop when you record replies yourself)")
        return
    from mailflow.transport.imap import Mailbox
    try:
        with Mailbox(cfg) as mb:
            caps = [c.upper() for c in mb.capabilities()]
            found.notes.append(f"imap {cfg.address}: connected ("
                               f"{'implicit TLS' if cfg.security == 'tls' else cfg.security}), "
                               + (f"logged in as {cfg.credentials.username}"
                                  if cfg.credentials.username else "no username, no login"))
            have = [c for c in IMAP_CAPS if c in caps]
            missing = [c for c in IMAP_CAPS[:5] if c not in caps]
            auth = [c for c in caps if c.startswith("AUTH=")]
            found.notes.append(f"imap {cfg.address}: offers {' '.join(have + auth) or 'nothing'}"
                               f" of interest" + (f"; lacks {' '.join(missing)}"
                                                   if missing else ""))
            for folder in cfg.folders:
                try:
                    mb.folder_state(folder)
                except MailflowError as err:
                    found.problem(f"{config.path}: imap.folders: {err}")
            if cfg.sent_folder:
                try:
                    mb.folder_state(cfg.sent_folder)
                except MailflowError:
                    found.notes.append(f"imap {cfg.address}: sent folder {cfg.sent_folder!r} "
                                       "does not exist yet; it is created with the first copy")
    except MailflowError as err:
        found.problem(str(err))
        return
    if SUBADDRESSING not in found.notes:
        found.notes.append(SUBADDRESSING)

