"""A reply of an engagement moved out into its archive is still there to read (issue 13).

`mailflow replies show ID` reads it back from the archive, as `engagement show` and `log` do;
marking it handled is refused in one line (nothing more happens to an archived engagement);
an id that never existed still says so.
"""

from __future__ import annotations

from tests.helpers import SEND_AT, fill_batch, load, make_project, reply

ENDED = "2027-01-05T10:00"
LATER = "2027-02-05T10:00"  # 31 days after it was completed: the run moves it out
EID = "client-00"


def test_replies_show_reads_a_reply_of_an_archived_engagement(tmp_path, smtp_server):
    proj = fill_batch(make_project(tmp_path, smtp_server.port), 2)
    assert proj.cli("run", now=SEND_AT).exit_code == 0
    msg = load(proj).messages[f"{EID}/timeline_notice/0"]
    eml = tmp_path / "answer.eml"
    eml.write_bytes(reply(msg, "Thanks, all clear on our side.", sender="contact00@client00"
                                                                          ".example"))
    r = proj.cli("replies", "add", msg["key"], str(eml), now="2026-12-31T10:00")
    assert r.exit_code in (0, 1), r.output
    (rid,) = [k for k, v in load(proj).replies.items() if v.get("engagement") == EID]
    assert proj.cli("engagement", "complete", EID, "--force", now=ENDED).exit_code == 0
    r = proj.cli("run", now=LATER)
    assert r.exit_code in (0, 1) and "Traceback" not in r.output, r.output
    assert EID not in load(proj).engagements and rid not in load(proj).replies  # moved out
    r = proj.cli("replies", "show", rid, now=LATER)
    assert r.exit_code == 0, r.output
    assert "Thanks, all clear on our side." in r.output
    assert f"About:    {EID} / timeline_notice" in r.output
    assert "Received: Thu 2026-12-31" in r.output  # in the engagement's own zone
    r = proj.cli("replies", "show", rid, "--done", now=LATER)
    lines = r.output.strip().splitlines()
    assert r.exit_code == 4 and len(lines) == 1 and "is archived" in lines[0], r.output
    r = proj.cli("replies", "show", "999", now=LATER)
    assert r.exit_code == 3 and "no reply '999'" in r.output, r.output
