"""mailflow.render.mime writes what the email package writes, in the cases that tempt a
shortcut: names that need quoting or encoding, UTF-8 mailboxes, IDNA domains, folded headers,
encoded-word look-alikes, threading, attachments (the whole playbook is proven in
tests/unit/test_email_quality.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow.errors import RenderError
from mailflow.render import mime
from tests.helpers import built_both_ways

DATE = dt.datetime(2026, 12, 30, 15, 7, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
SENDER = {"name": "Dana Whitfield", "email": "dana@whitfield.example"}
HTML = "<html><body><p style=\"color:#333\">Bonjour Zoë, " + "voilà – " * 60 + "</p></body></html>"
TEXT = "Bonjour Zoë,\n\n" + "Voici le récapitulatif – " * 30 + "\n\n-- \nDana\n"


def fields(**extra):  # noqa: ANN003, ANN201
    base = dict(subject="Plan", html=HTML, text=TEXT, sender=SENDER,
                to=[{"name": "Jane Smith", "email": "jane@client.example"}],
                cc=[{"name": "Tom", "email": "tom@client.example"}],
                message_id="<20261230150000.0123456789abcdef@whitfield.example>", date=DATE,
                where="engagement e", reply_to="dana+tok@whitfield.example")
    return {**base, **extra}


LONG = "A very long subject line about the offboarding of the whole account " * 3
CASES = {
    "plain": fields(),
    "no cc, no reply-to": fields(cc=[], reply_to=None),
    "a name with a full stop and a comma": fields(to=[{"name": "Smith, Jane Dr.",
                                                        "email": "jane@client.example"}]),
    "a name with quotes and a backslash": fields(to=[{"name": 'Jane "JJ" \\ Smith',
                                                       "email": "jane@client.example"}]),
    "no name": fields(to=[{"name": "", "email": "jane@client.example"}]),
    "accented names": fields(to=[{"name": "María José Álvarez", "email": "mj@client.example"}],
                             cc=[{"name": "Zoë Martin-Lefèvre", "email": "zoe@client.example"}]),
    "an IDNA domain": fields(to=[{"name": "Jürgen Groß", "email": "jurgen@bücher.example"}]),
    "a UTF-8 mailbox": fields(to=[{"name": "Zoë", "email": "zoë@client.example"}]),
    "a quoted local part": fields(to=[{"name": "Jo", "email": '"jo smith"@client.example'}]),
    "many recipients, folded": fields(to=[{"name": f"Person Number {i}",
                                           "email": f"person{i}@client.example"}
                                          for i in range(6)]),
    "a long subject, folded": fields(subject=LONG.strip()),
    "a non-ASCII subject": fields(subject="Récapitulatif de la passation – Northwind"),
    "an encoded-word look-alike subject": fields(subject="=?utf-8?q?Plan?= for you"),
    "a subject with two spaces": fields(subject="Plan  for  you"),
    "a long Message-ID": fields(message_id="<20261230150000.0000000000000001@"
                                           + "mail." * 12 + "example>"),
    "a follow-up": fields(in_reply_to="<a@whitfield.example>",
                          references=("<a@whitfield.example>", "<b@whitfield.example>")),
    "a long References": fields(in_reply_to="<c@whitfield.example>",
                                references=tuple(f"<2026123015000{i}.{i:016x}@whitfield.example>"
                                                 for i in range(5))),
    "an attachment": fields(attachments=(("plan.pdf", "application/pdf", b"%PDF\x00\xff" * 99),)),
    "CRLF in the body": fields(text="one\r\ntwo\rthree\n", html="<p>a</p>\r\n<p>b</p>"),
    "an empty body": fields(text="", html=""),
    "a line of dots and From": fields(text=".\nFrom here\n" + "x" * 200 + "\n"),
}


@pytest.mark.parametrize("case", CASES)
def test_the_fast_writer_gives_the_email_package_s_bytes(case):
    package, fast = built_both_ways(**CASES[case])
    assert fast == package


def test_a_plain_message_is_written_without_the_package_s_header_machinery(monkeypatch):
    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the package was asked to build or fold a plain message")

    monkeypatch.setattr(mime, "build_message", refuse)
    monkeypatch.setattr(mime, "_folded", refuse)
    raw, envelope = mime.message_bytes(**fields())
    assert raw.startswith(b"From: Dana Whitfield <dana@whitfield.example>\r\n")
    assert envelope == ["jane@client.example", "tom@client.example"]


@pytest.mark.parametrize("bad", [
    fields(subject="Plan\r\nBcc: x@y.example"),
    fields(to=[{"name": "x", "email": "x@client.example\r\nBcc: a@b.example"}]),
    fields(cc=[{"name": "x", "email": "not an address"}]),
    fields(attachments=(("../plan.pdf", "application/pdf", b"x"),)),
])
def test_what_build_message_refuses_the_fast_writer_refuses(bad):
    with pytest.raises(RenderError):
        mime.message_bytes(**bad)


def _package_qp(content: str) -> str:
    """A part's quoted-printable body as the email package encodes it (quoprimime), CRLF ends."""
    import re
    from email import quoprimime

    lines = content.encode("utf-8").splitlines()
    payload = quoprimime.body_encode((b"\n".join(lines) + b"\n").decode("latin-1"), 76)
    split = re.split(r"\r\n|\r|\n", payload)
    return "".join(f"{line}\r\n" for line in split[:-1]) + split[-1]


# what tempts a shortcut: "=", escapes at the 76th column, whitespace ending a line, controls
# that str.splitlines would take for line breaks, multi-byte characters
_QP_TEXT = st.text(alphabet=st.sampled_from(list(" \t\r\n=ab.-é€\x00\x0b\x0c\x1c\x85\u2028\xa0😀")))


@settings(max_examples=400, deadline=None)
@given(prefix=st.integers(min_value=0, max_value=80), text=_QP_TEXT)
def test_quoted_printable_is_the_package_s(prefix, text):
    content = "x" * prefix + text  # lines of every length around the fold
    assert mime._qp(content) == _package_qp(content)


@pytest.mark.parametrize("around", [b"", b"x", b"\r", b"--", b"--\r"])
def test_the_boundary_is_the_package_s_even_when_the_text_holds_it(around):
    import random
    from email.generator import BytesGenerator

    random.seed(7)
    drawn = BytesGenerator._make_boundary().encode()  # the boundary the next draw gives
    text = b"a\n--" + drawn + around + b"\nb\n--" + drawn + b".0\n"
    for seed in (7, 8):
        random.seed(seed)
        package = BytesGenerator._make_boundary(text)
        random.seed(seed)
        assert mime._boundary(text) == package
