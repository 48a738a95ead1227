"""Rendering a stage's email: Jinja2 templates -> subject, CSS-inlined HTML and plain text."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2

from mailflow.errors import RenderError

TEMPLATE_FILES = ("subject.txt", "body.html", "body.txt")
TEXT_WIDTH = 72

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
# currencies whose minor unit is not used in practice (ISO 4217 exponent 0)
_ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "PYG", "UGX", "XAF", "XOF"})
_HONORIFICS = frozenset({"dr", "mr", "mrs", "ms", "mx", "prof", "sir", "dame"})

_UNDEFINED_PATTERNS = (
    re.compile(r"'([^']+)' is undefined"),
    re.compile(r"has no attribute '([^']+)'"),
    re.compile(r"no element for '?([^'\s]+)'?"),
)
# email has no use for <link>: it would be an external stylesheet that mail clients fetch (a
# tracking-style request) and premailer would otherwise try to download it
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_LIST_MARKER = re.compile(r"^(\s*)([-*•]\s+|\d+[.)]\s+)?")
# phrases a line break must not split: "3 Dec 2026", "29 January", "14,250.00 USD"
_KEEP_TOGETHER = re.compile(
    r"\b\d{1,2} (?:January|February|March|April|May|June|July|August|September|October"
    r"|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec)(?: \d{4})?\b"
    r"|\b\d[\d,.]* [A-Z]{3}\b|\b[A-Z]{3} \d[\d,.]*"
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

    def __init__(self, root: Path) -> None:
        super().__init__(str(root))
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
    """Renders the stage templates found under one folder (e.g. a project's templates/emails)."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = Path(templates_dir)
        # one environment for the life of the process: it caches compiled templates, and a
        # tick renders thousands of emails
        self.env = jinja2.Environment(
            loader=_ConfinedLoader(self.templates_dir),
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
        self.env.filters.update(FILTERS)

    def has_template(self, name: str) -> bool:
        """True when <templates_dir>/<name>/ holds subject.txt, body.html and body.txt."""
        if not _is_plain_name(name):
            return False
        folder = self.templates_dir / name
        return all((folder / file).is_file() for file in TEMPLATE_FILES)

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        """Render a stage's subject, HTML (CSS inlined) and text; RenderError on any failure."""
        if not self.has_template(name):
            raise RenderError(_missing_message(self.templates_dir, name))
        subject = self._render_file(name, "subject.txt", context)
        subject = _clean_subject(name, subject)
        # the HTML <title> and preheader may use the subject
        full = {**context, "subject": subject}
        html = inline_css(self._render_file(name, "body.html", full))
        text = normalize_text(self._render_file(name, "body.txt", full))
        return Rendered(subject=subject, html=html, text=text)

    def _render_file(self, name: str, file: str, context: dict[str, Any]) -> str:
        where = f"template {name}/{file}"
        try:
            return self.env.get_template(f"{name}/{file}").render(context)
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


def inline_css(html: str) -> str:
    """Inline the <style> rules into style attributes; never touches the network."""
    return _premailer().transform(_LINK_TAG.sub("", html), pretty_print=False)


_PREMAILER: Any = None


def _premailer() -> Any:
    # imported here, not at module level: premailer pulls in lxml, cssutils and requests, and
    # interactive commands that never render must start fast
    global _PREMAILER
    if _PREMAILER is None:
        import logging

        import cssutils
        import premailer

        # cssutils logs every vendor property (mso-*, -webkit-*) it does not know
        cssutils.log.setLevel(logging.CRITICAL)
        class CachingPremailer(premailer.Premailer):
            """Parses each distinct stylesheet once: every email of a tick shares the layout's.

            premailer re-serialises the same CSS through cssutils for every message, which was
            most of the cost of rendering; the parsed rules are only read, never changed.
            """

            _rules: dict[tuple[str, int], Any] = {}

            def _parse_style_rules(self, css_body: str, ruleset_index: int) -> Any:
                key = (css_body, ruleset_index)
                if key not in self._rules:
                    if len(self._rules) > 256:  # many distinct edited stylesheets: start over
                        self._rules.clear()
                    self._rules[key] = super()._parse_style_rules(css_body, ruleset_index)
                return self._rules[key]

        _PREMAILER = CachingPremailer(
            allow_network=False,  # never download <link> or external_styles
            allow_loading_external_files=False,
            base_url=None,  # no URL rewriting: links stay exactly as written
            keep_style_tags=False,  # leftovers (media queries, :hover) still stay in a <style>
            remove_classes=True,
            strip_important=False,
            disable_validation=True,
            cssutils_logging_level=logging.CRITICAL,
        )
    return _PREMAILER


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


def _wrap_line(line: str) -> list[str]:
    if len(line) <= TEXT_WIDTH:
        return [line]
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


def _missing_message(templates_dir: Path, name: str) -> str:
    folder = templates_dir / name
    if not _is_plain_name(name) or not folder.is_dir():
        return f"template {name}: no folder {folder}"
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


def longdate(value: dt.date) -> str:
    """'Friday, 29 January 2027' (English, whatever the machine's locale)."""
    d = _as_date(value)
    return f"{_DAYS[d.weekday()]}, {d.day} {_MONTHS[d.month - 1]} {d.year}"


def shortdate(value: dt.date) -> str:
    """'29 Jan 2027'."""
    d = _as_date(value)
    return f"{d.day} {_MONTHS[d.month - 1][:3]} {d.year}"


def daymonth(value: dt.date) -> str:
    """'29 January': for dates close enough that the year goes without saying."""
    d = _as_date(value)
    return f"{d.day} {_MONTHS[d.month - 1]}"


def weekday_date(value: dt.date) -> str:
    """'Friday 29 January': a near date, with the weekday people plan by."""
    d = _as_date(value)
    return f"{_DAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]}"


def monthyear(value: dt.date) -> str:
    """'March 2025'."""
    d = _as_date(value)
    return f"{_MONTHS[d.month - 1]} {d.year}"


def money(amount: Any, currency: str | None = None) -> str:
    """'14,250.00 USD': grouped digits, the currency's decimals, ISO code after the number."""
    if isinstance(amount, bool):
        raise ValueError(f"money: expected a number, got {amount!r}")
    try:
        value = Decimal(str(amount).replace(",", ""))
    except InvalidOperation as err:
        raise ValueError(f"money: expected a number, got {amount!r}") from err
    code = (currency or "").strip().upper()
    places = 0 if code in _ZERO_DECIMAL else 2
    number = f"{value:,.{places}f}"
    return f"{number} {code}" if code else number


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


def number_word(n: int) -> str:
    """'one'..'ten' for small counts, digits beyond (style-guide prose)."""
    words = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    return words[n] if 0 <= n < len(words) else str(n)


def strip_period(value: Any) -> str:
    """The text without a closing full stop, so a template can end the sentence itself."""
    return str(value).strip().rstrip(".").rstrip()


def _as_date(value: Any) -> dt.date:
    # datetimes are dates too; the times in `sent` are already local
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"expected a date, got {value!r}")


FILTERS = {
    "longdate": longdate,
    "shortdate": shortdate,
    "daymonth": daymonth,
    "weekday_date": weekday_date,
    "monthyear": monthyear,
    "money": money,
    "first_name": first_name,
    "join_names": join_names,
    "number_word": number_word,
    "strip_period": strip_period,
}
