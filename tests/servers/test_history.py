"""History out of the hot state (issue 18): archives, journal segments folded, bodies removed.

Two engagements whose first emails really went out (aiosmtpd); one is completed and, more
than `archive_after_days` later, a run moves it into `archive/<id>.json.gz`.
"""

from __future__ import annotations

import gzip
import json

import pytest

from mailflow.store import Store
from mailflow.store import segments as segs
from mailflow.store.archive import subject
from tests.helpers import SEND_AT, fill_batch, load, make_project

ENDED = "2027-01-05T10:00"  # client-00 is completed (by hand) on this day
LATER = "2027-02-05T10:00"  # 31 days later: it moves out
EID = "client-00"


@pytest.fixture
def sent(tmp_path, smtp_server):
    """Two engagements, their timeline notices sent; client-00 completed on ENDED."""
    proj = fill_batch(make_project(tmp_path, smtp_server.port), 2)
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 0, r.output
    r = proj.cli("engagement", "complete", EID, "--force", now=ENDED)
    assert r.exit_code == 0, r.output
    return proj


def run(proj, now: str) -> None:
    r = proj.cli("run", now=now)  # exit 1: client-01's overdue drafts wait for approval
    assert r.exit_code in (0, 1) and "Traceback" not in r.output, r.output


def archive_of(proj) -> dict:
    path = proj.project.state_dir / "archive" / f"{EID}.json.gz"
    return json.loads(gzip.decompress(path.read_bytes()))


def tables(state) -> dict:
    return {t: getattr(state, t) for t in ("engagements", "messages", "replies", "cursors",
                                           "digests")}


def test_an_engagement_ended_long_ago_moves_out_with_its_history_and_sent_text(sent):
    before = load(sent)
    sent_msg = before.messages[f"{EID}/timeline_notice/0"]
    assert sent_msg.get("sent_at")
    html, text = Store(sent.project.state_dir).body(sent_msg["body"])
    run(sent, "2027-02-03T10:00")  # 29 days: not yet (it keeps the completed one's summary)
    assert EID in load(sent).engagements
    events_before = [e["seq"] for e in Store(sent.project.state_dir).events()
                     if subject(e) == EID]
    run(sent, LATER)
    state = load(sent)
    assert EID not in state.engagements and "client-01" in state.engagements
    assert not [k for k in state.messages if k.startswith(f"{EID}/")]
    data = archive_of(sent)
    assert data["engagement"]["status"] == "completed"
    assert {m["key"] for m in data["messages"]} == {k for k in before.messages
                                                    if k.startswith(f"{EID}/")}
    assert data["bodies"][sent_msg["body"]] == {"html": html, "text": text}
    # the message as it went on the wire (a cache beside the bodies) goes with it
    store = Store(sent.project.state_dir)
    wire = [store.wire_copy_path(m["prebuilt"]["ref"]) for k, m in before.messages.items()
            if k.startswith(f"{EID}/") and m.get("prebuilt")]
    assert wire and not [p for p in wire if p.exists()]
    assert [e["seq"] for e in data["events"]] == events_before
    # replaying the journal from nothing gives the same state as the checkpoint
    rebuilt, _ = Store(sent.project.state_dir).load_at(trust_checkpoint=False)
    assert tables(rebuilt) == tables(state)
    # both clients got the same words (same contact name): the body file is shared, and kept
    # while client-01 refers to it; once client-01 moves out too, it is gone
    body = Store(sent.project.state_dir).body_path(sent_msg["body"])
    assert state.messages["client-01/timeline_notice/0"]["body"] == sent_msg["body"]
    assert body.exists()
    assert sent.cli("engagement", "cancel", "client-01", "-y", now=LATER).exit_code == 0
    run(sent, "2027-03-10T10:00")
    assert not load(sent).engagements and not body.exists()
    r = sent.cli("doctor", now="2027-03-10T10:00")
    assert r.exit_code == 0 and "no message refers to" not in r.output, r.output


def test_every_command_that_takes_an_id_reads_an_archived_one_or_says_it_is_archived(sent):
    run(sent, LATER)
    reads = {("engagement", "show", EID): "Northwind", ("log", "--engagement", EID):
             "message.sent", ("doc", EID, "--format", "md"): "Offboarding",
             ("replies", "--engagement", EID): "No replies", ("plan", EID): "timeline_notice",
             ("checklist", EID): EID, ("status", "--all-archived"): EID,
             ("engagement", "show", EID, "--json"): '"moved_out"'}
    for args, expected in reads.items():
        r = sent.cli(*args, now=LATER)
        assert r.exit_code == 0 and expected in r.output, (args, r.output)
    assert "archived: moved out" in sent.cli("engagement", "show", EID, now=LATER).output
    r = sent.cli("log", now=LATER)  # the global log keeps the archived engagement's events
    assert f"{EID}/timeline_notice/0" in r.output and "client-01" in r.output
    assert EID not in sent.cli("status", now=LATER).output
    for args in (("engagement", "pause", EID), ("engagement", "set", EID, "client=X"),
                 ("engagement", "archive", EID, "-y"), ("done", EID, "access-1"),
                 ("drafts", "show", f"{EID}/timeline_notice/0"),
                 ("drafts", "approve", "--engagement", EID, "-y")):
        r = sent.cli(*args, now=LATER)
        lines = r.output.strip().splitlines()
        assert r.exit_code == 4 and len(lines) == 1 and "is archived" in lines[0], (args,
                                                                                     r.output)
    path = sent.root / "engagements" / f"{EID}.toml"
    r = sent.cli("engagement", "add", str(path), now=LATER)
    assert r.exit_code == 2 and "already exists (archived" in r.output, r.output
    r = sent.cli("doctor", now=LATER)
    assert r.exit_code == 0 and "1 archived engagement" in r.output, r.output


