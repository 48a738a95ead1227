"""The Sent folder proves delivery only for copies mailflow did not make itself (issue 11).

Against aiosmtpd and Dovecot: the To of a message is delivered while its Cc is refused for
now, so mailflow files the message in Sent itself; the retry to the Cc then ends in doubt.
Finding the Message-ID in Sent must not mark it sent: the Cc may never have got it.
"""

from __future__ import annotations

from tests.helpers import SEND_AT, fill_batch, imap_toml, load
from tests.imap_server import dovecot, imap_account  # noqa: F401

KEY = "client-00/timeline_notice/0"
TO, CC = "contact00@client00.example", "it00@client00.example"


def test_our_own_sent_copy_never_settles_a_later_attempt_in_doubt(proj, smtp_server,
                                                                  imap_account):  # noqa: F811
    fill_batch(proj, 1)
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text() + imap_toml(imap_account))
    imap_account.create_folder("Sent")
    smtp_server.behave(rcpt_replies={CC: "452 4.2.2 mailbox full"})
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 0, r.output
    m = load(proj).messages[KEY]
    assert m["state"] == "retry" and m["delivered_to"] == [TO]
    assert m["recipients"][CC]["outcome"] == "temporary" and m["copied_at"]
    # mailflow filed the copy itself
    assert imap_account.folder_state("Sent")[1] == 2
    # the retry to the Cc: the server takes it and the connection drops before the reply
    smtp_server.behave(drop_after_data=True)
    r = proj.cli("run", now="2026-12-30T10:00")
    assert r.exit_code == 1 and f"{KEY}: in doubt" in r.output
    smtp_server.behave()
    for t in ("10:10", "10:20", "11:00"):
        r = proj.cli("-v", "run", now=f"2026-12-30T{t}")
        m = load(proj).messages[KEY]
        assert m["state"] == "in_doubt", r.output  # the copy in Sent is ours: proof of nothing
    assert "proves nothing" in r.output
    assert m["recipients"][CC]["outcome"] == "in_doubt" and m["delivered_to"] == [TO]
    shown = proj.cli("drafts", now="2026-12-30T11:00")
    assert KEY in shown.output
    # the consultant resends: only the Cc gets it again, the To never twice
    r = proj.cli("drafts", "resolve", KEY, "--resend", now="2026-12-30T11:05")
    assert r.exit_code == 0, r.output
    proj.cli("run", now="2026-12-30T11:10")
    assert [sorted(x.rcpt_tos) for x in smtp_server.client_mail] == [[TO], [CC], [CC]]
    assert load(proj).messages[KEY]["state"] == "sent"
