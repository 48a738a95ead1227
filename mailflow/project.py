"""Finding a consultant's project folder (like git finds a repo) and creating a new one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mailflow.errors import ConfigError, NoProjectError, StoreError

CONFIG_NAME = "mailflow.toml"
STATE_DIR = ".mailflow"

DEFAULT_CONFIG = """\
# mailflow project settings. Secrets never go in this file: use password_env (the name of an
# environment variable) or password_command (a command that prints the password).

time_zone = "{time_zone}"      # default for engagements that do not name their own
locale = "{locale}"{pad}# dates, money and language (en, fr, de, es) of the emails
# approver = "dana"            # who approves drafts; defaults to $USER

[sender]
name = "{sender_name}"
email = "{sender_email}"
# reply_to_token = true        # Reply-To: you+token@domain, where your mailbox supports it

[smtp]
host = "127.0.0.1"             # `mailflow sink` listens here to try things safely
port = 1025
security = "none"              # tls (port 465) | starttls (587) | none (loopback only)
# username = "{sender_email}"
# password_env = "MAILFLOW_SMTP_PASSWORD"
# password_command = "pass show mail/smtp"
# oauth2_token_command = "oauth2-token --provider google"

# [imap]                       # where clients' replies arrive
# host = "imap.example.com"
# security = "tls"
# username = "{sender_email}"
# password_env = "MAILFLOW_IMAP_PASSWORD"
# folders = ["INBOX"]
# sent_folder = "Sent"         # "" to turn off copies (Gmail keeps its own)
# authserv_id = "mx.example.com" # your server's name in Authentication-Results headers:
#                              # mail it marks as failing DKIM/SPF/DMARC is never acted on
# trust_contact_domains = false  # true: act on anyone at a contact's domain, not only them

[window]                       # when emails may go out, in each client's local time
days = "mon-fri"
start = "09:00"
end = "17:00"

# [holidays]                   # skip public holidays (country code, optional region)
# country = "US"
# subdiv = "NY"
# extra = ["2026-12-24", "2026-12-31"]

# [digest]                     # on by default: an email listing what waits for you;
# enabled = true               # reply "approve 1 3"; false: no digest (cron's stderr only)
# to = "{sender_email}"        # default: the sender's own address (the mailbox [imap] reads)
# every = "daily"              # daily | weekly | hourly | "N hours"; at once when urgent
# at = "08:30"                 # in your own time zone (time_zone above, or [digest] time_zone)
# valid_for = "7 days"         # replies to an older digest are refused

[schedule]
review_days = 5                # drafts are prepared this many days before they are due
grace = "2 business days"      # later than this, a message waits for you instead of going out
per_minute = 20                # throttle, well under provider limits
per_day = 400
retry_lifetime_hours = 72      # give up on a temporarily refused message after this long
"""


@dataclass(frozen=True)
class Project:
    """The folders and files of one consultant's project."""

    root: Path

    @property
    def config_path(self) -> Path:
        """mailflow.toml."""
        return self.root / CONFIG_NAME

    @property
    def rules_dir(self) -> Path:
        """The project's rule files."""
        return self.root / "rules"

    @property
    def templates_dir(self) -> Path:
        """The project's email templates."""
        return self.root / "templates" / "emails"

    @property
    def engagements_dir(self) -> Path:
        """Where engagement files are kept by convention."""
        return self.root / "engagements"

    @property
    def state_dir(self) -> Path:
        """The database, journal, event log, raw replies and lock."""
        return self.root / STATE_DIR


def find_project(explicit: str | os.PathLike | None = None, cwd: Path | None = None) -> Project:
    """--project, else $MAILFLOW_PROJECT, else the nearest parent folder holding mailflow.toml."""
    given = explicit or os.environ.get("MAILFLOW_PROJECT")
    if given:
        root = Path(given).expanduser().resolve()
        if not (root / CONFIG_NAME).is_file():
            raise NoProjectError(f"{root}: not a mailflow project (no {CONFIG_NAME}); "
                              "create one with `mailflow init DIR`")
        return Project(root)
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return Project(folder)
    raise NoProjectError(f"no {CONFIG_NAME} in {here} or any parent folder; use --project DIR, "
                      "set MAILFLOW_PROJECT, or create one with `mailflow init DIR`")


def playbook_dir() -> Path:
    """The default playbook shipped inside the package (rules, templates, example engagement)."""
    from importlib import resources  # (a tenth of `--help`'s start-up, needed by few)
    return Path(str(resources.files("mailflow") / "playbook"))


PLACEHOLDER_SENDER = ("Your Name", "you@example.com")


