"""Hostile mail at the parser: hidden HTML, several authors, forged Authentication-Results."""

from __future__ import annotations

import pytest

from mailflow.inbound.authresults import passed_dkim_or_dmarc
from mailflow.inbound.htmltext import html_to_text
from mailflow.inbound.message import parse_inbound

SERVER = "mx.w.example"


@pytest.mark.parametrize("hidden", [
    '<div style="display:none">unsubscribe</div>',
    '<div style="color:red; DISPLAY : NONE !important">unsubscribe</div>',
    '<span style="visibility:hidden">unsubscribe</span>',
    '<span style="font-size:0px;">unsubscribe</span>',
    '<span style="font-size: 0">unsubscribe</span>',
    '<div style="max-height:0;overflow:hidden">unsubscribe</div>',
    '<span style="opacity:0">unsubscribe</span>',
    "<p hidden>unsubscribe</p>",
    '<div style="display:none"><div>un</div><p>subscribe<br>unsubscribe</div>',
    '<span style="color:#fff;background-color:#FFFFFF">unsubscribe</span>',
    '<span style="background: white; color: rgb(255, 255, 255)">unsubscribe</span>',
    '<font style="color:#123456;background:#123456 none">unsubscribe</font>',
])
def test_text_a_reader_never_sees_is_not_extracted(hidden):
    text = html_to_text(f"<p>Thanks, all good.</p>{hidden}<p>Maria</p>")
    assert text == "Thanks, all good.\n\nMaria"


def test_visible_styles_and_self_closed_hidden_elements_keep_the_text():
    html = ('<span style="font-size:10px">small</span> <span style="opacity:0.5">faint</span>'
            '<div style="display:none"/><p>after</p>')
    assert html_to_text(html) == "small faint\n\nafter"


def test_coloured_text_is_kept_unless_drawn_in_its_own_background():
    html = ('<td style="background:#000"><span style="color:#fff">white on black</span></td>'
            '<span style="color:white">white on the page</span> '
            '<span style="color:#fff;background-color:#000">contrast</span> '
            '<span style="border-color:#fff;color:#eee;background:#fff">near white</span>')
    assert html_to_text(html) == "white on black\nwhite on the page contrast near white"


def test_an_html_only_reply_with_a_hidden_opt_out_is_an_ordinary_reply():
    raw = (b"From: mj@northwind.example\r\nSubject: Re: plan\r\nMessage-ID: <h@n>\r\n"
           b"Content-Type: text/html\r\n\r\n<p>Thanks</p>"
           b"<div style='display:none'>unsubscribe</div>")
    parsed = parse_inbound(raw)
    assert parsed.kind == "human" and parsed.text == "Thanks"


@pytest.mark.parametrize("from_lines, authors", [
    (b"From: mj@northwind.example", ("mj@northwind.example",)),
    (b"From: mj@northwind.example\r\nFrom: eve@evil.example",
     ("mj@northwind.example", "eve@evil.example")),
    (b"From: MJ <mj@northwind.example>, eve@evil.example",
     ("mj@northwind.example", "eve@evil.example")),
])
def test_every_author_in_from_is_kept_and_more_than_one_is_a_problem(from_lines, authors):
    parsed = parse_inbound(from_lines + b"\r\nMessage-ID: <a@b>\r\n\r\nhello\r\n")
    assert parsed.from_addr == "mj@northwind.example"
    assert parsed.from_addrs == authors
    assert any("From addresses" in p for p in parsed.problems) == (len(authors) > 1)


def message(*results: str) -> bytes:
    head = "".join(f"Authentication-Results: {r}\r\n" for r in results)
    return f"{head}From: dana@w.example\r\n\r\napprove 1\r\n".encode()


@pytest.mark.parametrize("results, why", [
    ((f"{SERVER}; dkim=none; dmarc=none header.from=w.example",
      f"{SERVER}; dkim=pass header.d=w.example; dmarc=pass header.from=w.example"),
     "disagree (dmarc=none/pass)"),
    ((f"{SERVER}; dkim=none; spf=pass smtp.mailfrom=w.example",
      f"{SERVER}; dkim=pass header.d=w.example"), "disagree (dkim=none/pass)"),
    ((f"{SERVER}; dkim=fail header.d=w.example",
      f"{SERVER}; dkim=pass header.d=w.example"), "disagree (dkim=fail/pass)"),
])
def test_a_pass_beside_another_verdict_of_the_trusted_server_proves_nothing(results, why):
    ok, reason = passed_dkim_or_dmarc(message(*results), SERVER, "w.example")
    assert not ok and why in reason


def test_milters_writing_one_header_each_still_pass():
    ok, reason = passed_dkim_or_dmarc(message(
        f"{SERVER}; dkim=pass header.d=w.example; dkim=fail header.d=list.example",
        f"{SERVER}; dmarc=pass header.from=w.example",
        f"{SERVER}; spf=pass smtp.mailfrom=w.example"), SERVER, "w.example")
    assert ok, reason


def test_a_megabyte_of_encoded_words_is_read_in_linear_time_up_to_a_cap():
    # email.header.decode_header is quadratic: 100,000 words took 12 s, 500,000 minutes
    words = b"=?utf-8?q?a?= " * 500_000
    parsed = parse_inbound(b"From: =?utf-8?q?x?= " + words + b"<mj@northwind.example>\r\n"
                           b"Subject: " + words + b"\r\nMessage-ID: <a@b>\r\n\r\nhello\r\n")
    assert parsed.from_addr == "mj@northwind.example" and parsed.text == "hello"
    assert set(parsed.subject) == {"a"} and len(parsed.subject) < 16_384
    assert any("subject header of" in p for p in parsed.problems)


def test_escape_sequences_and_controls_are_removed_from_what_a_sender_wrote():
    from mailflow.inbound.headers import printable
    assert printable("a\x1b[1;31mb\x1b[0m\tc\x1b]0;title\x07d\x1b]52;c;eA==\x1b\\e\x00\x9b2Jf\n") \
        == "ab\tcdef\n"
    assert printable("plain text\nkept") == "plain text\nkept"
    parsed = parse_inbound(b"From: \"M \x1b]0;x\x07\" <mj@northwind.example>\r\nSubject: a\x1b[2Jb"
                           b"\r\nMessage-ID: <e@n>\r\n\r\nhi \x1b[31mthere\x1b[0m\r\n")
    assert (parsed.from_name, parsed.subject, parsed.text) == ("M", "ab", "hi there")


def test_an_address_with_a_control_character_is_no_sender_rather_than_a_cleaned_one():
    parsed = parse_inbound(b"From: <mj\x01@northwind.example>\r\nMessage-ID: <c@n>\r\n\r\nstop\r\n")
    assert parsed.from_addr is None and parsed.from_addrs == ()
    assert "missing or unparseable From header" in parsed.problems
