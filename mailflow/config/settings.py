"""mailflow.toml: validated once into frozen objects. Secrets are never read from this file."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from mailflow.addresses import MAX_NAME, split_address
from mailflow.config.tomlfile import Section, read_toml

SECURITY_MODES = ("tls", "starttls", "none")
# [schedule] settings and their defaults; the values are checked in loading.check_schedule
SCHEDULE_DEFAULTS = {"review_days": 5, "grace": "2 business days", "per_minute": 20,
                     "per_day": 400, "retry_lifetime_hours": 72,
                     # messages whose `sending` marks share one fsync (README: Never twice)
                     "send_batch": 32}


@dataclass(frozen=True)
class Credentials:
    """Where a server's secret comes from: an env var, a command, or an OAuth2 token command."""

    username: str | None = None
    password_env: str | None = None
    password_command: str | None = None
    oauth2_token_command: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    """Connection settings shared by SMTP and IMAP."""

    host: str
    port: int
    security: str  # tls | starttls | none
    credentials: Credentials = field(default_factory=Credentials)
    allow_insecure: bool = False
    timeout: float = 30.0
    ca_file: str | None = None  # extra CA bundle (tests, private CAs); system CAs otherwise

    @property
    def address(self) -> str:
        """host:port, the way errors name a server."""
        return f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """True when the server is on this machine (plaintext is acceptable there)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class ImapConfig(ServerConfig):
    """IMAP: the folders to watch and where copies of sent mail go."""

    folders: tuple[str, ...] = ("INBOX",)
    sent_folder: str = "Sent"
    # the authserv-id your own mail server writes in Authentication-Results; only its
    # verdicts count (anyone can put such a header in a message they send)
    authserv_id: str | None = None
    trust_contact_domains: bool = False  # act on anyone at a contact's domain, not only them


@dataclass(frozen=True)
class DigestConfig:
    """[digest]: the email that lists what waits for the consultant (issue 13)."""

    enabled: bool = True  # on by default; [digest] enabled = false turns it off
    to: str | None = None  # default: the sender's own address
    every: tuple[int, bool] = (24, False)  # (hours, weekly-ish: whole days) see digest_every
    at: str = "08:30"  # local time of the regular digest, in the consultant's zone
    valid_for_days: int = 7  # replies to an older digest are refused
    time_zone: str | None = None  # the consultant's zone; default: the project's time_zone


@dataclass(frozen=True)
class Sender:
    """Who the emails are from."""

    name: str
    email: str
    reply_to_token: bool = False  # use name+token@domain as Reply-To (needs sub-addressing)

    @property
    def domain(self) -> str:
        """The sender's domain, used for Message-IDs."""
        return self.email.rpartition("@")[2]


@dataclass(frozen=True)
class Identity:
    """One person mail goes out as (issue 15): their address, account, throttle and mailbox."""

    name: str
    email: str
    smtp: ServerConfig | None
    imap: ImapConfig | None
    reply_to_token: bool = False
    per_minute: int | None = None  # None: the [schedule] limit
    per_day: int | None = None
    # "" for the project's own sender: its IMAP cursors keep their bare folder names, so a
    # project that adds an [[identity]] later reads its mailbox on from where it was
    key: str = ""

    @property
    def domain(self) -> str:
        """The identity's domain, used for the Message-IDs of its messages."""
        return self.email.rpartition("@")[2]

    @property
    def label(self) -> str:
        """How a line names the identity: `identity lee@… (Lee Park)`."""
        return f"identity {self.email} ({self.name})"

    def cursor_key(self, folder: str) -> str:
        """The key of a folder's IMAP cursor: two accounts' INBOX must not collide."""
        return f"{self.key}:{folder}" if self.key else folder


