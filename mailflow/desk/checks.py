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
from mailflow.config.settings import Config, Identity, load_config
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
    warnings: list[str] = field(default_factory=list)  # likely mistakes that do not block
    unreachable: int = 0  # problems that are a server not reached or refusing the login

    @property
    def exit_code(self) -> int:
        """0 all good; 6 when the only problems are servers not reached; else 2."""
        if not self.problems:
            return 0
        return 6 if self.unreachable == len(self.problems) else 2

    def cannot_reach(self, err: MailflowError) -> None:
        """A server that could not be reached or refused the login (exit 6 if alone)."""
        if str(err) not in self.problems:
            self.unreachable += 1
        self.problem(str(err))

    def problem(self, text: str) -> None:
        """Record a problem (once: the same line twice says nothing new)."""
        if text not in self.problems:
            self.problems.append(text)


def run_checks(project: Project, connect: bool, now: dt.datetime
               ) -> tuple[list[str], list[str]]:
    """Validate a project's config, rules, templates and engagements; optionally log in.

    Returns (problems, notes); the project is fine when problems is empty.
    """
    found = check_project(project, connect, now)
    return found.problems, found.notes


def check_project(project: Project, connect: bool, now: dt.datetime) -> Findings:
    """Everything `mailflow check` finds: problems, warnings, notes, and its exit code."""
    from mailflow.desk.agreement import compare_files_and_store
    found = Findings()
    config = _check_config(project, found)
    window = _window(config)
    sequences = _check_rules(project, window, found)
    renderer = _check_templates(project, found)
    if config is not None:
        found.warnings += placeholder_warnings(config)
    if config is not None and sequences:
        loaded = Loaded(project, config, sequences, window)
        files = _file_engagements(project, config, found)
        stored = _stored_engagements(project, found)
        # one engagement is one engagement: a stored copy of a file checked here is not
        # counted or rendered twice; where the two disagree, that is said
        duplicates = compare_files_and_store(loaded, files, stored, found)
        engagements = files + [(w, r) for w, r in stored if r["id"] not in duplicates]
        rendered = 0
        for where, record in engagements:
            rendered += _check_engagement(loaded, renderer, where, record, now, found)
            found.warnings += [f"{where}: {w}" for w in placeholder_addresses(record)]
        found.notes.append(f"checked {len(sequences)} sequence(s), {len(engagements)} "
                           f"engagement(s), rendered {rendered} email(s)")
    if connect:
        if config is None:
            found.problem("--connect: skipped, mailflow.toml has problems")
        else:
            several = len(config.identities) > 1
            for ident in config.identities:
                if several:
                    found.notes.append(f"{ident.label}:")
                check_smtp(config, found, ident)
                check_imap(config, found, ident)
    return found


# RFC 2606 names that never receive mail: a sender or recipient there is a leftover
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")


def _reserved(address: str) -> bool:
    domain = address.rpartition("@")[2].lower()
    return any(domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS)


def placeholder_warnings(config: Config) -> list[str]:
    """The sender still as `mailflow init` left it without --name/--email."""
    from mailflow.project import PLACEHOLDER_SENDER
    s = config.sender
    out = []
    if s.name == PLACEHOLDER_SENDER[0]:
        out.append(f"{config.path}: sender.name: still the placeholder {s.name!r}")
    if _reserved(s.email):
        out.append(f"{config.path}: sender.email: {s.email} is a placeholder address "
                   "(example.com never receives mail); set your own")
    return out


def placeholder_addresses(record: dict) -> list[str]:
    """Addresses of an engagement at example.com/.net/.org (never delivered)."""
    people = [("consultant.email", record.get("consultant") or {})]
    for group in ("to", "cc"):
        people += [(f"contacts.{group}[{i}].email", p)
                   for i, p in enumerate((record.get("contacts") or {}).get(group) or [])]
    return [f"{key}: {p['email']} is a placeholder address (example.com never receives mail)"
            for key, p in people if p.get("email") and _reserved(p["email"])]


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
        stage_problems: list[str] = []
        try:
            # every bad stage of a file is listed, not only the first
            seq = load_sequence(path, window, project.templates_dir, problems=stage_problems)
        except ConfigError as err:
            found.problem(str(err))
            continue
        for problem in stage_problems:
            found.problem(problem)
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
    # stage folders at the top, and in each language's folder (templates/emails/fr/...)
    languages = set(renderer.languages())
    stages = [p for p in root.iterdir() if p.is_dir() and p.name not in languages]
    for language in languages:
        stages += [p for p in (root / language).iterdir() if p.is_dir()]
    for folder in sorted(stages):
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
            if e.get("status") in ("active", "paused") and not e.get("archived")]


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
    ident = _check_identity(loaded, where, record, found)
    if renderer is None:
        return 0
    try:
        hydrated = hydrate(record)
        # conditions see the checklist's facts (invoices_open, ...), as the planner does
        from mailflow.engine import checklist
        hydrated.update(checklist.planning_facts(hydrated))
        hydrated["invoices"] = checklist.invoices_as_marked(hydrated)
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
                                 template, local, seen, found, ident)
        sent[stage.id] = local
    return count


