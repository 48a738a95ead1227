"""SMTP faults against a real aiosmtpd: every reply code and connection failure leads to the
right state (retry with backoff, failed with the server's words, in doubt, reconnect), and one
bad message or recipient never stops the others."""

from __future__ import annotations

import collections
import datetime as dt
import json

import pytest

from mailflow.transport.sink import free_port
from tests.helpers import SEND_AT, fill_batch, firsts, load, told_only

# aiosmtpd warns (in its own thread) that AUTH without TLS is unsafe: the auth fixture is a
# loopback test server on purpose
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

TO = "contact{:02d}@client{:02d}.example"
CC = "it{:02d}@client{:02d}.example"


def key(i: int) -> str:
    return f"client-{i:02d}/timeline_notice/0"


def msgs(proj) -> dict[str, dict]:
    return {m["key"]: m for m in firsts(proj)}


def at(minutes: float) -> str:
    """SEND_AT plus some minutes (New York time, as --now takes it)."""
    t = dt.datetime.fromisoformat(SEND_AT) + dt.timedelta(minutes=minutes)
    return t.isoformat(timespec="minutes")


@pytest.fixture
def three(proj):
    return fill_batch(proj, 3)


def deliveries(server) -> collections.Counter:
    """(Message-ID, recipient) -> times received: per recipient, never twice."""
    got = collections.Counter()
    for r in server.received:
        for rcpt in r.rcpt_tos:
            got[(str(r.msg["Message-ID"]), rcpt)] += 1
    return got


def assert_never_twice(server) -> None:
    twice = {k: n for k, n in deliveries(server).items() if n > 1}
    assert not twice, twice


# -- whole-message refusals ------------------------------------------------------------------

@pytest.mark.parametrize("reply", ["421 4.3.2 shutting down", "450 4.2.0 mailbox busy",
                                   "451 4.3.0 local error", "452 4.3.1 insufficient storage"])
def test_temporary_refusal_at_data_retries_with_backoff_then_sends_once(three, smtp_server,
                                                                        reply):
    smtp_server.behave(data_reply=reply)
    r = three.cli("run", now=SEND_AT)
    assert told_only(r), r.output  # a retry is news, not a failure
    assert "temporarily refused, will retry" in r.output
    for m in msgs(three).values():
        assert m["state"] == "retry"
        assert m["server_reply"] == reply.replace("  ", " ")
        nxt = dt.datetime.fromisoformat(m["next_attempt"])
        sent_at = dt.datetime.fromisoformat(m["attempts_at"][0])
        assert dt.timedelta(0) < nxt - sent_at <= dt.timedelta(hours=1)  # first within the hour
    assert smtp_server.client_mail == []
    smtp_server.behave()
    assert three.cli("run", now=at(1)).exit_code == 0  # not yet: backoff
    assert smtp_server.client_mail == []
    assert three.cli("run", now=at(20)).exit_code == 0
    assert {m["state"] for m in msgs(three).values()} == {"sent"}
    assert len(smtp_server.client_mail) == 3
    for _ in range(3):
        three.cli("run", now=at(60))
    assert len(smtp_server.client_mail) == 3
    assert_never_twice(smtp_server)


def test_retries_are_spaced_out_and_give_up_after_the_lifetime(three, smtp_server):
    three.set_config(r"^retry_lifetime_hours = .*$", "retry_lifetime_hours = 4")
    smtp_server.behave(data_reply="451 4.7.1 greylisted")
    attempts = []
    for minute in range(0, 6 * 60, 5):  # cron every 5 minutes for six hours
        r = three.cli("run", now=at(minute))
        if any(m["state"] == "failed" for m in msgs(three).values()):
            assert r.exit_code == 1
            assert "failed: temporary refusals for 4 hours: 451 4.7.1 greylisted" in r.output
            break
        attempts.append(len(msgs(three)[key(0)]["attempts_at"]))
    m = msgs(three)[key(0)]
    assert m["state"] == "failed" and m["server_reply"] == "451 4.7.1 greylisted"
    gaps = [dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a)
            for a, b in zip(m["attempts_at"], m["attempts_at"][1:], strict=False)]
    assert gaps == sorted(gaps) and gaps[0] <= dt.timedelta(minutes=10)  # spaced out
    assert len(m["attempts_at"]) < 10  # not every five minutes
    assert smtp_server.client_mail == []
    smtp_server.behave()
    three.cli("run", now=at(7 * 60))
    assert smtp_server.client_mail == []  # failed is final: never resent on its own


@pytest.mark.parametrize("reply", ["550 5.1.1 no such user", "552 5.3.4 message too big",
                                   "554 5.7.1 rejected as spam"])
