"""parse_inbound against the corpus in tests/data: every file's expectations in expected.toml."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailflow.inbound.classify import KINDS
from mailflow.inbound.message import Inbound, parse_inbound

DATA = Path(__file__).parents[1] / "data"
EXPECTED = tomllib.loads((DATA / "expected.toml").read_text(encoding="utf-8"))
TODAY = date(2027, 1, 5)
CORPUS = sorted(p.name for p in DATA.glob("*.eml"))


def _parse(name: str) -> Inbound:
    today = EXPECTED[name].get("today", TODAY)
    return parse_inbound((DATA / name).read_bytes(), today=today)


def test_every_corpus_file_has_expectations_and_the_corpus_is_broad():
    assert set(CORPUS) == set(EXPECTED)
    assert len(CORPUS) >= 30
    kinds = {EXPECTED[n]["kind"] for n in CORPUS}
    assert kinds == {"human", "auto_reply", "bounce", "unsubscribe"}


@pytest.mark.parametrize("name", CORPUS)
def test_kind_and_reply_text(name):
    want = EXPECTED[name]
    got = _parse(name)
    assert (got.kind, got.text) == (want["kind"], want["text"]), got.kind_reason
    assert got.kind_reason


@pytest.mark.parametrize("name", CORPUS)
def test_headers(name):
    want = EXPECTED[name]
    got = _parse(name)
    assert (got.from_addr or "") == want["from_addr"]
    assert got.subject == want["subject"]
    assert list(got.in_reply_to) == want.get("in_reply_to", [])
    assert list(got.attachments) == want.get("attachments", [])
    assert bool(got.problems) == want["has_problems"], got.problems
    assert "\n" not in got.subject and "\r" not in got.subject
    if got.date is not None:
        assert got.date.utcoffset().total_seconds() == 0
    if got.message_id is not None:
        assert got.message_id.startswith("<") and got.message_id.endswith(">")


@pytest.mark.parametrize("name", CORPUS)
def test_return_date_and_bounce(name):
    want = EXPECTED[name]
    got = _parse(name)
    assert got.return_date == want.get("return_date")
    if "bounce" in want:
        assert got.bounce is not None
        fields = {k: v for k, v in vars(got.bounce).items() if v is not None}
        assert fields == want["bounce"]
    else:
        assert got.bounce is None


def test_bounces_point_at_the_original_sent_message():
    assert _parse("postfix_dsn.eml").bounce.original_message_id == (
        "<20270105.timeline_notice.abc123@whitfield-consulting.example>"
    )
    assert _parse("exchange_dsn.eml").bounce.status == "5.4.1"


def test_kind_reasons_name_the_evidence():
    assert _parse("exchange_ooo.eml").kind_reason == "Auto-Submitted: auto-generated"
    assert _parse("ooo_spanish.eml").kind_reason.startswith("subject 'Respuesta automática")
    assert _parse("postfix_dsn.eml").kind_reason == "DSN report-type=delivery-status"
    assert _parse("qmail_bounce.eml").kind_reason.startswith("failure notice from mailer-daemon")


def test_outlook_suppress_header_alone_does_not_make_an_auto_reply():
    got = _parse("outlook_external_no_thread.eml")
    assert got.kind == "human"


def test_dates_are_aware_utc():
    got = _parse("gmail_reply.eml")
    assert got.date == datetime(2027, 1, 5, 11, 14, 51, tzinfo=UTC)


def test_full_text_keeps_the_quoted_history():
    got = _parse("gmail_reply.eml")
    assert "As agreed, our engagement ends" in got.full_text
    assert "As agreed" not in got.text


def test_undecodable_and_missing_parts_are_reported_not_raised():
    assert "missing Date header" in _parse("missing_headers.eml").problems
    assert any("x-unknown" in p for p in _parse("bogus_charset.eml").problems)
    assert any("8-bit" in p for p in _parse("eight_bit_headers.eml").problems)


def test_a_25_mb_attachment_is_listed_not_decoded_and_parsing_stays_fast():
    import time

    # 76-character base64 lines, 25 MB of them: generated here, never committed.
    lines = (b"QUFB" * 19 + b"\r\n") * (25 * 1024 * 1024 // 76)
    raw = (
        b"From: Priya Raman <priya.raman@acme-corp.example>\r\n"
        b"To: dana@whitfield-consulting.example\r\n"
        b"Subject: Re: Everything we delivered\r\n"
        b"Message-ID: <big@acme-corp.example>\r\n"
        b"Date: Thu, 28 Jan 2027 10:00:00 +0000\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"The full export is attached.\r\n"
        b"--b\r\nContent-Type: application/zip\r\n"
        b'Content-Disposition: attachment; filename="export.zip"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + lines + b"--b--\r\n"
    )
    assert len(raw) > 25_000_000
    started = time.perf_counter()
    got = parse_inbound(raw)
    elapsed = time.perf_counter() - started
    assert got.text == "The full export is attached."
    assert got.attachments == ("export.zip",)
    assert elapsed < 10, f"{elapsed:.1f}s"


def test_garbage_and_empty_input():
    for raw in (b"", b"\x00\xff\xfe", b"\r\n\r\n", b"Subject: =?utf-8?b?!!!?=\r\n\r\nx", b"From:"):
        got = parse_inbound(raw)
        assert isinstance(got, Inbound)
        assert got.kind in KINDS


_SEEDS = [(DATA / name).read_bytes() for name in CORPUS]


@st.composite
def _mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 12))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(
                st.sampled_from([b"\r\n", b"\r\n\r\n", b"=?", b"?=", b"--", b"<", b">", b"\x00"])
                | st.binary(max_size=16)
            )
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[pos:]
        elif op == "splice":
            other = draw(st.sampled_from(_SEEDS))
            data[pos:pos] = other[: draw(st.integers(0, 400))]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_mutated(), today=st.none() | st.dates())
def test_fuzz_mutated_corpus_never_raises(raw, today):
    got = parse_inbound(raw, today=today)
    assert isinstance(got, Inbound)
    assert got.kind in KINDS
    assert "\n" not in got.subject and "\r" not in got.subject
    assert all(isinstance(p, str) and "\n" not in p for p in got.problems)
    # The catch-all must stay a last resort: real defects are handled where they occur.
    assert not any(p.startswith("unparseable message") for p in got.problems), got.problems
