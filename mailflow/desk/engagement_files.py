"""The engagement file is the one home of an engagement's data; the store follows it.

`engagement set`, `add-item` and `remove-item` edit the file in place with tomlkit (comments
and layout kept), then re-read it; a file edited by hand is re-read by the next run. Either
way the change becomes an `engagement.reloaded`/`engagement.changed` event naming the fields,
so nothing is ever changed, or reverted, without a trace.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from mailflow.config.engagements import validate_engagement
from mailflow.config.loading import Loaded
from mailflow.config.tomlfile import read_toml
from mailflow.errors import ConfigError
from mailflow.store import Writer

# what the file says but the commands own: the status (pause, resume, cancel, ...)
COMMAND_OWNED = ("status",)
LISTS = ("deliverables", "shared_access", "invoices", "checklist")
# bare names people use for dates (`contract_end=...` means `dates.contract_end=...`)
DATE_NAMES = ("contract_end", "start", "handover_date")


def file_hash(path: Path) -> str:
    """The content hash that tells a changed engagement file from the one last read."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def file_stamp(path: Path | str) -> list[int]:
    """(mtime in ns, size): when both are as last read, the file is not read again.

    Every run looks at every live engagement's file: a stat each keeps that cheap, and
    the content hash decides when the stamp moved.
    """
    st = os.stat(path)
    return [st.st_mtime_ns, st.st_size]


def source_of(record: dict, root: Path) -> Path | None:
    """The engagement file a stored engagement was added from (None for old records).

    Kept relative to the project folder when inside it, so a moved project still finds it.
    """
    return root / record["source"] if record.get("source") else None


def source_text(path: Path, root: Path) -> str:
    """How a record names its file: relative to the project folder when inside it."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(root.resolve()))
    except ValueError:
        return str(resolved)


def differences(stored: dict, from_file: dict) -> list[str]:
    """The keys an engagement file can say on which a stored record and its file disagree.

    Only the file's own keys count: what the store adds (status, plans, checklist marks,
    flags) is not the file's to say.
    """
    from mailflow.config.engagements import _TOP_KEYS
    keys = sorted((set(from_file) | set(stored)) & set(_TOP_KEYS) - set(COMMAND_OWNED))
    return [k for k in keys if stored.get(k) != from_file.get(k)]


def _reread(loaded: Loaded, path: Path, stored: dict) -> dict:
    from mailflow.desk.lookup import check_against_rules
    record = validate_engagement(read_toml(path), path, loaded.config.time_zone)
    if record["id"] != stored["id"]:
        raise ConfigError(f"{path}: id: the file now says {record['id']!r}, but it was added as "
                          f"{stored['id']!r}; ids cannot change (add it as a new engagement)")
    check_against_rules(loaded, record, path)
    return record


def sync_from_files(w: Writer, loaded: Loaded, now: dt.datetime,
                    notes: list[str] | None = None) -> list[str]:
    """Re-read every live engagement whose file changed; returns one line per problem.

    A file that became invalid changes nothing: the stored copy is kept and the problem
    reported (on every run, until the file is fixed). A file that is gone is said in
    `notes`: the stored copy goes on working, and `mailflow check` lists it.
    """
    problems: list[str] = []
    gone: list[tuple[str, str]] = []
    root = loaded.project.root
    root_text = str(root)
    for eid, stored in list(w.state.engagements.items()):
        source = stored.get("source")
        if not source or stored.get("archived") or stored.get("status") not in ("active",
                                                                                "paused"):
            continue
        try:
            # a stat by plain text: a Path per engagement was most of this loop at 10,000
            if file_stamp(os.path.join(root_text, source)) == stored.get("source_stamp"):
                continue
            path = root / source
            digest = file_hash(path)
        except FileNotFoundError:
            gone.append((eid, source))  # (said for the first three: a Path each was costly)
            continue
        except OSError as err:
            path = root / source
            problems.append(f"engagement {eid}: {path}: cannot read: {err.strerror}")
            continue
        if digest == stored.get("source_hash"):
            continue  # touched, not changed
        try:
            record = _reread(loaded, path, stored)
        except ConfigError as err:
            problems.append(f"{err} (engagement {eid} keeps its stored data until the file "
                            "is fixed)")
            continue
        changed = differences(stored, record)
        w.record("engagement.reloaded", at=now, engagement=eid, fields=changed,
                 engagements={"key": eid, "set": {**{k: record.get(k) for k in changed},
                                                  "source_hash": digest,
                                                  "source_stamp": file_stamp(path)}})
    if gone and notes is not None:
        more = f" (and {len(gone) - 3} more)" if len(gone) > 3 else ""
        notes.append("; ".join(f"engagement {eid}: its file {root / source} is gone"
                               for eid, source in gone[:3]) + more
                     + ": their stored copies are used (restore the files, or archive the "
                       "engagements; `mailflow check` lists them)")
    return problems


# -- editing the file in place -------------------------------------------------------------

def parse_value(text: str) -> Any:
    """A command-line value as TOML would hold it: bool, date, number, or string."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]  # quoted: always a string
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return float(text)
    return text


