"""Addresses at the edges, end to end against aiosmtpd: IDN domains, SMTPUTF8, long names."""

from __future__ import annotations

import pytest

from tests.helpers import DRAFT_AT, SEND_AT, load, make_project
from tests.smtp_server import SmtpServer

IDN = "contact@bücher.example"
UTF8 = "jürgen@bücher.example"


def batch(proj, **to: str) -> None:
    """One engagement per id, its first email sent to the given address, approved and due."""
    rules = proj.root / "rules" / "offboarding.toml"
    rules.write_text(rules.read_text().replace("approval = true", "approval = false", 1))
    files = []
    for eid, address in to.items():
        files.append(str(proj.write_engagement(eid, proj.example(**{
            r'^id = "northwind-2026"': f'id = "{eid}"', r"^client = .*$": f'client = "{eid}"',
            r"mj\.alvarez@northwind\.example": address,
            r"tom\.becker@northwind\.example": f"cc@{eid}.example"}))))
    (proj.root / "engagements" / "example.toml").unlink()
    r = proj.cli("engagement", "add", *files, now=DRAFT_AT)
    assert r.exit_code == 0, r.output
    r = proj.cli("run", now=DRAFT_AT)
    assert r.exit_code == 0, r.output


def states(proj) -> dict[str, str]:
    return {k.split("/")[0]: m["state"] for k, m in load(proj).messages.items()
            if "/timeline_notice/" in k}


@pytest.fixture
def plain_server():
    """A server that does not offer SMTPUTF8."""
    server = SmtpServer(smtputf8=False)
    yield server
    server.stop()


@pytest.fixture
def utf8_server():
    """A server that offers SMTPUTF8."""
    server = SmtpServer(smtputf8=True)
    yield server
    server.stop()


def test_an_idn_domain_is_sent_as_punycode(tmp_path, plain_server):
    proj = make_project(tmp_path, plain_server.port)
    batch(proj, a=IDN)
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 0, r.output
    assert states(proj) == {"a": "sent"}
    (got,) = plain_server.client_mail
    assert sorted(got.rcpt_tos) == ["cc@a.example", "contact@xn--bcher-kva.example"]
    assert b"<contact@xn--bcher-kva.example>" in got.raw


def test_a_non_ascii_mailbox_without_smtputf8_fails_alone_before_any_command(tmp_path,
                                                                            plain_server):
    proj = make_project(tmp_path, plain_server.port)
    batch(proj, a=UTF8, b="x@b.example", c=IDN)
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 1
    line, = [ln for ln in r.output.splitlines() if "a/timeline_notice/0" in ln]
    assert line == ("mailflow: a/timeline_notice/0: failed: not sent: a non-ASCII address "
                    "(jürgen@xn--bcher-kva.example) needs SMTPUTF8, which smtp "
                    f"127.0.0.1:{plain_server.port} does not offer")
    assert "Traceback" not in r.output and "in doubt" not in r.output
    assert states(proj) == {"a": "failed", "b": "sent", "c": "sent"}  # the batch went on
    assert len(plain_server.client_mail) == 2
    # never in doubt, never resent on its own
    r = proj.cli("run", now="2026-12-30T11:00")
    assert len(plain_server.client_mail) == 2 and "in doubt" not in r.output


def test_a_non_ascii_mailbox_goes_out_with_smtputf8(tmp_path, utf8_server):
    proj = make_project(tmp_path, utf8_server.port)
    batch(proj, a=UTF8)
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 0, r.output
    (got,) = utf8_server.client_mail
    assert "jürgen@xn--bcher-kva.example" in got.rcpt_tos
    assert "<jürgen@xn--bcher-kva.example>".encode() in got.raw


def test_a_1000_character_display_name_is_refused_at_add_and_check(tmp_path):
    proj = make_project(tmp_path)
    path = proj.write_engagement("long", proj.example(**{
        r'name = "Tom Becker"': f'name = "{"A" * 1000}"'}))
    r = proj.cli("engagement", "add", str(path))
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        f"mailflow: {path}: contacts.cc[0].name: is 1000 characters long; at most 200 fit in "
        "an email header"]
    r = proj.cli("check")
    assert r.exit_code == 2
    assert f"{path}: contacts.cc[0].name: is 1000 characters long" in r.output