def _render_one(loaded: Loaded, renderer: Any, where: str, hydrated: dict, record: dict,
                stage: Any, step: int, template: str, now_local: dt.datetime,
                sent: dict[str, dt.datetime], found: Findings, sender: Identity) -> int:
    from mailflow.render.compose import build_message
    from mailflow.render.context import template_context
    label = f"{where}: stage {stage.id}" + (f" reminder {step}" if step else "") + \
        f" (template {template})"
    to = record["contacts"]["to"]
    try:
        context = template_context(
            hydrated, sender_name=sender.name, sender_email=sender.email, stage_id=stage.id,
            stage_name=stage.name, step=step, now_local=now_local, sent=sent, recipient=to[0],
            locale=record.get("locale") or loaded.config.locale)
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


def _check_identity(loaded: Loaded, where: str, record: dict, found: Findings) -> Identity:
    """The identity the engagement's mail goes out as, and whether its From matches the
    signature (the lead's name and address in the templates): they must never differ."""
    config = loaded.config
    try:
        ident = loaded.identity_for(record)
    except ConfigError as err:
        prefix = f"engagement {record.get('id')}: "
        found.problem(f"{where}: {str(err).removeprefix(prefix)}")
        return config.identities[0]  # the templates are still checked, as the sender
    from mailflow.project import PLACEHOLDER_SENDER
    if (ident.name, ident.email) == PLACEHOLDER_SENDER:
        return ident  # the sender is still init's placeholder: a warning says so already
    lead = record.get("consultant") or {}
    name, email = " ".join(str(lead.get("name") or "").split()), str(lead.get("email") or "")
    if (name.casefold(), email.strip().lower()) != (" ".join(ident.name.split()).casefold(),
                                                    ident.email.lower()):
        source = "[sender]" if not ident.key else f"the [[identity]] of {ident.email}"
        found.problem(f"{where}: consultant: the emails are signed {name} <{email}> but go out "
                      f"From {ident.name} <{ident.email}> ({config.path}: {source}); make "
                      "them the same, or add an [[identity]] for the lead")
    return ident


def _without_prefix(text: str, where: str) -> str:
    return text.removeprefix(f"{where}: ")


# -- servers -------------------------------------------------------------------------------

def check_smtp(config: Config, found: Findings, ident: Identity | None = None) -> None:
    """Log in to the SMTP server (no MAIL FROM: nothing is sent) and say what it offers."""
    cfg = ident.smtp if ident is not None else config.smtp
    if cfg is None:
        who = f" ({ident.label})" if ident is not None and ident.key else ""
        found.problem(f"{config.path}: smtp: not configured{who}; nothing can be sent")
        return
    from mailflow.transport.smtp import SmtpTransport
    try:
        with SmtpTransport(cfg) as transport:
            features = transport.probe()
    except MailflowError as err:
        found.cannot_reach(err)
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


def check_imap(config: Config, found: Findings, ident: Identity | None = None) -> None:
    """Log in to the IMAP server, say what it offers, and check the watched folders exist."""
    cfg = ident.imap if ident is not None else config.imap
    if cfg is None:
        who = f" ({ident.label})" if ident is not None and ident.key else ""
        found.notes.append(f"{config.path}: imap: not configured{who}; replies are not read "
                           "(sequences only stop when you record replies yourself: "
                           "`mailflow replies add ID FILE.eml`)")
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
        found.cannot_reach(err)
        return
    if SUBADDRESSING not in found.notes:
        found.notes.append(SUBADDRESSING)

