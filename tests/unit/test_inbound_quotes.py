"""Reply headers in many languages, answers below the quote, format=flowed (issue 14)."""

from __future__ import annotations

import pytest

from mailflow.inbound.message import _unflow, parse_inbound
from mailflow.inbound.quoteheaders import is_attribution, is_separator
from mailflow.inbound.replytext import extract_reply

OLD = "> Can we move the handover to the 1st?"


@pytest.mark.parametrize("header", [
    "2014-03-20 8:48 GMT+01:00 Dana Whitfield <dana@x.example>:",
    "El dia 20/03/2014 a les 8:48, Dana <dana@x.example> ha escrit:",
    "Dnia 20 marca 2014 08:48 Dana <dana@x.example> napisał(a):",
    "Den 20. mar. 2014 kl. 08.48 skrev Dana <dana@x.example>:",
    "Op 20 mrt. 2014 om 08:48 heeft Dana <dana@x.example> het volgende geschreven:",
    "Il giorno gio 20 mar 2014 alle ore 08:48 Dana <dana@x.example> ha scritto:",
    "Em qui., 20 de mar. de 2014 às 08:48, Dana <dana@x.example> escreveu:",
    "Dana <dana@x.example> kirjoitti 20.3.2014 kello 8.48:",
    "20 марта 2014 г., в 8:48, Dana <dana@x.example> написал:",
    "在 2014年3月20日 上午8:48，Dana <dana@x.example> 写道：",
    "2014年3月20日(木) 8:48 Dana <dana@x.example>:",
    "2014년 3월 20일 (목) 오전 8:48, Dana <dana@x.example>님이 작성:",
    "---- Dana Whitfield wrote ----",
    "At 6/16/2016 08:32 PM, you wrote:",
    "On Thu, Mar 20, 2014 at 8:48 AM, Dana<dana@x.example>wrote:",
    "Quoting Dana Whitfield <dana@x.example>:",
    "Dana Whitfield <dana@x.example> wrote on 01/05/2027 10:02:40 AM:",
    "Am 05.01.27 um 10:02 schrieb Dana:",
    "Pada tanggal 5 Jan 2027 10.02, Dana <dana@x.example> menulis:",
    "في الثلاثاء، 5 يناير 2027 10:02 ص كتب Dana <dana@x.example>:",
])
def test_reply_headers_in_many_languages_end_the_reply(header):
    assert is_attribution(header)
    assert extract_reply(f"Fine by us.\n\n{header}\n\n{OLD}\n") == "Fine by us."
    # not quoted: everything below the header is the earlier message
    assert extract_reply(f"Fine by us.\n\n{header}\n\nThe old text.\n") == "Fine by us."


@pytest.mark.parametrize("block", [
    "Fra: Dana <dana@x.example>\nSendt: 20. marts 2014 08:48\nTil: Client\nEmne: Handover",
    "Da: Dana <dana@x.example>\nData: giovedì 20 marzo 2014 08:48\nA: Client\nOggetto: Handover",
    "От: Dana <dana@x.example>\nОтправлено: 20 марта 2014 г. 8:48\nКому: Client\nТема: Handover",
    "De : Dana <dana@x.example>\nÀ : Client\nEnvoyé le : Jeudi 20 mars 2014 8h48\nObjet : Hi",
])
def test_outlook_header_blocks_in_other_languages_end_the_reply(block):
    assert extract_reply(f"Fine by us.\n\n{block}\n\nThe old text.\n") == "Fine by us."


@pytest.mark.parametrize("prose", [
    "Here is what John wrote:\n- item one\n- item two",
    "I wrote: the handover is done.",
    "From: our side, everything is done.\nSent: the last files yesterday.",
    "Date: Wednesday 3, October 2011\nTime: 7 : 00am\nAddress: 130 Fox St",
    "Please write to bob@client.example before 20.03.2014:\nthe invoice is ready.",
    "The server at 142.250.1.27 said: <ops@client.example>: ok",
    "On the other hand, we wrote to them in 2014 about it.",
    "Date: the 3rd works for us.\nTo: whom it may concern, all good.",
    "The quote you sent on 5.1.2027 says:\n- item A 100 EUR\n- item B 200 EUR",
    "Sent from the office, not my phone: all good.",
    "Here is another email\n\nSent from my desk, is much easier then my mobile phone.",
    "We wrote to the bank on 5 Jan 2027: no answer yet.",
])
def test_prose_that_looks_like_a_header_is_kept(prose):
    assert extract_reply(prose) == prose


