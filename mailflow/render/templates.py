"""Rendering a stage's email: Jinja2 templates -> subject, CSS-inlined HTML and plain text."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2

from mailflow.errors import RenderError
from mailflow.render.inline import inline_css
from mailflow.render.locale import (
    DEFAULT_LOCALE,
    daymonth,
    join_list,
    longdate,
    money,
    monthyear,
    number,
    shortdate,
    time_of_day,
    weekday_date,
)

__all__ = ["FILTERS", "Rendered", "Renderer", "first_name", "inline_css", "longdate", "money",
           "normalize_text", "shortdate"]

TEMPLATE_FILES = ("subject.txt", "body.html", "body.txt")
TEXT_WIDTH = 72

_HONORIFICS = frozenset({"dr", "mr", "mrs", "ms", "mx", "prof", "sir", "dame"})
# a folder of templates in one language: "fr", "de", "pt_BR"
_LANGUAGE_DIR = re.compile(r"^[a-z]{2,3}(?:_[A-Z]{2})?$")

_UNDEFINED_PATTERNS = (
    re.compile(r"'([^']+)' is undefined"),
    re.compile(r"has no attribute '([^']+)'"),
    re.compile(r"no element for '?([^'\s]+)'?"),
)
_LIST_MARKER = re.compile(r"^(\s*)([-*•]\s+|\d+[.)]\s+)?")
# phrases a line break must not split: "3 Dec 2026", "Jan 29, 2027", "29 de enero de 2027",
# "14,250.00 USD", "14 250,00 $US"
_MONTH = r"[^\W\d_]{3,}\.?"
_KEEP_TOGETHER = re.compile(
    # "Dienstag, 2. Februar": a wrapped line must not start with "2." (it reads as a list)
    rf"\S+ \d{{1,2}}\. {_MONTH}(?: \d{{4}})?(?!\w)|"
    rf"\b\d{{1,2}}\.? (?:de )?{_MONTH}(?: (?:de )?\d{{4}})?(?!\w)"
    r"|\b[A-Z][a-z]{2,8}\.? \d{1,2}(?:, \d{4})?\b"
    r"|\b\d[\d,.\u202f\u00a0]* (?:[A-Z]{3}\b|\S*[$€£¥]\S*)|\b[A-Z]{3} \d[\d,.]*"
    # a dash stays with the word before it, never starting a line
    r"|\S+ [–—](?= )"
)
_GLUE = "\x00"  # stands in for a space inside a kept-together phrase while wrapping


@dataclass(frozen=True)
class Rendered:
    """One rendered email: subject line, inlined HTML and its plain-text alternative."""

    subject: str
    html: str
    text: str


class _ConfinedLoader(jinja2.FileSystemLoader):
    """A file loader that refuses any template whose real path lies outside its folder.

    A symlink in templates/emails/ pointing at ~/.ssh/config or another client's folder
    would otherwise put that file's text into a draft; jinja2 already refuses `..` in names.
    """

    def __init__(self, search: list[str], root: Path) -> None:
        super().__init__(search)
        self.root = root.resolve()

    def get_source(self, environment: jinja2.Environment, template: str
                   ) -> tuple[str, str | None, Any]:
        """The template's source, only when its real path is inside the templates folder."""
        source, filename, uptodate = super().get_source(environment, template)
        real = Path(filename).resolve() if filename else None
        if real is None or not real.is_relative_to(self.root):
            raise RenderError(f"template {template}: refused: it resolves to {real}, outside "
                              f"{self.root} (a symlink?); templates are read from that folder "
                              "only")
        return source, filename, uptodate