def check_identity(sender_name: str, sender_email: str, time_zone: str) -> None:
    """A ConfigError naming the option when init's name, email or time zone is unusable.

    Checked before anything is written: a mistyped zone would make every later command fail.
    """
    from mailflow.config.settings import check_address
    from mailflow.config.tomlfile import Section
    from mailflow.timing import load_zone
    for option, part in (("--name", sender_name), ("--email", sender_email),
                         ("--time-zone", time_zone)):
        if not part.strip():
            raise ConfigError(f"init: {option}: must not be empty")
        if '"' in part or "\\" in part or not part.isprintable():
            raise ConfigError(f"init: {option}: {part!r} may not contain quotes, backslashes "
                              "or line breaks")
    try:
        check_address(Section({}, Path("init")), "--email", sender_email)
    except ConfigError:
        raise ConfigError(f"init: --email: not a valid email address: {sender_email!r}") from None
    try:
        load_zone(time_zone)
    except ValueError:
        import difflib
        from zoneinfo import available_timezones
        close = difflib.get_close_matches(time_zone, sorted(available_timezones()), n=1)
        hint = f" (did you mean {close[0]}?)" if close else " (an IANA name like Europe/London)"
        raise ConfigError(f"init: --time-zone: unknown time zone {time_zone!r}{hint}") from None


def init_locale(language: str | None, locale: str | None) -> str:
    """The project's default locale from init's --language and --locale, or a ConfigError
    naming the option (checked before anything is written, like the identity)."""
    from mailflow.render.locale import LANGUAGE_LOCALES, language_of, parse_locale
    try:
        chosen = parse_locale(locale or LANGUAGE_LOCALES.get(language or "en", "en_US"))
    except ValueError as err:
        raise ConfigError(f"init: --locale: {err}") from err
    if language and language_of(chosen) != language:
        raise ConfigError(f"init: --locale {chosen} is not in --language {language}")
    return chosen


def _sign_example(path: Path, sender_name: str, sender_email: str) -> None:
    """Make the consultant the example engagement's offboarding lead (comments kept)."""
    import tomlkit
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    lead = doc["consultant"]
    if (lead["name"], lead["email"]) == (sender_name, sender_email):
        return
    lead["name"], lead["email"] = sender_name, sender_email
    for key in ("title", "phone"):  # the playbook's own lead's: not the consultant's
        if key in lead:
            del lead[key]
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")


def init_project(dest: Path, *, sender_name: str = PLACEHOLDER_SENDER[0],
                 sender_email: str = PLACEHOLDER_SENDER[1], time_zone: str = "UTC",
                 language: str | None = None, locale: str | None = None,
                 force: bool = False) -> Project:
    """Create a project folder from the default playbook, signed by the consultant, in a
    default language and locale."""
    locale = init_locale(language, locale)
    dest = dest.expanduser().resolve()
    if (dest / CONFIG_NAME).exists() and not force:
        raise ConfigError(f"{dest / CONFIG_NAME}: already exists (use --force to overwrite "
                          "the playbook files; your state is never touched)")
    check_identity(sender_name, sender_email, time_zone)
    try:
        _copy_playbook(dest, sender_name, sender_email, time_zone, locale)
    except OSError as err:  # a read-only or full disk, a parent that cannot hold folders
        where = err.filename or dest
        raise StoreError(f"{where}: cannot create the project: "
                         f"{err.strerror or err}") from None
    return Project(dest)


def _copy_playbook(dest: Path, sender_name: str, sender_email: str, time_zone: str,
                   locale: str) -> None:
    """The playbook's files into `dest`, signed by the consultant."""
    import shutil
    source = playbook_dir()
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "rules", dest / "rules", dirs_exist_ok=True)
    for folder in ("emails", "docs"):
        shutil.copytree(source / "templates" / folder, dest / "templates" / folder,
                        dirs_exist_ok=True)
    (dest / "engagements").mkdir(exist_ok=True)
    example = dest / "engagements" / "example.toml"
    shutil.copy2(source / "engagements" / "example.toml", example)
    if (sender_name, sender_email) != PLACEHOLDER_SENDER:
        _sign_example(example, sender_name, sender_email)
    (dest / CONFIG_NAME).write_text(DEFAULT_CONFIG.format(
        sender_name=sender_name, sender_email=sender_email, time_zone=time_zone,
        locale=locale, pad=" " * max(1, 13 - len(locale))),
        encoding="utf-8")
    state = dest / STATE_DIR
    state.mkdir(mode=0o700, exist_ok=True)
    (dest / ".gitignore").write_text(f"{STATE_DIR}/\n", encoding="utf-8")
