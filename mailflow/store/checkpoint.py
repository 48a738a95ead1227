"""The checkpoint's bytes: one JSON document, laid out one record per line.

The file is the TinyDB shape (`{"meta": {"1": {...}}, "engagements": {"1": {...}}, ...}`), so
any JSON reader, TinyDB and older mailflow read it whole. It is written with the meta first and
every record on a line of its own, so that a loader can check the meta against the journal
before parsing anything else, and can parse record by record: the file's bytes, a whole-document
parse tree and the records never fill memory together (at 10,000 engagements that peak was 550
MiB for a 72 MiB file, against about 320 MiB for the records alone).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from mailflow.store.lazy import FINISHED, HOT, WAITING_HOT, LazyRecord, decode, encode

LINES_START = b"{\n"  # the first line of the lined layout; a compact document starts `{"`


def write_lined(f: BinaryIO, data: dict[str, dict[str, Any]], default: Any = None) -> None:
    """Write `data` (TinyDB shape) to `f`: meta first, then one record per line."""
    f.write(LINES_START)
    # meta first, the messages (most of the bytes) last, others in their order: a view that
    # needs only the small tables stops reading before the messages (Store.load_tables)
    names = sorted(data, key=lambda name: (name != "meta", name == "messages"))
    for n, name in enumerate(names):
        f.write(orjson.dumps(name) + b":{\n")
        docs = data[name]
        last = len(docs) - 1
        lines = []
        for i, (doc_id, doc) in enumerate(docs.items()):
            sep = b"\n" if i == last else b",\n"
            body, cut = encode(name, doc, default)
            # a lazy record's id says where its hot fields end: `"17~93":{...}`
            doc_id = str(doc_id).partition("~")[0].encode()  # (read whole, ids keep their cut)
            tag = b"%s~%d" % (doc_id, cut) if cut else doc_id
            lines.append(b'"%s":%s%s' % (tag, body, sep))
            if len(lines) >= 4096:  # bounded: a table's bytes never sit in memory at once
                f.write(b"".join(lines))
                lines.clear()
        f.write(b"".join(lines))
        f.write(b"}\n" if n == len(names) - 1 else b"},\n")
    f.write(b"}\n")


class Lined:
    """Reads a lined checkpoint from an open file: `meta()` first, then `tables()`."""

    def __init__(self, f: BinaryIO) -> None:
        self._lines = iter(f)
        self._table: str | None = None

    def meta(self) -> dict[str, Any]:
        """The meta record (the first table of the file)."""
        name = self._open_table()
        if name != "meta":
            raise ValueError(f"the first table is {name!r}, not 'meta'")
        meta: dict[str, Any] = {}
        for _, doc in self._records("meta"):
            meta = doc
        return meta

    def tables(self) -> Iterator[str]:
        """Each further table's name: read its records with `fill` or `skip` before the next."""
        while (name := self._open_table()) is not None:
            yield name

    def skip(self) -> None:
        """Pass over the open table without parsing it (one this version does not know, or
        one a partial load leaves out)."""
        for line in self._lines:
            if line[0] == 0x7D:  # "}": the table's end
                return
        raise ValueError("the file ends inside a table")

    def _open_table(self) -> str | None:
        line = next(self._lines, b"}\n")
        if line.strip() in (b"}", b""):
            return None
        if not line.endswith(b":{\n"):
            raise ValueError(f"a table's opening line expected, found {line[:40]!r}")
        return orjson.loads(line[:-3])

    def fill(self, table: str, records: dict[str, dict[str, Any]], key_field: str) -> None:
        """Read the open table's records into `records`, by `key_field` (the loader's loop:
        at 56,000 records each step it saves per line shows)."""
        loads = orjson.loads
        hot_names = HOT.get(table)
        messages = table == "messages"
        for line in self._lines:
            if line[0] == 0x7D:  # "}": the table's end
                return
            colon = line.index(b'":')
            end = -2 if line[-2] == 0x2C else -1  # ",\n"
            tilde = line.find(b"~", 0, colon)
            if tilde < 0 or hot_names is None:
                doc = loads(line[colon + 2:end])
            else:  # as lazy.decode, inline
                cut = colon + 2 + int(line[tilde + 1:colon])
                hot = loads(line[colon + 2:cut] + b"}")
                doc = LazyRecord(hot)
                doc._hot = WAITING_HOT if messages and hot.get("state") not in FINISHED \
                    else hot_names
                doc._blob = b"{" + line[cut + 1:end]
            records[doc[key_field]] = doc
        raise ValueError("the file ends inside a table")

    def _records(self, table: str) -> Iterator[tuple[bytes, dict[str, Any]]]:
        loads = orjson.loads
        for line in self._lines:
            if line[0] == 0x7D:  # "}": the table's end
                return
            colon = line.index(b'":')
            body = line[colon + 2:-2] if line[-2] == 0x2C else line[colon + 2:-1]  # ",\n"
            tilde = line.find(b"~", 0, colon)
            yield line[1:colon], (loads(body) if tilde < 0 else
                                  decode(table, body, int(line[tilde + 1:colon])))
        raise ValueError("the file ends inside a table")
