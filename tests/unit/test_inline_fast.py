"""mailflow.render.inline gives premailer's bytes, in the cases that tempt a shortcut: selectors
that see the tree's shape (siblings, :first-child, nesting), attribute selectors, media queries
and pseudo-classes, inline styles and !important, derived HTML attributes, floated images, CSS
that comes from data. Each case runs twice, so the second run is served from the memo (the whole
playbook is proven in tests/unit/test_email_quality.py)."""

from __future__ import annotations

import pytest

from mailflow.render import inline
from mailflow.render.inline import inline_css, premailer_inline, shape_inline

HEAD = "<!DOCTYPE html><html><head><meta charset='utf-8'><title>T</title><style>{css}</style>" \
       "</head><body>{body}</body></html>"


def page(css: str, body: str) -> str:
    return HEAD.format(css=css, body=body)


TABLE_CSS = (".data { width: 100%; } .data td { padding: 9px; vertical-align: top; } "
             ".data .num { text-align: right; } .data .overdue { color: #a40e26 } "
             "td { font-size: 15px; line-height: 23px } p { margin: 0 0 16px 0 }")


def rows(*cells: tuple[str, str]) -> str:
    return ("<table class='data' width='600'>"
            + "".join(f"<tr><td class='{c}'>{t}</td><td class='num'>1</td></tr>" for c, t in cells)
            + "</table>")


FAST = {
    "a data table": page(TABLE_CSS, rows(("", "a"), ("overdue", "b"))),
    "the same table, other words": page(TABLE_CSS, rows(("", "zz top"), ("overdue", "é – &nbsp;"))),
    "one row more": page(TABLE_CSS, rows(("", "a"), ("overdue", "b"), ("", "c"))),
    "the same rows, other classes": page(TABLE_CSS, rows(("overdue", "a"), ("", "b"))),
    "nesting decides": page(".a p { color: red } p { margin: 0 }",
                            "<div class='a'><p>x</p></div><p>y</p>"),
    "nesting decides, moved": page(".a p { color: red } p { margin: 0 }",
                                   "<div class='a'><p>x</p><p>y</p></div>"),
    "siblings": page("h1 + p { color: red } h1 ~ p { margin: 0 } p { padding: 1px }",
                     "<p>0</p><h1>t</h1><p>1</p><p>2</p>"),
    "first and last child": page("li:first-child { color: red } li:last-child { color: blue } "
                                 "li { margin: 0 }", "<ul><li>a</li><li>b</li><li>c</li></ul>"),
    "child combinator and ids": page("#main > p { color: red } #main p { margin: 0 } "
                                     "div#main { width: 300px }",
                                     "<div id='main'><p>a</p><div><p>b</p></div></div>"),
    "ids differ": page("#main > p { color: red } #main p { margin: 0 }",
                       "<div id='other'><p>a</p><div><p>b</p></div></div>"),
    "inline styles win": page("p { color: red; margin: 0 } .x { color: green }",
                              "<p style='color: blue'>a</p><p class='x' style='padding:1px'>b</p>"
                              "<p class='x'>c</p>"),
    "important": page("p { color: red !important; margin: 0 } .x { color: green !important }",
                      "<p class='x' style='color: blue'>a</p><p>b</p>"),
    "unset": page("p { color: red } .x { color: unset }", "<p class='x'>a</p><p>b</p>"),
    "derived attributes": page("td { background-color: #abc; width: 120px; height: 10px; "
                               "text-align: center; vertical-align: middle } "
                               ".t { background-color: transparent }",
                               "<table><tr><td width='5'>a</td><td class='t'>b</td></tr></table>"),
    "media queries and pseudo-classes stay behind": page(
        "a { color: #0b57d0 } a:hover { color: red } @media (max-width: 600px) "
        "{ p { font-size: 18px } } p { margin: 0 }", "<p><a href='https://x.example'>x</a></p>"),
    "two style blocks": HEAD.format(css="p { color: red }", body="<p>a</p>").replace(
        "</head>", "<style>p { color: blue } .b { margin: 0 }</style></head>").replace(
        "<p>a</p>", "<p class='b'>a</p>"),
    "an empty style block": page("", "<p class='x'>a</p>"),
    "no style at all": "<html><body><p class='x'>a</p></body></html>",
    "no doctype, no head": "<html><body><style>p{color:red}</style><p>a</p></body></html>",
    "a fragment": "<p class='x'>a</p><style>p{color:red}</style>",
    "Outlook conditional comments": page(
        TABLE_CSS, "<!--[if mso]><table><tr><td><![endif]-->" + rows(("", "a"))
        + "<!--[if mso]></td></tr></table><![endif]--><!-- a note -->"),
    "an image floated": page("img { float: right; width: 40px } .l { float: left }",
                             "<p><img src='cid:a' alt='a'><img class='l' src='cid:b' alt=''></p>"),
    "upper-case tags and classes": page(".Data TD { color: red } .data td { margin: 0 }",
                                        "<TABLE CLASS='Data'><TR><TD>a</TD></TR></TABLE>"),
    "a colour from data": page("p { color: #123456 }", "<p>a</p>"),
    "another colour from data": page("p { color: #654321 }", "<p>a</p>"),
    "a link tag is dropped": page("p { color: red }", "<p>a</p>").replace(
        "<title>", "<link rel='stylesheet' href='https://cdn.example/x.css'><title>"),
    "entities and non-ASCII": page("p { color: red }",
                                   "<p>Zoë &amp; Søn &ndash; 14&nbsp;250,00&nbsp;€ &lt;b&gt;</p>"),
    "an escaped colon (premailer keeps it as a pseudo-class)": page(
        ".a\\:b { color: red }", "<p class='a:b'>a</p>"),
    "a star selector": page("* { margin: 0 } p { color: red }", "<p>a</p>"),
}

