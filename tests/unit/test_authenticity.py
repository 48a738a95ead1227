"""Authentication-Results from the trusted server only, parsed with authres; mail systems."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow.engine.reactions import ReplyFacts, Trust, react
from mailflow.inbound.authenticity import (
    auth_failures,
    is_mail_system,
    read_trust_headers,
)
from mailflow.inbound.message import parse_inbound

TRUSTED = "mx.whitfield.example"


def raw(*headers: str) -> bytes:
    return ("".join(h + "\r\n" for h in headers) + "From: a@b.example\r\nSubject: x\r\n\r\n"
            "hi\r\n").encode()


def test_only_the_trusted_servers_verdict_counts():
    forged = f"Authentication-Results: {TRUSTED.upper()}; dmarc=fail header.from=acme.example"
    h = read_trust_headers(raw(
        "Authentication-Results: relay.acme.example; spf=fail smtp.mailfrom=acme.example",
        forged))
    assert auth_failures(h.auth_results, TRUSTED) == ("dmarc=fail",)
    assert auth_failures(h.auth_results, "other.example") == ()
    assert auth_failures(h.auth_results, None) == ()


def test_every_failing_method_is_named_and_passes_are_not():
    value = (f"{TRUSTED} (version 1); dkim=pass header.d=acme.example; "
             "dkim=fail (bad signature) header.d=acme.example; spf=softfail "
             "smtp.mailfrom=acme.example; dmarc=pass header.from=acme.example; "
             "arc=fail")
    assert auth_failures((value,), TRUSTED) == ("dkim=fail", "spf=softfail")
    assert auth_failures((f"{TRUSTED}; dkim=pass header.d=acme.example; spf=pass "
                          "smtp.mailfrom=acme.example",), TRUSTED) == ()
    assert auth_failures((f"{TRUSTED}; none",), TRUSTED) == ()


def test_a_folded_header_is_read_as_one():
    h = read_trust_headers(raw(f"Authentication-Results: {TRUSTED};\r\n\tspf=pass "
                               "smtp.mailfrom=acme.example;\r\n\tdmarc=fail "
                               "header.from=acme.example"))
    assert auth_failures(h.auth_results, TRUSTED) == ("dmarc=fail",)


def test_an_unreadable_header_from_the_trusted_server_is_a_failure():
    (found,) = auth_failures((f"{TRUSTED}; dmarc=", ), TRUSTED)
    assert found.startswith("unreadable Authentication-Results")


def test_mail_systems_are_null_senders_and_daemons():
    assert is_mail_system("someone@acme.example", "<>")
    assert is_mail_system("MAILER-DAEMON@mx.acme.example", None)
    assert is_mail_system("postmaster@acme.example", "<bounce@acme.example>")
    assert not is_mail_system("eve@evil.example", "<eve@evil.example>")
    assert not is_mail_system(None, None)
    assert read_trust_headers(raw("Return-Path: <>")).return_path == "<>"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sampled_from([TRUSTED, "x", None]))
def test_no_header_value_makes_the_check_raise(value, authserv_id):
    found = auth_failures((f"{TRUSTED}; {value}", value), authserv_id)
    assert isinstance(found, tuple)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_no_raw_bytes_make_the_header_reader_raise(data):
    h = read_trust_headers(data)
    assert isinstance(h.auth_results, tuple)


# -- the whole pure path of a polled message, fuzzed: parse, read trust, react ---------------

CORPUS = sorted((Path(__file__).parents[1] / "data").glob("*.eml"))
VERDICTS = st.sampled_from(["dkim=pass header.d=acme.example", "dmarc=fail header.from=x",
                            "spf=softfail smtp.mailfrom=x", "dkim=fail", "none", "arc=pass",
                            "spf=pass smtp.mailfrom=acme.example", "dmarc=", "=;;"])
AR_LINES = st.lists(st.tuples(st.sampled_from([TRUSTED, "relay.evil.example", ""]),
                              st.lists(VERDICTS | st.text(max_size=20), max_size=3)),
                    max_size=3)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(CORPUS), lines=AR_LINES,
       return_path=st.sampled_from(["<>", "<eve@evil.example>", "", "garbage<"]))
def test_fuzz_a_polled_message_with_forged_headers_is_never_trusted_past_a_failure(
        name, lines, return_path):
    headers = "".join(f"Authentication-Results: {server}; {'; '.join(parts)}\r\n"
                      for server, parts in lines)
    if return_path:
        headers = f"Return-Path: {return_path}\r\n" + headers
    data = headers.encode("utf-8", "surrogateescape") + name.read_bytes()
    inbound = parse_inbound(data, today=dt.date(2027, 1, 5))
    trust_headers = read_trust_headers(data)
    failures = auth_failures(trust_headers.auth_results, TRUSTED)
    facts = ReplyFacts(id="1", kind=inbound.kind, sender=inbound.from_addr, text=inbound.text,
                       return_date=inbound.return_date,
                       bounce_recipient=inbound.bounce.recipient if inbound.bounce else None)
    trust = Trust(from_contact=True, auth_failures=failures,
                  mail_system=is_mail_system(inbound.from_addr, trust_headers.return_path),
                  carries_our_message=True)
    msg = {"key": "e/s/0", "stage": "s", "to": [{"email": facts.bounce_recipient or "a@b.c"}]}
    reaction = react(facts, msg, None, {"id": "e", "contacts": {"to": []}}, trust)
    claims_failure = any(server == TRUSTED and any(
        v.split("=")[0] in ("dkim", "spf", "dmarc") and v.split("=")[1].split()[:1]
        in (["fail"], ["softfail"]) for v in parts if isinstance(v, str) and "=" in v)
        for server, parts in lines)
    if claims_failure:
        assert failures and reaction.changes == () and not reaction.trusted