def test_permanent_refusal_fails_at_once_with_the_reply_kept_and_is_never_resent(
        three, smtp_server, reply):
    smtp_server.behave(data_reply=reply)
    r = three.cli("run", now=SEND_AT)
    assert r.exit_code == 1
    for i in range(3):
        assert f"{key(i)}: failed: {reply}" in r.output
        m = msgs(three)[key(i)]
        assert m["state"] == "failed" and m["server_reply"] == reply
        assert len(m["attempts_at"]) == 1
    smtp_server.behave()
    for minute in (10, 60, 600, 3000):
        three.cli("run", now=at(minute))
    assert smtp_server.client_mail == []
    shown = three.cli("status", "--json", now=at(3000))
    assert shown.exit_code == 0


@pytest.mark.parametrize("reply,state", [("421 4.3.2 closing", "retry"),
                                         ("451 4.3.0 later", "retry"),
                                         ("550 5.7.1 sender refused", "failed")])
def test_refusal_at_mail_from(three, smtp_server, reply, state):
    smtp_server.behave(mail_reply=reply)
    three.cli("run", now=SEND_AT)
    assert {m["state"] for m in msgs(three).values()} == {state}
    assert {m["server_reply"] for m in msgs(three).values()} == {reply}


# -- per-recipient refusals --------------------------------------------------------------------

def test_a_temporarily_refused_recipient_gets_the_same_message_later_the_other_only_once(
        three, smtp_server):
    smtp_server.behave(rcpt_replies={CC.format(1, 1): "452 4.2.2 mailbox full"})
    r = three.cli("run", now=SEND_AT)
    assert told_only(r), r.output
    m = msgs(three)[key(1)]
    assert m["state"] == "retry" and m["remaining"] == [CC.format(1, 1)]
    assert m["delivered_to"] == [TO.format(1, 1)] and m["sent_at"]
    assert "452 4.2.2 mailbox full" in m["server_reply"]
    assert {msgs(three)[key(i)]["state"] for i in (0, 2)} == {"sent"}
    smtp_server.behave()
    assert three.cli("run", now=at(30)).exit_code == 0
    m = msgs(three)[key(1)]
    assert m["state"] == "sent" and m["remaining"] is None
    assert sorted(m["delivered_to"]) == sorted([TO.format(1, 1), CC.format(1, 1)])
    got = [r for r in smtp_server.client_mail if str(r.msg["Message-ID"]) == m["message_id"]]
    assert [r.rcpt_tos for r in got] == [[TO.format(1, 1)], [CC.format(1, 1)]]
    a, b = got[0].msg, got[1].msg
    assert a["Subject"] == b["Subject"] and a["To"] == b["To"] and a["Cc"] == b["Cc"]
    assert a["Date"] == b["Date"]  # the same message, written when it was first sent
    for kind in ("plain", "html"):
        assert a.get_body((kind,)).get_content() == b.get_body((kind,)).get_content()
    assert_never_twice(smtp_server)


def test_a_permanently_refused_recipient_is_flagged_the_rest_delivered(three, smtp_server):
    smtp_server.behave(rcpt_replies={CC.format(0, 0): "550 5.1.1 user unknown"})
    r = three.cli("run", now=SEND_AT)
    assert r.exit_code == 1
    assert f"{key(0)}: refused for {CC.format(0, 0)}" in r.output
    assert {m["state"] for m in msgs(three).values()} == {"sent"}
    eng = load(three).engagements["client-00"]
    assert CC.format(0, 0) in eng["bounced"] and eng["flagged"]
    assert len(smtp_server.client_mail) == 3


@pytest.mark.parametrize("code,state", [("452 4.2.2 full", "retry"), ("550 5.1.1 unknown",
                                                                      "failed")])
def test_every_recipient_of_one_message_refused_stops_only_that_message(three, smtp_server,
                                                                         code, state):
    smtp_server.behave(rcpt_replies={TO.format(1, 1): code, CC.format(1, 1): code})
    three.cli("run", now=SEND_AT)
    got = msgs(three)
    assert got[key(1)]["state"] == state
    assert got[key(1)]["server_reply"] == f"{TO.format(1, 1)}: {code}; {CC.format(1, 1)}: {code}"
    assert got[key(0)]["state"] == got[key(2)]["state"] == "sent"
    assert len(smtp_server.client_mail) == 2


# -- connections lost ------------------------------------------------------------------------

def test_connection_dropped_after_data_is_in_doubt_and_never_resent_blindly(three, smtp_server):
    smtp_server.behave(drop_after_data=True)
    r = three.cli("run", now=SEND_AT)
    assert r.exit_code == 1
    assert f"{key(0)}: in doubt: connection lost after the message was sent" in r.output
    assert f"mailflow drafts resolve {key(0)} --sent|--resend" in r.output
    # each message that went out before the drop of its own transaction is in doubt; the
    # session reconnects for the next one
    states = collections.Counter(m["state"] for m in msgs(three).values())
    assert states == {"in_doubt": 3}
    smtp_server.behave()
    for minute in (10, 60, 600):
        three.cli("run", now=at(minute))
    assert len(smtp_server.client_mail) == 3  # each once, when it was in doubt; never again
    rows = json.loads(three.cli("drafts", "--json", now=at(600)).output)
    assert {row["id"] for row in rows} >= {key(i) for i in range(3)}
    assert three.cli("drafts", "resolve", key(0), "--sent", now=at(601)).exit_code == 0
    assert msgs(three)[key(0)]["state"] == "sent"