def test_separators_need_a_known_phrase():
    assert is_separator("-----Oprindelig meddelelse-----")
    assert is_separator("-----Reply Message-----")
    assert not is_separator("------------- Enter Feedback Below -------------")


def test_answers_above_between_and_below_the_quote_are_all_kept():
    body = ("Hi Dana,\n\nOn Thu, Mar 20, 2014 at 8:48 AM, Dana <dana@x.example> wrote:\n"
            "> Can we move the handover?\n\nYes, to the 3rd.\n\n> Is the invoice paid?\n\n"
            "Paid yesterday.\n\n-- \nMaria\n")
    assert extract_reply(body) == "Hi Dana,\n\nYes, to the 3rd.\n\nPaid yesterday."


def test_a_quote_wrapped_without_its_marker_is_not_an_answer():
    body = ("On Thu, Mar 20, 2014 at 8:48 AM, Dana <dana@x.example> wrote:\n"
            "> Can we move the handover to the 3rd? It would help us a lot with the\n"
            "planning of the last week.\n> Thanks\n\nYes.\n")
    assert extract_reply(body) == "Yes."


def test_format_flowed_paragraphs_end_where_the_quote_depth_changes():
    text = "> Hi, can we move \n> the handover? \nHello Dana,\nyes we \ncan.\n"
    want = "> Hi, can we move the handover? \nHello Dana,\nyes we can.\n"
    assert _unflow(text, delsp=False) == want


def test_a_flowed_reply_under_a_quote_ending_in_a_space_is_not_lost():
    raw = (b"From: c@client.example\r\nTo: d@x.example\r\nSubject: Re: x\r\n"
           b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
           b"On Thu, Mar 20, 2014 at 8:48 AM, Dana <d@x.example> wrote:\r\n> Hi \r\nHello\r\n")
    assert parse_inbound(raw).text == "Hello"


def test_a_mailing_list_footer_is_not_reply_text():
    body = "Thanks, done.\n\n__\nriak-users mailing list\nriak-users@lists.example\n"
    assert extract_reply(body) == "Thanks, done."


def test_invisible_marks_around_outlook_headers_are_ignored():
    block = "От: Alexander\nОтправлено: \u200eчетверг\u200e, \u200e26\u200e июня 2014 г. 15:05"
    assert extract_reply(f"Hi. I am fine.\n\n{block}\n\nHello!") == "Hi. I am fine."


def test_html_answers_below_a_cited_quote_are_kept():
    html = ('<div>Hi Dana,</div><div class="moz-cite-prefix">On 26.06.2014 14:41, Dana wrote:'
            '<br></div><blockquote type="cite"><div>Can we move it?</div></blockquote>'
            '<div>Yes, to the 3rd.</div><blockquote type="cite">Is it paid?</blockquote>'
            '<p>Paid yesterday.</p>')
    raw = ("From: c@client.example\r\nTo: d@x.example\r\nSubject: Re: x\r\n"
           "Content-Type: text/html; charset=utf-8\r\n\r\n" + html).encode()
    assert parse_inbound(raw).text == "Hi Dana,\n\nYes, to the 3rd.\n\nPaid yesterday."


def test_mobile_signatures_end_the_reply_but_a_sentence_about_sending_does_not():
    body = ("Yes, the 3rd.\n\nSent from my Android phone with K-9 Mail. Please excuse my "
            "brevity.\n\nOn 9 Jan 2027, at 2:47, Dana <d@x.example> wrote:\n> Can we?\n")
    assert extract_reply(body) == "Yes, the 3rd."
    prose = "Here is another email\n\nSent from my desk, is much easier then my mobile phone."
    assert extract_reply(prose) == prose
