"""The renderer: strict variables, escaping, CSS inlining without network, safe subjects."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mailflow.errors import RenderError
from mailflow.render.templates import (
    Renderer,
    first_name,
    inline_css,
    longdate,
    money,
    normalize_text,
    shortdate,
)

ROOT = Path(__file__).resolve().parents[2]


def make_stage(base: Path, name: str, subject: str, html: str, text: str) -> None:
    """Write a throwaway stage folder."""
    folder = base / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "subject.txt").write_text(subject, encoding="utf-8")
    (folder / "body.html").write_text(html, encoding="utf-8")
    (folder / "body.txt").write_text(text, encoding="utf-8")


HTML = """<!DOCTYPE html>
<html><head><style>p { color: #123456; } .note { font-weight: bold; }</style></head>
<body><p class="note">{{ client }}</p></body></html>
"""


@pytest.fixture
def tdir(tmp_path: Path) -> Path:
    make_stage(tmp_path, "hello", "Hello {{ client }}\n", HTML, "Client: {{ client }}\n")
    return tmp_path


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Make every socket connect attempt fail loudly, and record it."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a))
    return attempts


def test_renders_subject_html_and_text(tdir: Path) -> None:
    out = Renderer(tdir).render("hello", {"client": "Northwind"})
    assert out.subject == "Hello Northwind"
    assert "Northwind" in out.html
    assert out.text == "Client: Northwind\n"


def test_has_template(tdir: Path) -> None:
    r = Renderer(tdir)
    assert r.has_template("hello")
    assert not r.has_template("nope")
    assert not r.has_template("../hello")
    (tdir / "half").mkdir()
    (tdir / "half" / "subject.txt").write_text("x")
    assert not r.has_template("half")


def test_missing_template_is_named(tdir: Path) -> None:
    with pytest.raises(RenderError, match="template nope"):
        Renderer(tdir).render("nope", {})
    (tdir / "half").mkdir()
    (tdir / "half" / "subject.txt").write_text("x")
    with pytest.raises(RenderError, match=r"template half: missing body\.html, body\.txt"):
        Renderer(tdir).render("half", {})


def test_undefined_variable_names_variable_and_template(tdir: Path) -> None:
    make_stage(tdir, "typo", "Hi", "<p>{{ clinet }}</p>", "x")
    with pytest.raises(RenderError) as err:
        Renderer(tdir).render("typo", {"client": "Northwind"})
    assert str(err.value).startswith("template typo/body.html: undefined variable 'clinet'")


def test_undefined_attribute_names_the_attribute(tdir: Path) -> None:
    make_stage(tdir, "attr", "Hi {{ consultant.nmae }}", "<p></p>", "x")
    with pytest.raises(RenderError, match=r"template attr/subject\.txt: undefined variable 'nmae'"):
        Renderer(tdir).render("attr", {"consultant": {"name": "Dana"}})


def test_undefined_in_layout_says_where(tdir: Path) -> None:
    (tdir / "_base.html").write_text("<p>{{ footer_typo }}</p>{% block b %}{% endblock %}")
    make_stage(tdir, "child", "Hi", '{% extends "_base.html" %}{% block b %}x{% endblock %}', "x")
    with pytest.raises(RenderError) as err:
        Renderer(tdir).render("child", {})
    message = str(err.value)
    assert message.startswith("template child/body.html: undefined variable 'footer_typo'")
    assert "_base.html, line 1" in message


def test_undefined_in_if_fails_too(tdir: Path) -> None:
    # StrictUndefined: even testing a misspelt name is an error, never a silent "false"
    make_stage(tdir, "iftypo", "Hi", "x", "{% if linkz %}y{% endif %}")
    with pytest.raises(RenderError, match="template iftypo/body.txt: undefined variable 'linkz'"):
        Renderer(tdir).render("iftypo", {})


def test_syntax_error_names_file_and_line(tdir: Path) -> None:
    make_stage(tdir, "broken", "Hi", "<p>ok</p>\n<p>{% if %}</p>\n", "x")
    with pytest.raises(RenderError, match=r"broken/body\.html.*line 2"):
        Renderer(tdir).render("broken", {})


def test_bad_data_is_a_render_error(tdir: Path) -> None:
    make_stage(tdir, "baddate", "{{ when | longdate }}", "x", "x")
    with pytest.raises(RenderError, match="template baddate/subject.txt: expected a date"):
        Renderer(tdir).render("baddate", {"when": "soon"})


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "Smith & Sons"])
def test_html_is_escaped_and_text_is_not(tdir: Path, name: str) -> None:
    out = Renderer(tdir).render("hello", {"client": name})
    assert name not in out.html
    assert name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in out.html
    assert out.text == f"Client: {name}\n"
    assert out.subject == f"Hello {name}"


def test_css_is_inlined(tdir: Path) -> None:
    out = Renderer(tdir).render("hello", {"client": "N"})
    assert 'style="color:#123456; font-weight:bold"' in out.html
    assert "<style" not in out.html  # nothing left over: no media queries in this one
    assert 'class="' not in out.html
    assert "<link" not in out.html


def test_media_queries_keep_a_style_block() -> None:
    html = (
        "<html><head><style>p{color:red} @media (max-width: 600px) { p { color: blue } }"
        "</style></head><body><p>x</p></body></html>"
    )
    out = inline_css(html)
    assert 'style="color:red"' in out
    assert "@media" in out
    assert "p {\n        color: blue\n        }" in out or "color: blue" in out


def test_important_is_kept() -> None:
    out = inline_css("<html><head><style>p{color:red !important}</style></head>"
                     "<body><p>x</p></body></html>")
    assert "!important" in out


def test_remote_stylesheet_is_never_fetched(tdir: Path, no_network: list[object]) -> None:
    make_stage(
        tdir, "remote", "Hi",
        '<html><head><link rel="stylesheet" href="https://cdn.example/x.css">'
        '<link rel="stylesheet" href="//cdn.example/y.css">'
        "<style>p{color:red}</style></head><body><p>x</p></body></html>",
        "x",
    )
    out = Renderer(tdir).render("remote", {})
    assert no_network == []
    assert "cdn.example" not in out.html
    assert "<link" not in out.html
    assert 'style="color:red"' in out.html


def test_socket_guard_works(no_network: list[object]) -> None:
    # the guard used above really does catch a connection attempt
    with pytest.raises(AssertionError), socket.socket() as s:
        s.connect(("192.0.2.1", 80))
    assert no_network


@pytest.mark.parametrize("evil", ["Acme\r\nBcc: x@evil.example", "Acme\nX", "Acme\rX"])
def test_subject_with_line_break_is_rejected(tdir: Path, evil: str) -> None:
    with pytest.raises(RenderError, match="hello/subject.txt: the subject contains a line break"):
        Renderer(tdir).render("hello", {"client": evil})


def test_subject_whitespace_collapsed(tdir: Path) -> None:
    make_stage(tdir, "spaces", "  {{ a }}   and\t{{ b }}  \n", "x", "x")
    out = Renderer(tdir).render("spaces", {"a": "One", "b": "Two"})
    assert out.subject == "One and Two"


def test_text_is_wrapped_and_tidy() -> None:
    url = "https://drive.example/" + "x" * 80
    text = normalize_text(
        "Hi,\n\n\n\n" + "word " * 40 + "\n\n- " + "item " * 30 + "\n  " + url + "\n-- \nSig  \n"
    )
    lines = text.split("\n")
    assert all(len(line) <= 72 or line.strip() == url for line in lines)
    assert "\n\n\n" not in text
    assert url in lines[-5:] or f"  {url}" in lines
    assert "-- " in lines  # the signature separator keeps its space
    assert "Sig" in lines
    # list items keep a hanging indent
    item_lines = [line for line in lines if "item" in line]
    assert item_lines[0].startswith("- ") and all(x.startswith("  ") for x in item_lines[1:])
    assert text.endswith("Sig\n")


def test_filters() -> None:
    # the default locale is en_US (issue 16: a New York client reads month-day and "$")
    assert longdate(dt.date(2027, 1, 29)) == "Friday, January 29, 2027"
    assert longdate(dt.date(2027, 1, 29), locale="en_GB") == "Friday, 29 January 2027"
    assert shortdate(dt.date(2027, 1, 29)) == "Jan 29, 2027"
    assert shortdate(dt.date(2027, 1, 29), locale="en_GB") == "29 Jan 2027"
    assert shortdate(dt.datetime(2027, 1, 29, 23, 0)) == "Jan 29, 2027"
    assert money(14250.0, "USD") == "$14,250.00"
    assert money(1250, "eur") == "€1,250.00"
    assert money(150000, "JPY") == "¥150,000"
    assert money(0.1 + 0.2, "USD") == "$0.30"
    assert money(14250, "EUR", locale="de_DE") == "14.250,00\xa0€"
    assert money(14250, "USD", locale="fr_FR") == "14\u202f250,00\xa0$US"
    with pytest.raises(ValueError):
        money("lots", "USD")
    assert first_name({"name": "María José Álvarez", "first_name": "María José"}) == "María José"
    assert first_name({"name": "Zoë Ødegård"}) == "Zoë"
    assert first_name({"name": "山田太郎"}) == "山田太郎"
    assert first_name("Dr. Jane Smith") == "Jane"
    assert first_name({"name": ""}) == ""
    assert first_name({"name": "Dana Whitfield", "first_name": "Dee"}) == "Dee"


def test_renderer_import_does_not_load_premailer() -> None:
    # interactive commands import the renderer but must not pay for premailer/lxml
    code = (
        "import sys; import mailflow.render.templates, mailflow.render.context; "
        "bad = [m for m in ('premailer', 'lxml', 'cssutils', 'requests') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_environment_is_built_once(tdir: Path) -> None:
    r = Renderer(tdir)
    env = r.env
    r.render("hello", {"client": "A"})
    r.render("hello", {"client": "B"})
    assert r.env is env
    assert r.environment("en") is env  # one environment per language, built once
    assert r.environment("fr") is r.environment("fr")
    assert env.filters["longdate"].__doc__ == longdate.__doc__


def test_wrapping_never_splits_a_date_or_an_amount() -> None:
    line = "- " + "word " * 11 + "delivered 3 Dec 2026 and 14,250.00 USD due on 15 January"
    text = normalize_text(line)
    for phrase in ("3 Dec 2026", "14,250.00 USD", "15 January"):
        assert any(phrase in x for x in text.splitlines()), text


def test_the_locales_known_without_babel_are_what_babel_makes_of_them():
    # parse_locale skips Babel for these (start-up time, issue 18): they must stay exact
    from babel import Locale

    from mailflow.render import locale as loc
    for name in loc._KNOWN:
        assert str(Locale.parse(name)) == name == loc.parse_locale(name)
    assert loc.parse_locale("fr-fr") == "fr_FR"
