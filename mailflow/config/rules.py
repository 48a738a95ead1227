"""Rule files: each defines one sequence of stages, validated up front into frozen objects."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from mailflow import timing
from mailflow.config.tomlfile import Section, read_toml
from mailflow.errors import ConfigError

ON_REPLY = ("stop", "needs_action", "feedback", "pause", "complete")
LATE = ("hold", "send")
# what a stage can attach, and as what: the documents of mailflow.render.document
ATTACHABLE = {"offboarding_doc": "offboarding", "deliverables_review": "deliverables"}
ATTACH_FORMATS = ("auto", "pdf", "html")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@lru_cache(maxsize=512)
def _condition(expression: str) -> Callable[..., object]:
    """A compiled `when` expression (compiled once: the planner tests it for every engagement).

    Conditions are Jinja2 expressions over engagement data; a sandbox keeps rule files from
    reaching into Python objects. jinja2 is imported here, not at start-up.
    """
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment().compile_expression(expression, undefined_to_none=True)


@dataclass(frozen=True)
class Reminder:
    """A follow-up sent in the stage's thread when no human reply has come."""

    template: str
    after: tuple[int, bool]  # (days, business)
    max: int
    approval: bool
    cc: bool = True  # false: only the To recipients get it (a nudge need not copy everyone)


@dataclass(frozen=True)
class Stage:
    """One email of a sequence, with when it is due and what a reply does."""

    id: str
    name: str
    template: str
    due: timing.Offset
    approval: bool
    when: str | None
    skip_reason: str | None  # what `plan` says when `when` is false
    on_reply: str
    late: str
    window: timing.Window
    at: dt.time | None
    reminders: tuple[Reminder, ...]
    attach: tuple[str, ...] = ()
    attach_format: str = "auto"  # pdf when WeasyPrint can be loaded, else html
    attach_when: str | None = None

    def reminder_at(self, step: int) -> Reminder | None:
        """The reminder that sends step `step` (1 is the first reminder), if any."""
        for reminder in self.reminders:
            if step <= reminder.max:
                return reminder
            step -= reminder.max
        return None

    def applies(self, data: dict) -> bool:
        """Whether the stage's condition holds for an engagement's data."""
        if not self.when:
            return True
        return bool(_condition(self.when)(**data))

    def attachments_for(self, data: dict) -> tuple[str, ...]:
        """The documents this stage attaches for an engagement (none when `attach_when` fails)."""
        if not self.attach or (self.attach_when and not _condition(self.attach_when)(**data)):
            return ()
        return self.attach


@dataclass(frozen=True)
class Sequence:
    """A named sequence of stages from one rule file."""

    name: str
    description: str
    path: Path
    stages: tuple[Stage, ...]
    digest: str  # changes when the file changes: engagements are re-planned

    def stage(self, stage_id: str) -> Stage:
        """The stage with this id."""
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        raise KeyError(stage_id)


_STAGE_KEYS = ["id", "name", "template", "due", "approval", "when", "skip_reason", "on_reply",
               "late", "window", "at", "reminder", "attach", "attach_format", "attach_when"]


def load_sequence(path: Path, base_window: timing.Window, templates_dir: Path | None = None,
                  problems: list[str] | None = None) -> Sequence:
    """Read and validate one rule file.

    With `problems`, a bad stage is reported there and left out instead of stopping the load.
    """
    raw = path.read_bytes() if path.is_file() else b""
    root = Section(read_toml(path), path)
    root.check_keys(["name", "description", "defaults", "stage"])
    defaults = root.section("defaults") or Section({}, path, "defaults")
    defaults.check_keys(["approval", "late", "on_reply", "window"])
    d_approval = defaults.get("approval", bool, True)
    d_late = _choice(defaults, "late", LATE, "hold")
    d_on_reply = _choice(defaults, "on_reply", ON_REPLY, "stop")
    d_window = _window(defaults, base_window)
    stages: list[Stage] = []
    seen: set[str] = set()
    stage_sections = root.sections("stage")
    if not stage_sections:
        raise root.error("stage", "a rule file needs at least one [[stage]]")
    # only well-formed ids: a malformed one (e.g. a list) is reported below, by its stage
    all_ids = {st.data.get("id") for st in stage_sections if isinstance(st.data.get("id"), str)}
    for s in stage_sections:
        try:
            stage = _load_stage(s, seen, stages, all_ids, templates_dir, d_approval, d_on_reply,
                                d_late, d_window)
        except ConfigError as err:
            if problems is None:
                raise
            # `mailflow check` lists every bad stage, not only the first
            problems.append(str(err))
            if isinstance(s.data.get("id"), str):
                seen.add(s.data["id"])
            continue
        stages.append(stage)
        seen.add(stage.id)
    return Sequence(name=root.text("name", path.stem), description=root.text("description", ""),
                    path=path, stages=tuple(stages), digest=hashlib.sha256(raw).hexdigest()[:16])