class Renderer:
    """Renders the stage templates found under one folder (e.g. a project's templates/emails).

    A stage's templates are looked up in the language's folder first (`fr/timeline_notice/`),
    then at the top (`timeline_notice/`, a project's own templates in one language); layouts and
    includes the same way, so a language folder shares whatever it does not override.
    """

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = Path(templates_dir)
        self._envs: dict[str, jinja2.Environment] = {}
        self.env = self.environment("en")

    def environment(self, language: str) -> jinja2.Environment:
        """The Jinja2 environment for one language, built once for the life of the process."""
        env = self._envs.get(language)
        if env is None:
            # one environment per language for the life of the process: it caches compiled
            # templates, and a tick renders thousands of emails
            search = [str(self.templates_dir / language), str(self.templates_dir)]
            env = jinja2.Environment(
                loader=_ConfinedLoader(search, self.templates_dir),
                undefined=jinja2.StrictUndefined,
                autoescape=jinja2.select_autoescape(
                    enabled_extensions=("html",), default_for_string=False, default=False
                ),
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=False,
                # templates do not change during a tick; skip the stat() per render
                auto_reload=False,
            )
            env.filters.update(FILTERS)
            self._envs[language] = env
        return env

    def languages(self) -> list[str]:
        """The languages with a folder of their own ('en', 'fr', ...), sorted."""
        if not self.templates_dir.is_dir():
            return []
        return sorted(p.name for p in self.templates_dir.iterdir()
                      if p.is_dir() and _LANGUAGE_DIR.match(p.name))

    def folder(self, name: str, language: str = "en") -> Path:
        """Where a stage's templates are for a language: its own folder, else the shared one."""
        own = self.templates_dir / language / name
        return own if own.is_dir() else self.templates_dir / name

    def has_template(self, name: str, language: str = "en") -> bool:
        """True when the stage's folder for the language holds all three template files."""
        if not _is_plain_name(name):
            return False
        folder = self.folder(name, language)
        return all((folder / file).is_file() for file in TEMPLATE_FILES)

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        """Render a stage's subject, HTML (CSS inlined) and text; RenderError on any failure.

        The language is the context's `language` (English when it has none).
        """
        language = str(context.get("language") or "en")
        if not self.has_template(name, language):
            raise RenderError(_missing_message(self, name, language))
        env = self.environment(language)
        subject = self._render_file(env, name, "subject.txt", context)
        subject = _clean_subject(name, subject)
        # the HTML <title> may use the subject
        full = {**context, "subject": subject}
        html = inline_css(self._render_file(env, name, "body.html", full))
        text = normalize_text(self._render_file(env, name, "body.txt", full))
        return Rendered(subject=subject, html=html, text=text)

    def _render_file(self, env: jinja2.Environment, name: str, file: str,
                     context: dict[str, Any]) -> str:
        where = f"template {name}/{file}"
        try:
            return env.get_template(f"{name}/{file}").render(context)
        except jinja2.UndefinedError as err:
            var = _undefined_name(str(err))
            raise RenderError(
                f"{where}: undefined variable '{var}'{_origin(err.__traceback__, self)}"
            ) from err
        except jinja2.TemplateSyntaxError as err:
            source = err.name or err.filename or f"{name}/{file}"
            raise RenderError(
                f"{where}: syntax error in {source}, line {err.lineno}: {err.message}"
            ) from err
        except jinja2.TemplateNotFound as err:
            raise RenderError(f"{where}: includes missing template '{err.name}'") from err
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as err:
            # bad data (a string where a date is expected, ...) blocks this draft, not the tick
            raise RenderError(f"{where}: {err}{_origin(err.__traceback__, self)}") from err


