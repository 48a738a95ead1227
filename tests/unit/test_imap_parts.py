"""Reading a large message by its structure: which parts are fetched, and the rebuilt message.

BODYSTRUCTURE is given as imapclient parses it (nested tuples), so no server is needed; the
Dovecot side is in tests/servers/test_big_replies.py.
"""

from __future__ import annotations

from imapclient.response_parser import parse_fetch_response

from mailflow.inbound.message import parse_inbound
from mailflow.transport.imap_parts import TEXT_MAX, assemble, fetch_items, read_structure, usable

MIXED = (b'1 (UID 7 BODYSTRUCTURE ((("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 40 1 NIL '
         b'NIL NIL NIL)("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 60 1 NIL NIL NIL NIL) '
         b'"ALTERNATIVE" ("BOUNDARY" "inner") NIL NIL NIL)("APPLICATION" "ZIP" ("NAME" '
         b'"export.zip") NIL NIL "BASE64" 40000000 NIL ("ATTACHMENT" ("FILENAME" "export.zip")) '
         b'NIL NIL) "MIXED" ("BOUNDARY" "outer") NIL NIL NIL))')


def structure(raw: bytes):  # noqa: ANN201
    return parse_fetch_response([raw])[7][b"BODYSTRUCTURE"]


def test_a_reply_fetches_its_header_text_and_html_and_only_the_attachments_mime_header():
    root = read_structure(structure(MIXED))
    assert usable(root) and [c.path for c in root.children] == ["1", "2"]
    items = fetch_items(root)
    assert items == ["BODY.PEEK[HEADER]", "BODY.PEEK[1.MIME]", "BODY.PEEK[1.1.MIME]",
                     f"BODY.PEEK[1.1]<0.{TEXT_MAX}>", "BODY.PEEK[1.2.MIME]",
                     f"BODY.PEEK[1.2]<0.{TEXT_MAX}>", "BODY.PEEK[2.MIME]"]
    assert not any(item.startswith("BODY.PEEK[2]") for item in items)  # never the zip


def test_the_rebuilt_message_reads_like_the_original_without_the_attachment_bytes():
    root = read_structure(structure(MIXED))
    got = {b"BODY[HEADER]": b"From: a@client.example\r\nSubject: Re: x\r\nMessage-ID: <r@c>\r\n"
                            b"Date: Thu, 31 Dec 2026 10:02:00 -0500\r\nMIME-Version: 1.0\r\n"
                            b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n',
           b"BODY[1.MIME]": b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n',
           b"BODY[1.1.MIME]": b"Content-Type: text/plain; charset=utf-8\r\n\r\n",
           b"BODY[1.1]<0>": b"The pipelines folder is empty.",
           b"BODY[1.2.MIME]": b"Content-Type: text/html; charset=utf-8\r\n\r\n",
           b"BODY[1.2]<0>": b"<p>The pipelines folder is empty.</p>",
           b"BODY[2.MIME]": b"Content-Type: application/zip; name=export.zip\r\n"
                            b"Content-Disposition: attachment; filename=export.zip\r\n"
                            b"Content-Transfer-Encoding: base64\r\n\r\n"}
    raw, notes = assemble(root, got)
    assert notes == [] and len(raw) < 1000
    inbound = parse_inbound(raw)
    assert inbound.text == "The pipelines folder is empty."
    assert inbound.attachments == ("export.zip",) and inbound.problems == ()


def test_a_long_single_part_text_is_read_up_to_the_limit_and_says_so():
    single = (b'1 (UID 7 BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "8BIT" '
              + str(3 * TEXT_MAX).encode() + b' 9000 NIL NIL NIL NIL))')
    root = read_structure(structure(single))
    assert fetch_items(root) == ["BODY.PEEK[HEADER]", f"BODY.PEEK[TEXT]<0.{TEXT_MAX}>"]
    raw, notes = assemble(root, {b"BODY[HEADER]": b"Subject: long\r\n\r\n",
                                 b"BODY[TEXT]<0>": b"x" * TEXT_MAX})
    assert raw.startswith(b"Subject: long\r\n\r\nxxx") and len(notes) == 1
    assert "read up to 1024 KiB" in notes[0]


def test_a_multipart_without_its_boundary_is_read_from_its_first_mebibyte():
    no_boundary = MIXED.replace(b'("BOUNDARY" "outer")', b"NIL")
    root = read_structure(structure(no_boundary))
    assert not usable(root)
    assert fetch_items(root) == ["BODY.PEEK[HEADER]", f"BODY.PEEK[TEXT]<0.{TEXT_MAX}>"]
    raw, notes = assemble(root, {b"BODY[HEADER]": b"Subject: x\r\n\r\n",
                                 b"BODY[TEXT]<0>": b"--outer\r\n"})
    assert raw == b"Subject: x\r\n\r\n--outer\r\n" and notes == []


def test_thousands_of_parts_are_fetched_in_short_commands_and_only_the_first_thousand():
    from mailflow.transport.imap_parts import ITEMS_PER_FETCH, MAX_PARTS, Part, in_groups
    root = Part("", "multipart/mixed", boundary=b"X", children=[
        Part(str(n), "application/octet-stream", 2) for n in range(1, 5002)])
    items = fetch_items(root)
    assert len(items) == 1 + MAX_PARTS  # the header, then one MIME header per part read
    groups = in_groups(items)
    assert sum(groups, []) == items
    assert all(len(g) <= ITEMS_PER_FETCH and len(" ".join(g)) < 16_000 for g in groups)
    _, notes = assemble(root, {})
    assert notes == [f"only the first {MAX_PARTS} of its 5001 MIME parts were read"]