def _load_stage(s: Section, seen: set[str], stages: list[Stage], all_ids: set,
                templates_dir: Path | None, d_approval: bool, d_on_reply: str, d_late: str,
                d_window: timing.Window) -> Stage:
    """One [[stage]] table, validated against the stages before it."""
    s.check_keys(_STAGE_KEYS)
    sid = s.text("id", required=True)
    if not _ID.match(sid):
        raise s.error("id", f"expected lower-case letters, digits and _, got {sid!r}")
    if sid in seen:
        raise s.error("id", f"stage {sid!r} appears twice")
    template = s.text("template", sid)
    _check_template(s, "template", template, templates_dir)
    due = _offset(s, "due", required=True)
    anchor = due.anchor or ""
    if anchor in ("previous", "reply") and not stages:
        raise s.error("due", f"the first stage cannot be due after '{anchor}'")
    ref = anchor.removeprefix("reply:")
    if (ref != anchor or ref in all_ids) and ref not in seen:
        raise s.error("due", f"refers to stage {ref!r}, which must come earlier in the file")
    when = _checked_condition(s, "when")
    attach = s.get("attach", list, [])
    for name in attach:
        if not isinstance(name, str) or name not in ATTACHABLE:
            raise s.error("attach", f"cannot attach {name!r} (known: {', '.join(ATTACHABLE)})")
    if len(set(attach)) != len(attach):
        raise s.error("attach", "a document is listed twice")
    reminders = []
    for r in s.sections("reminder"):
        r.check_keys(["template", "after", "max", "approval", "cc"])
        rt = r.text("template", required=True)
        _check_template(r, "template", rt, templates_dir)
        try:
            after = timing.parse_duration(r.text("after", required=True))
        except ValueError as err:
            raise r.error("after", str(err)) from err
        count = r.get("max", int, 1)
        if not 1 <= count <= 10:
            raise r.error("max", f"expected 1 to 10 reminders, got {count}")
        reminders.append(Reminder(rt, after, count, r.get("approval", bool, False),
                                  r.get("cc", bool, True)))
    at = s.text("at")
    return Stage(
        id=sid, name=s.text("name", sid.replace("_", " ").capitalize()), template=template,
        due=due, approval=s.get("approval", bool, d_approval), when=when,
        skip_reason=s.text("skip_reason"),
        on_reply=_choice(s, "on_reply", ON_REPLY, d_on_reply),
        late=_choice(s, "late", LATE, d_late), window=_window(s, d_window),
        at=_time(s, "at", at) if at else None, reminders=tuple(reminders),
        attach=tuple(attach), attach_format=_choice(s, "attach_format", ATTACH_FORMATS, "auto"),
        attach_when=_checked_condition(s, "attach_when"))


# names joined by and/or, each maybe negated: valid Jinja2 whatever the names, so loading the
# rules needs not import Jinja2 for the usual conditions (every command loads them: issue 18)
_PLAIN_NAME = r"(?:not\s+)?(?!(?:and|or|not|in|is|if|else)\b)[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_PLAIN_CONDITION = re.compile(rf"\s*{_PLAIN_NAME}(?:\s+(?:and|or)\s+{_PLAIN_NAME})*\s*")


def _checked_condition(s: Section, key: str) -> str | None:
    """A condition key (`when`, `attach_when`), compiled once to find syntax errors up front."""
    text = s.text(key)
    if text and not _PLAIN_CONDITION.fullmatch(text):
        from jinja2 import TemplateSyntaxError
        try:
            _condition(text)
        except TemplateSyntaxError as err:
            raise s.error(key, f"cannot read condition {text!r}: {err.message}") from err
    return text


def load_rules(rules_dir: Path, base_window: timing.Window, templates_dir: Path | None = None
               ) -> dict[str, Sequence]:
    """Every rule file of a project, by sequence name."""
    files = sorted(rules_dir.glob("*.toml"))
    if not files:
        raise ConfigError(f"{rules_dir}: no rule files (*.toml)")
    sequences: dict[str, Sequence] = {}
    for path in files:
        seq = load_sequence(path, base_window, templates_dir)
        if seq.name in sequences:
            raise ConfigError(f"{path}: name: sequence {seq.name!r} is also defined in "
                              f"{sequences[seq.name].path}")
        sequences[seq.name] = seq
    return sequences


def _choice(s: Section, key: str, allowed: tuple[str, ...], default: str) -> str:
    value = s.text(key, default)
    if value not in allowed:
        raise s.error(key, f"expected one of {', '.join(allowed)}, got {value!r}")
    return value


def _offset(s: Section, key: str, required: bool = False) -> timing.Offset:
    value = s.get(key, (str, dict), None, required)
    try:
        return timing.parse_offset(value)
    except ValueError as err:
        raise s.error(key, str(err)) from err


def _window(s: Section, base: timing.Window) -> timing.Window:
    spec = s.get("window", dict, None)
    try:
        return timing.parse_window(spec, base) if spec else base
    except ValueError as err:
        raise s.error("window", str(err)) from err


def _time(s: Section, key: str, value: str) -> dt.time:
    try:
        return dt.time.fromisoformat(value)
    except ValueError as err:
        raise s.error(key, f"expected a time like 10:30, got {value!r}") from err


def _check_template(s: Section, key: str, name: str, templates_dir: Path | None) -> None:
    if templates_dir is None:
        return
    # the shared folder (templates/emails/NAME) or one per language (templates/emails/fr/NAME)
    files = ("subject.txt", "body.html", "body.txt")
    folder = templates_dir / name
    folders = [folder, *sorted(p / name for p in templates_dir.glob("*")
                               if re.fullmatch(r"[a-z]{2,3}(?:_[A-Z]{2})?", p.name))]
    folders = [f for f in folders if f.is_dir()] or [folder]
    for candidate in folders:
        missing = [f for f in files if not (candidate / f).is_file()]
        if missing:
            raise s.error(key, f"template {name!r} not found: {candidate} lacks "
                          f"{', '.join(missing)}")