def test_a_stall_after_data_times_out_into_in_doubt(three, smtp_server):
    three.set_config(r"^security = .*$", 'security = "none"\ntimeout = 1')
    smtp_server.behave(stall_after_data=2.5)
    r = three.cli("run", now=SEND_AT)
    assert r.exit_code == 1
    assert "in doubt" in r.output
    assert msgs(three)[key(0)]["state"] == "in_doubt"
    smtp_server.behave()
    three.cli("run", now=at(30))
    ids = collections.Counter(str(r.msg["Message-ID"]) for r in smtp_server.client_mail)
    assert set(ids.values()) == {1}


def test_connection_dropped_before_data_reconnects_once_and_goes_on(three, smtp_server):
    dropped = []

    async def drop_second(phase, envelope, server):  # noqa: ANN001
        if phase == "MAIL" and not dropped and len(smtp_server.client_mail) == 1:
            dropped.append(1)
            server.transport.close()

    smtp_server.handler.hook = drop_second
    r = three.cli("run", now=SEND_AT)
    assert told_only(r), r.output
    assert dropped
    assert {m["state"] for m in msgs(three).values()} == {"sent"}
    assert len(smtp_server.client_mail) == 3
    assert_never_twice(smtp_server)


def test_a_server_that_keeps_dropping_before_data_leaves_the_rest_for_later(three, smtp_server):
    async def drop_all(phase, envelope, server):  # noqa: ANN001
        if phase == "MAIL":
            server.transport.close()

    smtp_server.handler.hook = drop_all
    r = three.cli("run", now=SEND_AT)
    assert r.exit_code == 6  # issue 17: README's code for a server not reached (was 1)
    assert "connection dropped again after reconnecting" in r.output
    # nothing went out, so nothing is in doubt: all wait for the next run
    assert {m["state"] for m in msgs(three).values()} == {"approved"}
    smtp_server.handler.hook = None
    assert three.cli("run", now=at(5)).exit_code == 0
    assert len(smtp_server.client_mail) == 3


# -- cannot even start -------------------------------------------------------------------------

def test_login_refused_is_one_line_naming_the_server_and_nothing_is_sent(proj,
                                                                        smtp_server_auth):
    fill_batch(proj, 2)
    proj.set_config(r"^port = \d+", f"port = {smtp_server_auth.port}\n"
                    'username = "consultant"\npassword_env = "MF_TEST_SMTP_PW"')
    r = proj.cli("run", now=SEND_AT, env={"MF_TEST_SMTP_PW": "wrong-pass"})
    assert r.exit_code != 0
    lines = [ln for ln in r.output.splitlines() if ln.startswith("mailflow:")]
    assert lines == [f"mailflow: smtp 127.0.0.1:{smtp_server_auth.port}: login rejected for "
                     "consultant: 535 5.7.8 Authentication credentials invalid"], r.output
    assert "wrong-pass" not in r.output
    assert {m["state"] for m in firsts(proj)} == {"approved"}
    assert smtp_server_auth.received == []
    r = proj.cli("run", now=SEND_AT, env={"MF_TEST_SMTP_PW": "s3cret-pass"})
    assert told_only(r), r.output
    assert len(smtp_server_auth.received) == 2


def test_missing_password_variable_is_one_line(proj, smtp_server_auth):
    fill_batch(proj, 1)
    proj.set_config(r"^port = \d+", f"port = {smtp_server_auth.port}\n"
                    'username = "consultant"\npassword_env = "MF_TEST_SMTP_PW_UNSET"')
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code != 0
    assert "MF_TEST_SMTP_PW_UNSET is not set" in r.output
    assert f"127.0.0.1:{smtp_server_auth.port}" in r.output
    assert {m["state"] for m in firsts(proj)} == {"approved"}


def test_connection_refused_is_one_line_naming_host_and_port(proj, smtp_server):
    fill_batch(proj, 2)
    port = free_port()
    proj.set_config(r"^port = \d+", f"port = {port}")
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 6  # issue 17: README's code for a server not reached (was 1)
    assert r.output.strip().splitlines() == [
        f"mailflow: smtp 127.0.0.1:{port}: connection refused"]
    assert {m["state"] for m in firsts(proj)} == {"approved"}
    assert all(not m.get("attempts_at") for m in firsts(proj))