@dataclass(frozen=True)
class Config:
    """The whole of mailflow.toml."""

    path: Path
    sender: Sender
    smtp: ServerConfig | None
    imap: ImapConfig | None
    time_zone: str
    window: dict  # raw [window] table, interpreted by mailflow.timing
    holidays: dict  # raw [holidays] table, interpreted by mailflow.timing
    schedule: dict  # raw [schedule] table: review_days, grace, throttle
    approver: str | None = None
    locale: str = "en_US"  # engagements without their own: dates, money and the playbook language
    digest: DigestConfig = field(default_factory=DigestConfig)
    # every sender identity; the project's [sender] with [smtp]/[imap] is the first unless
    # [[identity]] tables name every one (see load_config)
    identities: tuple[Identity, ...] = ()
    explicit_identities: bool = False  # [[identity]] is used: every lead needs one
    # [state] archive_after_days: an engagement ended this long ago moves out of the hot state
    archive_after_days: int = 30

    def identity(self, email: str) -> Identity | None:
        """The identity sending as this address (case-insensitive), or None."""
        wanted = email.strip().lower()
        return next((i for i in self.identities if i.email.lower() == wanted), None)


def load_config(path: Path) -> Config:
    """Read and validate mailflow.toml."""
    root = Section(read_toml(path), path)
    root.check_keys(["sender", "smtp", "imap", "time_zone", "locale", "window", "holidays",
                     "schedule", "approver", "digest", "identity", "state"])
    listed = _identities(root)
    sender_s = root.section("sender", required=not listed)
    smtp_s = root.section("smtp")
    imap_s = root.section("imap")
    smtp = _server(smtp_s, ServerConfig, default_ports=SMTP_PORTS) if smtp_s else None
    imap = _server(imap_s, ImapConfig, default_ports=IMAP_PORTS) if imap_s else None
    if sender_s is not None:
        sender_s.check_keys(["name", "email", "reply_to_token"])
        sender = Sender(
            name=check_display_name(sender_s, "name", sender_s.text("name", required=True)),
            email=check_address(sender_s, "email", sender_s.text("email", required=True)),
            reply_to_token=sender_s.get("reply_to_token", bool, False),
        )
    else:  # the first [[identity]] is the consultant the digest goes to and from
        sender = Sender(listed[0].name, listed[0].email, listed[0].reply_to_token)
    own = next((i for i in listed if i.email.lower() == sender.email.lower()), None)
    if own is not None and (smtp_s or imap_s):
        raise root.error("smtp" if smtp_s else "imap",
                         f"{sender.email} has an [[identity]] with its own servers; move "
                         f"[{'smtp' if smtp_s else 'imap'}] into it (or drop that identity)")
    if own is None:  # [sender] with [smtp]/[imap]: the one-identity form, and the first one
        listed.insert(0, Identity(sender.name, sender.email, smtp, imap, sender.reply_to_token))
    else:  # the project's own account is its identity's: the digest goes through it
        smtp, imap = own.smtp, own.imap
        listed[listed.index(own)] = _replace(own, key="")
    schedule_s = root.section("schedule")
    if schedule_s is not None:  # the values are checked with their defaults in loading.py
        schedule_s.check_keys(SCHEDULE_DEFAULTS)  # names typos: "did you mean 'per_day'?"
    return Config(
        path=path,
        sender=sender,
        smtp=smtp,
        imap=imap,
        time_zone=root.text("time_zone", "UTC") or "UTC",
        window=dict(root.get("window", dict, {})),
        holidays=dict(root.get("holidays", dict, {})),
        schedule=dict(root.get("schedule", dict, {})),
        approver=root.text("approver"),
        locale=_locale(root),
        digest=_digest(root.section("digest")),
        identities=tuple(listed),
        explicit_identities=root.has("identity"),
        archive_after_days=_archive_after_days(root.section("state")),
    )


