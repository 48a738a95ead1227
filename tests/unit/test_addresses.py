"""Addresses as they travel: IDNA domains, SMTPUTF8 local parts, names that fit a header."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailflow.addresses import MAX_NAME, envelope_address, idna_domain, split_address
from mailflow.errors import RenderError
from mailflow.render.compose import address, build_message, recipients


def message(to: list[dict]):  # noqa: ANN201
    return build_message(subject="s", html="<p>h</p>", text="t",
                         sender={"name": "Dana", "email": "dana@whitfield.example"}, to=to,
                         cc=[], message_id="<m@whitfield.example>",
                         date=dt.datetime(2026, 12, 30, tzinfo=dt.UTC), where="engagement e")


def test_an_idn_domain_goes_out_as_punycode_in_headers_and_envelope():
    m = message([{"name": "Käthe", "email": "contact@bücher.example"}])
    raw = m.as_bytes()
    assert b"<contact@xn--bcher-kva.example>" in raw and raw.isascii()
    assert recipients(m) == ["contact@xn--bcher-kva.example"]


def test_a_non_ascii_local_part_is_written_as_utf8_for_an_smtputf8_server():
    m = message([{"name": "Jürgen", "email": "jürgen@bücher.example"}])
    assert "To: Jürgen <jürgen@xn--bcher-kva.example>".encode() in m.as_bytes()
    assert envelope_address("jürgen@bücher.example") == ("jürgen@xn--bcher-kva.example", True)
    assert envelope_address("a@b.example") == ("a@b.example", False)


@pytest.mark.parametrize("bad", ["a b@x.example", "x@", "@x.example", "a@-x-.example",
                                 "a@ex ample.com", "a@xn--bücher.example", "a@b..example"])
def test_what_is_not_an_address_is_refused(bad):
    with pytest.raises(ValueError):
        split_address(bad)
    with pytest.raises(RenderError, match="invalid address"):
        address({"email": bad}, "engagement e: contacts.to")


def test_a_display_name_longer_than_a_header_can_fold_is_refused_when_rendering():
    with pytest.raises(RenderError, match=f"1000 characters long \\(at most {MAX_NAME}\\)"):
        address({"name": "A" * 1000, "email": "a@b.example"}, "engagement e: contacts.to")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=MAX_NAME))
def test_every_accepted_display_name_folds_under_the_smtp_line_limit(name):
    raw = message([{"name": name, "email": "a@b.example"}]).as_bytes()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_idna_2008_not_2003():
    # UTS 46 non-transitional: the German sharp s is kept (IDNA 2003 would map it to "ss")
    assert idna_domain("straße.example") == "xn--strae-oqa.example"


@pytest.mark.parametrize("local", [
    "dana", "mj.alvarez", "a+tag", "o'brien", "x_y-z", "jürgen", "a!#$%&'*+/=?^_`{|}~-b",
    '"quoted"', '"two words"', "a..b", ".a", "a.", "a b", "a@b", "", "(comment)a"])
def test_the_dot_atom_shortcut_agrees_with_the_mail_parser(local):
    # split_address skips email.headerregistry for dot-atoms (start-up time, issue 18)
    from email.errors import HeaderParseError
    from email.headerregistry import Address

    from mailflow.addresses import _DOT_ATOM, _NON_ASCII
    ascii_local = _NON_ASCII.sub("a", local)
    try:
        parsed = Address(addr_spec=ascii_local + "@x.example").username
    except (ValueError, IndexError, HeaderParseError):
        parsed = None
    if _DOT_ATOM.fullmatch(ascii_local):
        assert parsed == ascii_local
    try:
        split_address(f"{local}@x.example")
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == bool(parsed)
