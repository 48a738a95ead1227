"""Loading a project's config, rules and renderer once per command, validated up front."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from mailflow import timing
from mailflow.config.rules import Sequence, load_rules
from mailflow.config.settings import SCHEDULE_DEFAULTS, Config, Identity, load_config
from mailflow.errors import ConfigError
from mailflow.project import Project

if TYPE_CHECKING:
    from mailflow.engine.planner import Context


@dataclass
class Loaded:
    """A project's validated configuration and rules."""

    project: Project
    config: Config
    sequences: dict[str, Sequence]
    window: timing.Window

    @cached_property
    def renderer(self):  # noqa: ANN201 - imported lazily: jinja2 is not needed by every command
        """The template renderer for the project's templates."""
        from mailflow.render.templates import Renderer
        return Renderer(self.project.templates_dir)

    @cached_property
    def config_digest(self) -> str:
        """Changes when anything that affects planning in mailflow.toml changes."""
        c = self.config
        raw = json.dumps([c.time_zone, c.window, c.holidays, c.schedule], default=str,
                         sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @cached_property
    def renderer_digest(self) -> str:
        """Changes when any template file changes, so unapproved drafts are rendered anew."""
        h = hashlib.sha256()
        root = self.project.templates_dir
        # the documents too: a draft may attach one (rule key `attach`)
        paths = sorted(root.rglob("*")) + sorted((root.parent / "docs").rglob("*"))
        for path in paths:
            if path.is_file():
                # relative names: moving or copying the project must not redraw every draft
                st = path.stat()
                h.update(f"{path.relative_to(root.parent)}:{st.st_mtime_ns}:{st.st_size}"
                         .encode())
        return h.hexdigest()[:16]

    def sequence_for(self, engagement: dict) -> Sequence:
        """The sequence an engagement follows."""
        name = engagement.get("sequence", "offboarding")
        try:
            return self.sequences[name]
        except KeyError:
            raise ConfigError(f"engagement {engagement['id']}: sequence {name!r} is not defined "
                              f"in {self.project.rules_dir} (have: {', '.join(self.sequences)})"
                              ) from None

    def identity_for(self, engagement: dict) -> Identity:
        """Who an engagement's mail goes out as: the identity of its lead (issue 15).

        In the one-identity form ([sender] only) every engagement goes out as the sender;
        once [[identity]] is used, a lead without one is a ConfigError naming them.
        """
        config = self.config
        email = str((engagement.get("consultant") or {}).get("email") or "")
        found = config.identity(email) if email else None
        if found is not None:
            return found
        if not config.explicit_identities:
            return config.identities[0]
        raise ConfigError(f"engagement {engagement.get('id')}: consultant.email "
                          f"{email or '(none)'} has no [[identity]] in {config.path} (have: "
                          f"{', '.join(i.email for i in config.identities)})")

    def identity_of(self, msg: dict, engagement: dict) -> Identity:
        """Who a message goes out as: the identity it was drafted for, kept on the message
        so that a retry is the very same message; else its engagement's lead."""
        email = msg.get("sender_email")
        if not email:
            return self.identity_for(engagement)
        found = self.config.identity(email)
        if found is None:
            raise ConfigError(f"{msg['key']}: drafted to go out as {email}, which has no "
                              f"[[identity]] in {self.config.path} any more")
        return found

    def context_for(self, engagement: dict) -> Context:
        """The zone and holiday calendar that apply to an engagement."""
        zone = engagement.get("time_zone") or self.config.time_zone
        own = engagement.get("holidays")
        if not own:  # most engagements: the project's calendar, its JSON made once
            return _context(zone, self._project_holidays_json)
        return _context(zone, json.dumps(_merge_holidays(self.config.holidays, own),
                                         sort_keys=True))

    @cached_property
    def _project_holidays_json(self) -> str:
        return json.dumps(_merge_holidays(self.config.holidays, None), sort_keys=True)

    @cached_property
    def zone(self) -> ZoneInfo:
        """The project's default time zone."""
        return timing.load_zone(self.config.time_zone)


_CONTEXTS: dict[tuple[str, str], Context] = {}


def _context(zone: str, holidays_json: str) -> Context:
    # engagements share a handful of (zone, calendar) pairs; build each once per process
    key = (zone, holidays_json)
    if key not in _CONTEXTS:
        # (the planner's module on use: `status` from kept summaries plans nothing)
        from mailflow.engine.planner import Context
        _CONTEXTS[key] = Context(timing.load_zone(zone),
                                 timing.make_calendar(json.loads(holidays_json) or None))
    return _CONTEXTS[key]


def _merge_holidays(project: dict, engagement: dict | None) -> dict:
    merged = dict(project or {})
    if engagement:
        extra = list(merged.get("extra", [])) + list(engagement.get("extra", []))
        merged.update({k: v for k, v in engagement.items() if k != "extra"})
        if extra:
            merged["extra"] = [str(x) for x in extra]
    return merged


def config_problems(config: Config) -> list[str]:
    """Every problem with the time zone, window, holidays and schedule of mailflow.toml."""
    where = str(config.path)
    problems = []
    for key, test in (("time_zone", lambda: timing.load_zone(config.time_zone)),
                      ("window", lambda: timing.parse_window(config.window or None)),
                      ("holidays", lambda: timing.make_calendar(config.holidays or None))):
        try:
            test()
        except ValueError as err:
            problems.append(f"{where}: {key}: {err}")
    try:
        check_schedule(config, where)
    except ConfigError as err:
        problems.append(str(err))
    return problems


def load_project(project: Project, check_templates: bool = True) -> Loaded:
    """Config and rules of a project; any problem is a ConfigError naming file and key."""
    config = load_config(project.config_path)
    problems = config_problems(config)
    if problems:
        raise ConfigError(problems[0])
    window = timing.parse_window(config.window or None)
    sequences = load_rules(project.rules_dir, window,
                           project.templates_dir if check_templates else None)
    return Loaded(project, config, sequences, window)


def check_schedule(config: Config, where: str) -> None:
    """Validate the [schedule] values (load_config already refused unknown keys)."""
    s = config.schedule
    for key in ("review_days", "per_minute", "per_day", "retry_lifetime_hours"):
        value = s.get(key, SCHEDULE_DEFAULTS[key])
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{where}: schedule.{key}: expected a whole number >= 0, "
                              f"got {value!r}")
    batch = s.get("send_batch", SCHEDULE_DEFAULTS["send_batch"])
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ConfigError(f"{where}: schedule.send_batch: expected a whole number >= 1, "
                          f"got {batch!r}")
    try:
        timing.parse_duration(str(s.get("grace", SCHEDULE_DEFAULTS["grace"])))
    except ValueError as err:
        raise ConfigError(f"{where}: schedule.grace: {err}") from err


def schedule(config: Config, key: str):  # noqa: ANN201 - int or str by key
    """A [schedule] setting with its default."""
    return config.schedule.get(key, SCHEDULE_DEFAULTS[key])
