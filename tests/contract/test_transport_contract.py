"""One contract for every Transport: SMTP against a real aiosmtpd, and the in-memory one.

Each test says what a transport must report, in neutral per-recipient terms, for a server
behaviour; a harness per implementation makes the server behave so.
"""

from __future__ import annotations

import pytest

from mailflow.config.settings import ServerConfig
from mailflow.engine.outcomes import Delivery, Outcome, Transport
from mailflow.errors import MailflowError
from mailflow.transport.memory import MemoryTransport
from mailflow.transport.sink import free_port
from mailflow.transport.smtp import SmtpTransport
from tests.smtp_server import SmtpServer

SENDER = "dana@whitfield.example"
TO, CC = "mj@northwind.example", "tom@northwind.example"


def raw_message(to: str = TO, subject: str = "Timeline") -> bytes:
    """A small message as the engine would hand it over."""
    return (f"From: Dana <{SENDER}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <m1@whitfield.example>\r\n\r\nHello.\r\n").encode()


class SmtpHarness:
    """aiosmtpd on 127.0.0.1, told how to answer."""

    name = "smtp"

    def __init__(self, smtputf8: bool = False) -> None:
        self.server = SmtpServer(smtputf8=smtputf8)  # aiosmtpd offers it unless told not to
        self.cfg = ServerConfig(host="127.0.0.1", port=self.server.port, security="none",
                                timeout=10)

    def transport(self) -> Transport:
        return SmtpTransport(self.cfg)

    def refuse_recipient(self, rcpt: str, outcome: Outcome) -> str:
        reply = "452 4.2.2 mailbox full" if outcome is Outcome.TEMPORARY else \
            "550 5.1.1 user unknown"
        self.server.behave(rcpt_replies={rcpt: reply})
        return reply

    def refuse_message(self, outcome: Outcome) -> str:
        reply = "451 4.3.0 try later" if outcome is Outcome.TEMPORARY else "554 5.7.1 spam"
        self.server.behave(data_reply=reply)
        return reply

    def lose_after_data(self) -> None:
        self.server.behave(drop_after_data=True)

    def go_down(self) -> None:
        # a port nobody listens on
        self.cfg = ServerConfig(host="127.0.0.1", port=free_port(), security="none", timeout=5)

    def received(self) -> list[tuple[list[str], bytes]]:
        return [(r.rcpt_tos, r.raw) for r in self.server.received]

    def close(self) -> None:
        self.server.stop()


class MemoryHarness:
    """The in-memory transport, scripted."""

    name = "memory"

    def __init__(self, smtputf8: bool = False) -> None:
        self.memory = MemoryTransport()
        if smtputf8:
            self.memory.extensions["smtputf8"] = ""

    def transport(self) -> Transport:
        return self.memory

    def refuse_recipient(self, rcpt: str, outcome: Outcome) -> str:
        reply = "452 mailbox full" if outcome is Outcome.TEMPORARY else "550 user unknown"
        self.memory.answer(rcpt, outcome, reply, address_refused=outcome is Outcome.PERMANENT)
        return reply

    def refuse_message(self, outcome: Outcome) -> str:
        reply = "451 try later" if outcome is Outcome.TEMPORARY else "554 spam"
        self.memory.answer_message(outcome, reply)
        return reply

    def lose_after_data(self) -> None:
        self.memory.answer_message(Outcome.IN_DOUBT, "connection lost after the message was sent")

    def go_down(self) -> None:
        self.memory.down = "connection refused"

    def received(self) -> list[tuple[list[str], bytes]]:
        return [(a.recipients, a.raw) for a in self.memory.accepted]

    def close(self) -> None:
        pass


@pytest.fixture(params=[pytest.param("smtp", marks=pytest.mark.servers), "memory"])
def harness(request):
    """Every Transport implementation; the SMTP one runs against a real server."""
    h = SmtpHarness() if request.param == "smtp" else MemoryHarness()
    yield h
    h.close()


@pytest.fixture(params=[pytest.param("smtp", marks=pytest.mark.servers), "memory"])
def utf8_harness(request):
    """Every Transport implementation, with a server that offers SMTPUTF8."""
    h = SmtpHarness(smtputf8=True) if request.param == "smtp" else MemoryHarness(smtputf8=True)
    yield h
    h.close()