def _split(assignment: str) -> tuple[list[str], str]:
    key, sep, value = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{assignment!r}: expected KEY=VALUE, e.g. contract_end=2027-01-15 "
                          "or invoices.0.status=paid")
    parts = key.split(".")
    if parts[0] in DATE_NAMES:
        parts = ["dates", *parts]
    if parts[0] in ("id", "status"):
        raise ConfigError(f"{key}: cannot be changed with set (status: pause, resume, cancel, "
                          "complete, archive; the id is the engagement's name)")
    return parts, value


def _step(node: Any, part: str, where: str, create: bool) -> Any:
    import tomlkit
    if isinstance(node, list):
        if not part.isdigit() or int(part) >= len(node):
            raise ConfigError(f"{where}: {part!r} is not an item of this list (it has "
                              f"{len(node)}: use 0 to {len(node) - 1})")
        return node[int(part)]
    if part not in node:
        if not create:
            raise ConfigError(f"{where}: no such key")
        node[part] = tomlkit.table()
    return node[part]


def set_in_document(doc: Any, assignment: str) -> None:
    """Apply `a.b.0.c=value` to a tomlkit document; lists are indexed from 0."""
    parts, value = _split(assignment)
    node = doc
    for i, part in enumerate(parts[:-1]):
        node = _step(node, part, ".".join(parts[:i + 1]), create=True)
    last = parts[-1]
    if isinstance(node, list):
        raise ConfigError(f"{'.'.join(parts)}: name a field of the item, e.g. "
                          f"{'.'.join(parts)}.status=paid")
    node[last] = parse_value(value)


def add_item_to_document(doc: Any, list_name: str, fields: list[str]) -> int:
    """Append a table to one of the engagement's lists; returns its index."""
    import tomlkit
    if list_name not in LISTS:
        raise ConfigError(f"{list_name}: expected one of {', '.join(LISTS)}")
    item = tomlkit.table()
    for assignment in fields:
        name, sep, value = assignment.partition("=")
        if not sep or not re.fullmatch(r"[a-z_]+", name.strip()):
            raise ConfigError(f"{assignment!r}: expected FIELD=VALUE for one {list_name} item, "
                              "e.g. status=paid")
        item[name.strip()] = parse_value(value)
    if list_name not in doc:
        doc[list_name] = tomlkit.aot()
    doc[list_name].append(item)
    return len(doc[list_name]) - 1


def remove_item_from_document(doc: Any, list_name: str, index: int) -> dict:
    """Remove one item (by index from 0) from one of the engagement's lists; returns it."""
    if list_name not in LISTS:
        raise ConfigError(f"{list_name}: expected one of {', '.join(LISTS)}")
    items = doc.get(list_name) or []
    if not 0 <= index < len(items):
        raise ConfigError(f"{list_name}: no item {index} (it has {len(items)})")
    removed = dict(items[index])
    del items[index]
    if not len(items):
        del doc[list_name]
    return removed


def edit_file(w: Writer, loaded: Loaded, eid: str, change: Any, now: dt.datetime,
              what: list[str]) -> dict:
    """Edit an engagement's file with `change(doc)`, validate, write it, journal the change.

    Nothing is written when the edited engagement would not be valid: the file and the
    store stay as they were.
    """
    import tomlkit

    from mailflow.desk.lookup import check_against_rules, find_engagement
    stored = find_engagement(w.state, eid)
    path = source_of(stored, loaded.project.root)
    if path is None:
        raise ConfigError(f"engagement {eid} was added before engagements kept their file; "
                          "add it again with `mailflow engagement add --replace FILE`")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror} (engagement {eid})") from err
    if file_hash(path) != stored.get("source_hash"):
        raise ConfigError(f"{path}: changed since mailflow last read it; run `mailflow run` "
                          "(or `mailflow check`) first, so its edits are not mixed with these")
    doc = tomlkit.parse(text)
    change(doc)
    new_text = tomlkit.dumps(doc)
    record = validate_engagement(tomllib.loads(new_text), path, loaded.config.time_zone)
    check_against_rules(loaded, record, path)
    _write_atomically(path, new_text)
    changed = differences(stored, record)
    w.record("engagement.changed", at=now, engagement=eid, fields=what,
             engagements={"key": eid, "set": {**{k: record.get(k) for k in changed},
                                              "source_hash": file_hash(path),
                                              "source_stamp": file_stamp(path),
                                              "data_rev": stored.get("data_rev", 0) + 1}})
    return w.state.engagements[eid]


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        mode = path.stat().st_mode & 0o777
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write: {err.strerror}; nothing was changed") from err
