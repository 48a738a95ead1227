"""The documents the lead shares with the client: the offboarding document and the deliverables
review, rendered from a project's `templates/docs/` as HTML, Markdown or PDF (pure but for PDF).

They use the same filters as the emails and are rendered from the same data and plan, so a
document and the emails can never disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from mailflow.errors import DependencyError, RenderError
from mailflow.render.templates import FILTERS

KINDS = ("offboarding", "deliverables")
FORMATS = ("html", "md", "pdf")


class DocumentRenderer:
    """Renders `<kind>.html` and `<kind>.md` from one folder (a project's templates/docs)."""

    def __init__(self, docs_dir: Path) -> None:
        self.docs_dir = Path(docs_dir)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.docs_dir)),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                                default_for_string=False, default=False),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(FILTERS)

    def render(self, kind: str, fmt: str, context: dict[str, Any]) -> str:
        """The document as text: HTML for html and pdf, Markdown for md."""
        if kind not in KINDS:
            raise RenderError(f"unknown document kind {kind!r} (expected {', '.join(KINDS)})")
        name = f"{kind}.{'md' if fmt == 'md' else 'html'}"
        where = self.docs_dir / name
        if not where.is_file():
            raise RenderError(f"{where}: missing (restore it with `mailflow init --force`)")
        try:
            return self.env.get_template(name).render(context)
        except jinja2.TemplateSyntaxError as err:
            raise RenderError(f"{err.filename or where}, line {err.lineno}: {err.message}"
                              ) from err
        except jinja2.UndefinedError as err:
            raise RenderError(f"{where}{_line(err)}: {err.message}") from err
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as err:
            raise RenderError(f"{where}{_line(err)}: {err}") from err


def _line(err: BaseException) -> str:
    """', line N' of the template frame an error came from, when the traceback has one."""
    tb, line = err.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith((".html", ".md")):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f", line {line}" if line else ""


def html_to_pdf(html: str, base: Path) -> bytes:
    """A PDF of an HTML document, through WeasyPrint (the optional `mailflow[pdf]` extra)."""
    try:
        import weasyprint
    except ImportError as err:
        raise DependencyError(
            "PDF needs WeasyPrint: pip install 'mailflow[pdf]' (and the Pango libraries, "
            "e.g. apt-get install libpango-1.0-0 libpangoft2-1.0-0); or use --format html"
        ) from err
    except OSError as err:  # the Python package is there, its system libraries are not
        raise DependencyError(f"WeasyPrint cannot load its system libraries ({err}); install "
                              "Pango (apt-get install libpango-1.0-0 libpangoft2-1.0-0)"
                              ) from err
    return weasyprint.HTML(string=html, base_url=str(base)).write_pdf()