def normalize_text(text: str) -> str:
    """Tidy a plain-text body: wrap at 72 columns, no trailing spaces, no double blank lines."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        # "-- " (with its space) is the signature separator mail clients recognise
        line = raw if raw == "-- " else raw.rstrip()
        lines.extend(_wrap_line(line))
    body = "\n".join(lines)
    body = re.sub(r"\n{3,}", "\n\n", body).strip("\n")
    return body + "\n"


# wrapped lines by their text: most of a draft's long lines are the template's own sentences,
# the same in every client's email (issue 18: wrapping was a tenth of rendering)
_WRAPPED: dict[str, list[str]] = {}


def _wrap_line(line: str) -> list[str]:
    if len(line) <= TEXT_WIDTH:
        return [line]
    found = _WRAPPED.get(line)
    if found is None:
        if len(_WRAPPED) >= 4096:
            _WRAPPED.clear()
        found = _WRAPPED[line] = _wrapped(line)
    return found


def _wrapped(line: str) -> list[str]:
    # list items and indented lines keep a hanging indent under their first word
    match = _LIST_MARKER.match(line)
    hang = " " * len(match.group(0)) if match else ""
    glued = _KEEP_TOGETHER.sub(lambda m: m.group(0).replace(" ", _GLUE), line)
    wrapped = textwrap.wrap(
        glued,
        width=TEXT_WIDTH,
        subsequent_indent=hang,
        break_long_words=False,  # URLs must stay whole to stay clickable
        break_on_hyphens=False,
    ) or [glued]
    return [part.replace(_GLUE, " ") for part in wrapped]


def _clean_subject(name: str, subject: str) -> str:
    subject = subject.strip()
    if "\r" in subject or "\n" in subject:
        # a line break in a header is header injection, however it got there
        raise RenderError(f"template {name}/subject.txt: the subject contains a line break")
    return re.sub(r"\s+", " ", subject)


def _is_plain_name(name: str) -> bool:
    return bool(name) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name) is not None


def _missing_message(renderer: Renderer, name: str, language: str) -> str:
    templates_dir = renderer.templates_dir
    folder = renderer.folder(name, language) if _is_plain_name(name) else templates_dir / name
    if not _is_plain_name(name) or not folder.is_dir():
        if (templates_dir / language).is_dir() or language == "en":
            return f"template {name}: no folder {templates_dir / language / name}"
        return (f"template {name}: no templates in language {language!r} (no folder "
                f"{templates_dir / language / name})")
    missing = [file for file in TEMPLATE_FILES if not (folder / file).is_file()]
    return f"template {name}: missing {', '.join(missing)} in {folder}"


def _undefined_name(message: str) -> str:
    for pattern in _UNDEFINED_PATTERNS:
        match = pattern.search(message)
        if match:
            return match.group(1)
    return message


def _origin(tb: TracebackType | None, renderer: Renderer) -> str:
    """' (in _layout.html, line 12)': the innermost template frame of a rendering error."""
    root = str(renderer.templates_dir.resolve())
    found = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(root):
            rel = Path(filename).resolve().relative_to(root).as_posix()
            found = f" (in {rel}, line {tb.tb_lineno})"
        tb = tb.tb_next
    return found


# ---- filters -------------------------------------------------------------------------------


def first_name(person: Any) -> str:
    """The name to greet someone by: their `first_name` if given, else their name's first word."""
    if isinstance(person, dict):
        given = person.get("first_name")
        if given:
            return str(given).strip()
        person = person.get("name") or ""
    words = str(person).split()
    # "Dr. Jane Smith" is greeted as Jane
    while len(words) > 1 and words[0].rstrip(".").casefold() in _HONORIFICS:
        words = words[1:]
    return words[0] if words else ""


def join_names(items: Any, attribute: str | None = None) -> str:
    """'Ana', 'Ana and Ben', 'Ana, Ben and Carl' (from strings or dicts' `attribute`)."""
    names = [str(i.get(attribute) if attribute and isinstance(i, dict) else i) for i in items]
    names = [n for n in names if n and n != "None"]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def strip_period(value: Any) -> str:
    """The text without a closing full stop, so a template can end the sentence itself."""
    return str(value).strip().rstrip(".").rstrip()


# values whose formatting is memoised: Babel's formatting is pure but slow, and a tick's
# emails show the same dates and sums again and again (issue 18: render speed)
_PLAIN = (str, int, float, Decimal, dt.date, dt.time)
_FORMATTED: dict[tuple, str] = {}


def _localized(function: Any) -> Any:
    """A filter that formats in the locale of the email being rendered (`locale` in context)."""

    @jinja2.pass_context
    def fmt(context: Any, value: Any, *args: Any) -> str:
        locale = context.get("locale") or DEFAULT_LOCALE
        if not (isinstance(value, _PLAIN) and all(isinstance(a, _PLAIN) for a in args)):
            return function(value, *args, locale=locale)
        # the type and repr, not the value: 1 == 1.0 == True, date(...) != datetime(...)
        key = (function, locale, type(value), repr(value),
               *((type(a), repr(a)) for a in args))
        found = _FORMATTED.get(key)
        if found is None:
            found = function(value, *args, locale=locale)  # errors are raised, never kept
            if len(_FORMATTED) >= 8192:
                _FORMATTED.clear()
            _FORMATTED[key] = found
        return found

    fmt.__doc__ = function.__doc__
    return fmt


FILTERS = {
    "longdate": _localized(longdate),
    "shortdate": _localized(shortdate),
    "daymonth": _localized(daymonth),
    "weekday_date": _localized(weekday_date),
    "monthyear": _localized(monthyear),
    "time": _localized(time_of_day),
    "money": _localized(money),
    "number": _localized(number),
    "join_names": _localized(join_list),
    "first_name": first_name,
    "strip_period": strip_period,
}