def _archive_after_days(s: Section | None) -> int:
    """[state] archive_after_days: a whole number of days, 0 or more (default 30)."""
    if s is None:
        return 30
    s.check_keys(["archive_after_days"])
    days = s.get("archive_after_days", int, 30)
    if days < 0:
        raise s.error("archive_after_days", f"expected a number of days, 0 or more, got {days}")
    return days


SMTP_PORTS = {"tls": 465, "starttls": 587, "none": 25}
IMAP_PORTS = {"tls": 993, "starttls": 143, "none": 143}
_IDENTITY_KEYS = ["name", "email", "reply_to_token", "smtp", "imap", "per_minute", "per_day"]


def _identities(root: Section) -> list[Identity]:
    """The [[identity]] tables, each checked; an address may have one identity only."""
    if not root.has("identity"):
        return []
    sections = root.sections("identity")
    if not sections:
        raise root.error("identity", "expected [[identity]] tables (name, email, smtp, ...)")
    out: list[Identity] = []
    for s in sections:
        s.check_keys(_IDENTITY_KEYS)
        email = check_address(s, "email", s.text("email", required=True))
        if any(i.email.lower() == email.lower() for i in out):
            raise s.error("email", f"{email} has an [[identity]] already")
        limits = {}
        for key in ("per_minute", "per_day"):
            value = s.get(key, int, -1)
            if s.has(key) and (isinstance(value, bool) or value < 0):
                raise s.error(key, f"expected a whole number >= 0, got {value!r}")
            limits[key] = value if s.has(key) else None
        smtp_s, imap_s = s.section("smtp"), s.section("imap")
        out.append(Identity(
            name=check_display_name(s, "name", s.text("name", required=True)),
            email=email,
            smtp=_server(smtp_s, ServerConfig, default_ports=SMTP_PORTS) if smtp_s else None,
            imap=_server(imap_s, ImapConfig, default_ports=IMAP_PORTS) if imap_s else None,
            reply_to_token=s.get("reply_to_token", bool, False),
            key=email.lower(), **limits))
    return out


def _replace(identity: Identity, **changes: object) -> Identity:
    from dataclasses import replace
    return replace(identity, **changes)


def _locale(root: Section) -> str:
    from mailflow.render.locale import DEFAULT_LOCALE, parse_locale
    try:
        return parse_locale(root.text("locale", DEFAULT_LOCALE) or DEFAULT_LOCALE)
    except ValueError as err:
        raise root.error("locale", str(err)) from err


def _digest(s: Section | None) -> DigestConfig:
    if s is None:
        # on by default (issue 13): a consultant who never set it up must still hear of
        # drafts waiting for them; `[digest] enabled = false` turns it off
        return DigestConfig()
    s.check_keys(["enabled", "to", "every", "at", "valid_for", "time_zone"])
    to = s.text("to")
    every = s.text("every", "daily") or "daily"
    hours = {"hourly": 1, "daily": 24, "weekly": 168}.get(every.strip().lower())
    if hours is None:
        m = re.fullmatch(r"\s*(\d+)\s*(hours?|days?)\s*", every, re.IGNORECASE)
        if not m or int(m[1]) == 0:
            raise s.error("every", f"expected daily, weekly, hourly, \"N hours\" or \"N days\", "
                                   f"got {every!r}")
        hours = int(m[1]) * (24 if m[2].lower().startswith("day") else 1)
    at = s.text("at", "08:30") or "08:30"
    if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", at):
        raise s.error("at", f"expected a time like 08:30, got {at!r}")
    valid = s.get("valid_for", (str, int), "7 days")
    m = re.fullmatch(r"\s*(\d+)\s*(days?)?\s*", str(valid), re.IGNORECASE)
    if not m or int(m[1]) == 0:
        raise s.error("valid_for", f"expected a number of days like \"7 days\", got {valid!r}")
    return DigestConfig(enabled=s.get("enabled", bool, True),
                        to=check_address(s, "to", to) if to else None,
                        every=(hours, hours % 24 == 0), at=at, valid_for_days=int(m[1]),
                        time_zone=s.text("time_zone"))


