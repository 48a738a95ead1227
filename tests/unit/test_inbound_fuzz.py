"""Fuzzing the inbound paths of issues 12 and 14: reports, delivery recipients, unreadable
MIME, and reply-text extraction (never invents a line, never keeps a quoted one)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailflow.inbound import classify
from mailflow.inbound.bounces import DELAYED, DELIVERED, FAILED, REPORTED
from mailflow.inbound.classify import KINDS
from mailflow.inbound.message import parse_inbound
from mailflow.inbound.replytext import extract_reply

_BOUNCE_SEEDS = [p.read_bytes() for p in sorted(
    (Path(__file__).parents[1] / "data" / "corpora" / "sisimai" / "bsd").glob("*.eml"))[::12]]


@st.composite
def _mutated_report(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(_BOUNCE_SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        op = draw(st.sampled_from(["insert", "delete", "nest"]))
        if op == "insert":
            data[pos:pos] = draw(st.sampled_from(
                [b"\r\nAction: delayed\r\n", b"\r\nStatus: 5.1.1\r\n", b"<>", b"@", b"\r\n\r\n",
                 b"Final-Recipient: rfc822; x@y.example\r\n", b"version 2.1.5", b"> "]))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 80))]
        else:
            data[pos:pos] = b'Content-Type: multipart/mixed; boundary="n"\r\n\r\n--n\r\n' * draw(
                st.integers(1, 300))
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_mutated_report())
def test_fuzz_mutated_reports_never_raise_and_stay_consistent(raw):
    got = parse_inbound(raw)
    assert got.kind in KINDS
    assert all(r.action in (FAILED, DELAYED, DELIVERED, REPORTED) for r in got.delivery)
    assert all("@" in r.address and "\n" not in r.address for r in got.delivery)
    if got.bounce is not None:
        assert got.kind == classify.BOUNCE
    if got.kind == classify.DELAY:
        assert got.bounce is None and FAILED not in {r.action for r in got.delivery}


@settings(max_examples=200, deadline=None)
@given(text=st.lists(st.sampled_from([
    "Fine by us.", "", "> quoted", "On Tue, 5 Jan 2027 at 10:02, Dana <d@x.example> wrote:",
    "From: Dana <d@x.example>", "Sent: 5 January 2027 10:02", "-- ", "Sent from my phone",
    "-----Original Message-----", "Yes, the 3rd.", "2027-01-05 10:02 GMT+01:00 D <d@x.example>:",
    ">> deeper", "__", "Thanks,", "Maria",
]), max_size=14).map("\n".join))
def test_the_reply_text_is_only_ever_lines_the_sender_wrote(text):
    reply = extract_reply(text)
    for line in reply.split("\n"):
        assert line.strip() in text  # never invents or rewraps text
        assert not line.lstrip().startswith(">")  # never a quoted line
