"""A draft prebuilt when rendered goes out byte for byte as a full build at send time would.

The MIME boundary is the only random part of a message; each pair of builds below starts from
the same random seed, so any other difference is a difference in the bytes sent.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from mailflow.engine.wire import prebuild, prebuilt_key, wire_message
from mailflow.errors import RenderError

NOW = dt.datetime(2026, 12, 30, 15, 0, tzinfo=dt.UTC)
SENDER = {"name": "Dana Whitfield", "email": "dana@whitfield.example"}
LONG = "A very long subject line about the offboarding of the whole account " * 3
HTML = ("<html><body><p style=\"color:#333;font-family:Arial,sans-serif\">Bonjour Zoë, "
        + "voici le récapitulatif des livrables – " * 40 + "</p></body></html>")
TEXT = "Bonjour Zoë,\n\n" + "Voici le récapitulatif des livrables – " * 40 + "\n"


def record(step: int = 0, **extra) -> dict:
    return {"key": f"e/s/{step}", "engagement": "e", "step": step, "body": "b" * 32,
            "thread_root": "e/s/0" if step else None, "subject": "Plan",
            "to": [{"name": "Zoë Martin-Lefèvre", "email": "zoe@client.example"}],
            "cc": [{"name": "Tom", "email": "tom@client.example"}],
            "message_id": f"<20261230150000.{step:016x}@whitfield.example>",
            "reply_token": "tok", **extra}


ROOT = record(0, sent_at="x")
SIBLINGS = [ROOT, record(1, sent_at="x"), record(2, sent_at="x"), record(3)]
PDF = (("plan.pdf", "application/pdf", b"%PDF-1.7\n\x00\xff" * 300),)
CASES = {
    "first message": (record(0), None, (), True),
    "no cc, no reply token": (record(0, cc=[]), None, (), False),
    "a follow-up with a long References": (record(3), ROOT, (), True),
    "a second message in its thread": (record(1), ROOT, (), True),
    "a long Message-ID domain": (record(0, message_id="<20261230150000.0000000000000001@"
                                                      + "mail." * 12 + "example>"),
                                 None, (), True),
    "a long subject": (record(0, subject=LONG), None, (), True),
    "an international name and domain": (record(0, to=[{"name": "Jürgen Groß",
                                                        "email": "jurgen@bücher.example"}]),
                                         None, (), True),
    "a UTF-8 mailbox (SMTPUTF8)": (record(0, to=[{"name": "Zoë", "email": "zoë@client.example"}]),
                                   None, (), True),
    "with an attachment": (record(0), None, PDF, True),
    "a retry keeps its first Date": (record(0, attempts_at=["2026-12-29T14:00:00+00:00"],
                                            recipients={"zoe@client.example":
                                                        {"outcome": "delivered"}}),
                                     None, (), True),
}


@pytest.mark.parametrize("case", CASES)
def test_a_prebuilt_draft_goes_out_byte_for_byte_as_a_full_build(case):
    msg, root, files, token = CASES[case]
    siblings = SIBLINGS if root else []
    random.seed(7)
    full = wire_message(msg, root, siblings, (HTML, TEXT), SENDER, token, NOW, files)
    random.seed(7)
    kept = prebuild(msg, (HTML, TEXT), SENDER, token, files)
    spliced = wire_message(msg, root, siblings, None, SENDER, token, NOW, prebuilt=kept)
    assert spliced == full
    assert b"Sat, 01 Jan 2000" not in spliced[0]


def test_a_change_to_anything_the_message_is_made_of_gives_another_key():
    base = prebuilt_key(record(0), SENDER, True)
    assert prebuilt_key(record(0), SENDER, True) == base
    for changed in (record(0, subject="Other"), record(0, body="c" * 32), record(0, cc=[]),
                    record(0, attachments=[{"ref": "r"}]), record(0, message_id="<x@y>")):
        assert prebuilt_key(changed, SENDER, True) != base
    assert prebuilt_key(record(0), {**SENDER, "name": "Dana W."}, True) != base
    assert prebuilt_key(record(0), SENDER, False) != base


def test_a_draft_that_cannot_be_built_is_refused_as_a_full_build_refuses_it():
    bad = record(0, to=[{"name": "x", "email": "x@client.example\r\nBcc: a@b.example"}])
    with pytest.raises(RenderError):
        prebuild(bad, (HTML, TEXT), SENDER, True)
