"""The DATA payload (RFC 5321 4.5.2): CRLF line ends, a leading dot doubled, CRLF.CRLF."""

from __future__ import annotations

import re

import pytest

from mailflow.transport.smtp import _dot_stuff, _eight_bit_headers


def reference(raw: bytes) -> bytes:
    data = re.sub(rb"(?m)^\.", b"..", re.sub(rb"\r\n|\n|\r", b"\r\n", raw))
    return (data if data.endswith(b"\r\n") else data + b"\r\n") + b".\r\n"


@pytest.mark.parametrize("raw", [
    b"Subject: a\r\n\r\nbody\r\n", b"Subject: a\r\n\r\n.starts with a dot\r\n.\r\n",
    b".first line\r\nx", b"bare\nline\nends\n", b"mixed\r\nends\nand\rcr\r\n.dot\n",
    b"no end", b"", b"a\r\n..two dots\r\n", b"a\r\r\n.b\n\r"])
def test_dot_stuffing_matches_the_rule_for_every_line_ending(raw):
    assert _dot_stuff(raw) == reference(raw)


def test_eight_bit_headers_look_at_the_header_section_only():
    assert _eight_bit_headers("Subject: Zoë\r\n\r\nbody".encode())
    assert not _eight_bit_headers("Subject: Zoe\r\n\r\nbodÿ".encode())