def send(h, raw: bytes = b"", rcpts: list[str] | None = None) -> Delivery:
    t = h.transport()
    try:
        t.connect()
        return t.send(raw or raw_message(), SENDER, rcpts or [TO, CC])
    finally:
        t.close()


def test_it_is_a_transport(harness):
    assert isinstance(harness.transport(), Transport)


def test_every_recipient_delivered_once(harness):
    got = send(harness)
    assert got.having(Outcome.DELIVERED) == [TO, CC]
    assert [sorted(r) for r, _ in harness.received()] == [sorted([TO, CC])]


@pytest.mark.parametrize("outcome", [Outcome.TEMPORARY, Outcome.PERMANENT])
def test_a_refused_recipient_is_told_apart_and_the_others_get_it(harness, outcome):
    reply = harness.refuse_recipient(CC, outcome)
    got = send(harness)
    assert got.having(Outcome.DELIVERED) == [TO]
    assert got.recipients[CC].outcome is outcome and got.recipients[CC].reply == reply
    assert got.recipients[CC].address_refused is (outcome is Outcome.PERMANENT)
    assert [r for r, _ in harness.received()] == [[TO]]


@pytest.mark.parametrize("outcome", [Outcome.TEMPORARY, Outcome.PERMANENT])
def test_a_refused_message_is_refused_for_everyone_and_never_as_an_address(harness, outcome):
    reply = harness.refuse_message(outcome)
    got = send(harness)
    assert got.having(outcome) == [TO, CC]
    assert not any(o.address_refused for o in got.recipients.values())
    assert got.reply == reply and got.summary == reply
    assert harness.received() == []


def test_a_connection_lost_after_the_data_is_in_doubt(harness):
    harness.lose_after_data()
    got = send(harness)
    assert got.having(Outcome.IN_DOUBT) == [TO, CC]
    assert "connection lost after the message was sent" in got.reply


def test_a_server_that_cannot_be_reached_raises_a_mailflow_error_and_nothing_is_sent(harness):
    harness.go_down()
    t = harness.transport()
    with pytest.raises(MailflowError):
        t.connect()
    t.close()
    t.close()  # idempotent


def test_probe_tells_what_the_server_offers(harness, utf8_harness):
    t = harness.transport()
    assert "smtputf8" not in t.probe()
    t.close()
    t = utf8_harness.transport()
    assert "smtputf8" in t.probe()
    t.close()


def test_an_idn_domain_goes_out_as_punycode(harness):
    got = send(harness, rcpts=["contact@bücher.example"])
    assert got.having(Outcome.DELIVERED) == ["contact@bücher.example"]
    assert [r for r, _ in harness.received()] == [["contact@xn--bcher-kva.example"]]


def test_a_non_ascii_local_part_without_smtputf8_fails_before_any_command(harness):
    got = send(harness, rcpts=["jürgen@bücher.example", TO])
    assert not got.offered
    assert got.having(Outcome.PERMANENT) == ["jürgen@bücher.example", TO]
    assert "SMTPUTF8" in got.reply and "(jürgen@bücher.example)" in got.reply
    assert harness.received() == []
    # the session is still good for the next message: one bad message never stops the batch
    assert send(harness).having(Outcome.DELIVERED) == [TO, CC]


def test_a_non_ascii_local_part_goes_out_with_smtputf8(utf8_harness):
    to = "jürgen@bücher.example"
    raw = (f"From: <{SENDER}>\r\nTo: Jürgen <jürgen@xn--bcher-kva.example>\r\nSubject: Hi\r\n"
           "Message-ID: <u1@whitfield.example>\r\n\r\nHello.\r\n").encode()
    got = send(utf8_harness, raw, rcpts=[to])
    assert got.having(Outcome.DELIVERED) == [to]
    (rcpts, kept), = utf8_harness.received()
    assert rcpts == ["jürgen@xn--bcher-kva.example"]
    assert "To: Jürgen <jürgen@xn--bcher-kva.example>".encode() in kept  # UTF-8 as it was


def test_a_closed_transport_connects_again_on_the_next_send(harness):
    t = harness.transport()
    t.connect()
    t.close()
    assert t.send(raw_message(), SENDER, [TO]).having(Outcome.DELIVERED) == [TO]
    t.close()
