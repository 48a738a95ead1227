"""SentIndex: replies and bounces tied to the sent message they answer, and how."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailflow.inbound.matching import Match, SentIndex, SentRef, normalize_subject
from mailflow.inbound.message import parse_inbound

DATA = Path(__file__).parents[1] / "data"
DOMAIN = "whitfield-consulting.example"
PRIYA = "priya.raman@acme-corp.example"


def _ref(key: str, stage: str, suffix: str, subject: str, **extra) -> SentRef:
    fields = {
        "key": key,
        "message_id": f"<2027.{stage}.{suffix}@{DOMAIN}>",
        "reply_token": None,
        "recipients": (PRIYA, "tom.baker@acme-corp.example"),
        "subject": subject,
        "engagement": "acme",
    }
    fields.update(extra)
    return SentRef(**fields)


SENT = [
    _ref(
        "acme/timeline_notice/1",
        "timeline_notice",
        "x",
        "Offboarding timeline for Acme Corp",
        message_id=f"<20270105.timeline_notice.abc123@{DOMAIN}>",
        reply_token="k3j9x2ab7q",
    ),
    _ref(
        "acme/deliverables_recap/1",
        "deliverables_recap",
        "x",
        "Everything we delivered for Acme Corp",
        message_id=f"<20270112.deliverables_recap.def456@{DOMAIN}>",
    ),
    _ref(
        "acme/access_revocation/1",
        "access_revocation",
        "x",
        "Access revocation for Acme Corp",
        message_id=f"<20270126.access_revocation.jkl012@{DOMAIN}>",
    ),
    _ref(
        "acme/feedback_request/1",
        "feedback_request",
        "x",
        "Feedback on our work together",
        message_id=f"<20270202.feedback_request.mno345@{DOMAIN}>",
    ),
]


def _match(name: str, sub_address: bool = True) -> Match | None:
    return SentIndex(SENT, sub_address=sub_address).match(parse_inbound((DATA / name).read_bytes()))


@pytest.mark.parametrize(
    ("name", "key", "how"),
    [
        ("gmail_reply.eml", "acme/timeline_notice/1", "in-reply-to"),
        ("outlook_desktop.eml", "acme/access_revocation/1", "in-reply-to"),
        ("gmail_signature.eml", "acme/deliverables_recap/1", "in-reply-to"),
        ("apple_mail.eml", "acme/feedback_request/1", "in-reply-to"),
        ("forward_nested_rfc822.eml", "acme/timeline_notice/1", "references"),
        ("reply_token.eml", "acme/timeline_notice/1", "reply-token"),
        ("outlook_external_no_thread.eml", "acme/timeline_notice/1", "sender+subject"),
        ("outlook_html_only.eml", "acme/access_revocation/1", "sender+subject"),
        ("postfix_dsn.eml", "acme/timeline_notice/1", "bounce-original"),
        ("exchange_ooo.eml", "acme/timeline_notice/1", "in-reply-to"),
    ],
)
def test_corpus_replies_match(name, key, how):
    assert _match(name) == Match(key=key, engagement="acme", how=how)


def test_unrelated_mail_does_not_match():
    assert _match("missing_headers.eml") is None
    assert _match("gmail_german_latin1_b64.eml") is None  # another engagement's thread


def test_reply_tokens_are_used_only_with_sub_addressing():
    assert _match("reply_token.eml", sub_address=False) is None


def test_references_are_tried_newest_first():
    inbound = parse_inbound(
        b"From: priya.raman@acme-corp.example\r\nSubject: x\r\n"
        b"References: <20270105.timeline_notice.abc123@whitfield-consulting.example>\r\n"
        b" <unknown@elsewhere.example>\r\n"
        b" <20270112.deliverables_recap.def456@whitfield-consulting.example>\r\n\r\nok\r\n"
    )
    found = SentIndex(SENT).match(inbound)
    assert found == Match("acme/deliverables_recap/1", "acme", "references")


def test_in_reply_to_wins_over_references_and_token():
    inbound = dataclasses.replace(
        parse_inbound((DATA / "gmail_reply.eml").read_bytes()),
        references=(f"<20270112.deliverables_recap.def456@{DOMAIN}>",),
        to=(f"dana+k3j9x2ab7q@{DOMAIN}",),
    )
    assert SentIndex(SENT, sub_address=True).match(inbound).how == "in-reply-to"


def test_sender_subject_picks_the_most_recent_send():
    older = _ref("acme/reminder/1", "reminder", "a", "Please confirm the end date")
    newer = _ref("acme/reminder/2", "reminder", "b", "Please confirm the end date")
    inbound = dataclasses.replace(
        parse_inbound((DATA / "outlook_external_no_thread.eml").read_bytes()),
        subject="AW: WG: [EXTERNAL] please confirm  the END date",
    )
    assert SentIndex([older, newer]).match(inbound).key == "acme/reminder/2"
    stamped = [
        dataclasses.replace(newer, sent_at=datetime(2027, 1, 1, tzinfo=UTC)),
        dataclasses.replace(older, sent_at=datetime(2027, 1, 8, tzinfo=UTC)),
    ]
    assert SentIndex(stamped).match(inbound).key == "acme/reminder/1"


def test_sender_must_be_a_recipient_of_the_sent_message():
    inbound = dataclasses.replace(
        parse_inbound((DATA / "outlook_external_no_thread.eml").read_bytes()),
        from_addr="someone@else.example",
    )
    assert SentIndex(SENT).match(inbound) is None


def test_bounce_without_known_original_falls_back_to_threading_headers():
    # exchange_dsn returns a message not in SENT, but its In-Reply-To names no sent one either
    assert _match("exchange_dsn.eml") is None
    ref = _ref(
        "becker/support_offer/1",
        "support_offer",
        "x",
        "Post-engagement support",
        message_id=f"<20270119.support_offer.ghi789@{DOMAIN}>",
        engagement="becker",
    )
    inbound = parse_inbound((DATA / "exchange_dsn.eml").read_bytes())
    assert SentIndex([ref]).match(inbound) == Match(
        "becker/support_offer/1", "becker", "bounce-original"
    )


@pytest.mark.parametrize(
    "subject",
    [
        "Offboarding timeline",
        "Re: Offboarding timeline",
        "RE: RE: Offboarding timeline",
        "Fwd: Re: Offboarding timeline",
        "AW: WG: Offboarding timeline",
        "SV: Antw: Offboarding timeline",
        "Réf : TR: Offboarding timeline",
        "RV: Enc: Offboarding timeline",
        "Re\u00a0: Offboarding timeline",
        "[EXTERNAL] RE: Offboarding   timeline ",
        "RE: [External] Re[2]: OFFBOARDING timeline",
    ],
)
def test_subject_normalization(subject):
    assert normalize_subject(subject) == "offboarding timeline"


def test_subject_words_that_look_like_prefixes_stay():
    assert normalize_subject("Refund for the last invoice") == "refund for the last invoice"
    assert normalize_subject("Tr: ") == ""


def test_index_scales_with_dictionary_lookups():
    many = [
        _ref(f"e{i}/s/1", "s", str(i), f"Subject {i}", recipients=(f"c{i}@x.example",))
        for i in range(20_000)
    ]
    index = SentIndex(many)
    inbound = parse_inbound(b"From: c19999@x.example\r\nSubject: Re: Subject 19999\r\n\r\nok")
    assert index.match(inbound).key == "e19999/s/1"