_SERVER_KEYS = ["host", "port", "security", "username", "password_env", "password_command",
                "oauth2_token_command", "allow_insecure", "timeout", "ca_file"]


def _server(s: Section, cls: type, default_ports: dict[str, int]) -> ServerConfig:
    extra = ["folders", "sent_folder", "authserv_id", "trust_contact_domains"] \
        if cls is ImapConfig else []
    s.check_keys(_SERVER_KEYS + extra + ["password"])
    if s.has("password"):
        raise s.error("password", "secrets are never read from mailflow.toml; use password_env "
                      "(an environment variable) or password_command")
    security = s.text("security", "starttls")
    if security not in SECURITY_MODES:
        raise s.error("security", f"expected one of {', '.join(SECURITY_MODES)}, got {security!r}")
    port = s.get("port", int, default_ports[security])
    if not 0 < port < 65536:
        raise s.error("port", f"expected a port number 1-65535, got {port}")
    creds = Credentials(
        username=s.text("username"),
        password_env=s.text("password_env"),
        password_command=s.text("password_command"),
        oauth2_token_command=s.text("oauth2_token_command"),
    )
    kwargs = dict(
        host=s.text("host", required=True),
        port=port,
        security=security,
        credentials=creds,
        allow_insecure=s.get("allow_insecure", bool, False),
        timeout=float(s.get("timeout", (int, float), 30.0)),
        ca_file=s.text("ca_file"),
    )
    if cls is ImapConfig:
        folders = s.get("folders", list, ["INBOX"])
        if not folders or not all(isinstance(f, str) and f.strip() for f in folders):
            raise s.error("folders", "expected a non-empty array of folder names")
        kwargs["folders"] = tuple(f.strip() for f in folders)
        kwargs["sent_folder"] = s.get("sent_folder", str, "Sent").strip()
        authserv_id = s.text("authserv_id") or None  # "" means: no such check
        if authserv_id is not None and (len(authserv_id.split()) != 1 or ";" in authserv_id):
            raise s.error("authserv_id", "expected the one-word name your mail server writes "
                          "first in Authentication-Results, e.g. \"mx.example.com\"")
        kwargs["authserv_id"] = authserv_id
        kwargs["trust_contact_domains"] = s.get("trust_contact_domains", bool, False)
    server = cls(**kwargs)
    if server.security == "none" and _has_secret(creds) and not (
            server.is_loopback or server.allow_insecure):
        raise s.error("security", f"'none' would send the password in clear to {server.address}; "
                      "use tls or starttls, or set allow_insecure = true")
    return server


def _has_secret(c: Credentials) -> bool:
    return bool(c.password_env or c.password_command or c.oauth2_token_command)


def check_header_value(s: Section, key: str, value: str) -> str:
    """Refuse CR/LF in values that end up in mail headers (header injection)."""
    if "\r" in value or "\n" in value:
        raise s.error(key, "must not contain line breaks (it goes into an email header)")
    return value


def check_address(s: Section, key: str, value: str) -> str:
    """A single bare email address, parsed rather than trusted (international ones included)."""
    check_header_value(s, key, value)
    try:
        local, wire_domain = split_address(value)
    except ValueError as err:
        raise s.error(key, f"not a valid email address: {value!r}") from err
    domain = value.rpartition("@")[2]
    dotted = "." in wire_domain or wire_domain == "localhost"
    if not local or not domain or not dotted:
        raise s.error(key, f"not a valid email address: {value!r}")
    return value


def check_display_name(s: Section, key: str, value: str) -> str:
    """A person's name for a header: one line, short enough to fold (see render.compose)."""
    check_header_value(s, key, value)
    if len(value) > MAX_NAME:
        raise s.error(key, f"is {len(value)} characters long; at most {MAX_NAME} fit in an "
                           "email header")
    return value
