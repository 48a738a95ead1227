"""Authentication-Results from the trusted server only, parsed with authres; mail systems."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow.inbound.authenticity import (
    auth_failures,
    is_mail_system,
    read_trust_headers,
)

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