def test_a_run_cut_short_after_writing_the_archive_moves_it_out_again(sent):
    """The archive is written before the event that drops the records: a crash between
    leaves the engagement in the hot state, and the next run writes its archive again."""
    store = Store(sent.project.state_dir)
    store.shelf.write(EID, {"engagement": {"id": EID}, "events": [], "messages": []})
    assert EID in load(sent).engagements
    r = sent.cli("log", now=LATER)  # a stale archive of a hot engagement is not shown
    assert r.exit_code == 0
    r = sent.cli("doctor", now=LATER)
    assert "still in the working state" in r.output, r.output
    run(sent, LATER)
    data = archive_of(sent)
    assert data["messages"] and data["events"] and EID not in load(sent).engagements


def test_archive_after_days_is_read_from_mailflow_toml_and_checked(sent):
    cfg = sent.project.config_path
    cfg.write_text(cfg.read_text() + "\n[state]\narchive_after_days = 0\n")
    run(sent, "2027-01-05T11:00")
    assert EID not in load(sent).engagements
    for bad in ("-1", '"soon"'):
        cfg.write_text(cfg.read_text().replace(
            cfg.read_text().split("archive_after_days = ")[1].split("\n")[0], bad))
        r = sent.cli("run", now=LATER)
        lines = r.output.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and "archive_after_days" in lines[0], \
            r.output


@pytest.fixture
def small_segments(monkeypatch):
    """Every run that saves its checkpoint rotates the journal."""
    monkeypatch.setattr(segs, "SEGMENT_BYTES", 1)


def test_the_journal_rotates_and_old_segments_fold_into_the_base(small_segments, sent):
    folder = sent.project.state_dir
    first = segs.segments(folder)
    assert first, "a run whose checkpoint covers the journal rotated it"
    whole = [e["seq"] for e in Store(folder).events()]
    # a run that changes something rotates again; the segment it names stays
    assert sent.cli("engagement", "complete", "client-01", "--force",
                    now=ENDED).exit_code == 0
    run(sent, LATER)
    assert not (set(first) & set(segs.segments(folder))), "folded: both engagements moved out"
    assert (folder / segs.BASE_NAME).exists()
    store = Store(folder)
    state = store.load()
    assert not state.engagements
    rebuilt, _ = Store(folder).load_at(trust_checkpoint=False)
    assert tables(rebuilt) == tables(state)
    # nothing the audit log needs was lost: every earlier event is in an archive
    assert set(whole) <= {e["seq"] for e in store.events()}
    (folder / "state.json").unlink()
    (folder / "state.json.bak").unlink()
    assert tables(Store(folder).load()) == tables(state)
    r = sent.cli("doctor", "--repair", now=LATER)
    assert r.exit_code == 0, r.output
    assert tables(load(sent)) == tables(state)


def test_a_missing_segment_is_one_line_naming_it(small_segments, sent):
    folder = sent.project.state_dir
    found = segs.segments(folder)
    assert len(found) >= 2
    found[-2][1].unlink()
    (folder / "state.json").unlink()
    (folder / "state.json.bak").unlink()
    r = sent.cli("status", now=LATER)
    lines = r.output.strip().splitlines()
    assert r.exit_code == 5 and len(lines) == 1 and "segment is missing" in lines[0], r.output


def test_segments_an_engagement_still_needs_stay_compressed_and_readable(small_segments, sent):
    folder = sent.project.state_dir
    whole = [e["seq"] for e in Store(folder).events()]
    run(sent, LATER)  # client-00 moves out; client-01's events keep the old segments
    kept = segs.segments(folder)
    assert [p.name for _, p in kept[:-1]] and all(p.suffix == ".gz" for _, p in kept[:-1])
    assert kept[-1][1].suffix == ".jsonl"  # the one the checkpoint names stays plain
    store = Store(folder)
    state = store.load()
    rebuilt, _ = Store(folder).load_at(trust_checkpoint=False)
    assert tables(rebuilt) == tables(state)
    assert set(whole) <= {e["seq"] for e in store.events()}
    r = sent.cli("log", "--engagement", "client-01", now=LATER)
    assert r.exit_code == 0 and "client-01/timeline_notice/0" in r.output, r.output
    assert sent.cli("doctor", now=LATER).exit_code == 0


def test_the_idle_tick_never_reads_lists_or_stats_the_archive(sent, monkeypatch):
    from mailflow.store.archive import Shelf
    run(sent, LATER)
    assert (sent.project.state_dir / "archive" / f"{EID}.json.gz").exists()

    def touched(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the archive was touched")

    for name in ("has", "read", "write", "ids", "events", "sync"):
        monkeypatch.setattr(Shelf, name, touched)
    run(sent, "2027-02-05T10:05")
    assert sent.cli("status", now="2027-02-05T10:06").exit_code in (0, 1)