FULL = {  # premailer whole: the selectors see more than the shape, or the <style> says more
    "an attribute selector": page("a[href^='mailto'] { color: red } a { margin: 0 }",
                                  "<a href='mailto:x@y.example'>m</a><a href='https://y'>w</a>"),
    "a print stylesheet": HEAD.replace("<style>", "<style media='print'>").format(
        css="p { color: red }", body="<p>a</p>"),
    "a screen stylesheet": HEAD.replace("<style>", "<style media='screen'>").format(
        css="p { color: red }", body="<p>a</p>"),
    "data-premailer ignore": HEAD.replace("<style>", "<style data-premailer='ignore'>").format(
        css="p { color: red }", body="<p>a</p>"),
    "an escaped class": page(".a\\.b { color: red }", "<p class='a.b'>a</p>"),
}


@pytest.mark.parametrize("case", FAST)
def test_the_shape_memo_gives_premailer_s_bytes(case):
    html = FAST[case]
    expected = premailer_inline(html)
    first, again = shape_inline(html), shape_inline(html)
    assert first is not None, "the fast path must serve this case"
    assert first == expected
    assert again == expected


@pytest.mark.parametrize("case", FULL)
def test_what_the_shape_does_not_decide_goes_to_premailer_whole(case):
    html = FULL[case]
    assert shape_inline(html) is None
    before = inline.stats["full"]
    assert inline_css(html) == premailer_inline(html)
    assert inline.stats["full"] == before + 2


def test_a_second_message_of_the_same_shape_is_served_from_the_memo():
    css = TABLE_CSS + " .data .when { white-space: nowrap }"
    first = page(css, rows(("when", "3 Dec 2026"), ("", "Handover")))
    second = page(css, rows(("when", "29 de enero de 2027"), ("", "Entrega final")))
    hits = inline.stats["shape_hit"]
    assert shape_inline(first) == premailer_inline(first)
    assert shape_inline(second) == premailer_inline(second)
    assert inline.stats["shape_hit"] == hits + 1
    assert "29 de enero de 2027" in shape_inline(second)


@pytest.mark.parametrize("html", ["", "   ", "<p>a</p><style>p{color:red}</style>\x00"])
def test_a_document_premailer_cannot_read_fails_as_it_does(html):
    try:
        expected: object = premailer_inline(html)
    except Exception as err:  # noqa: BLE001 - whatever premailer raises, inline_css raises
        with pytest.raises(type(err)):
            inline_css(html)
    else:
        assert inline_css(html) == expected
