"""Does the store agree with the engagement files? What `mailflow check` says about it.

The engagement file is the engagement's one home; the store keeps a copy that the next run
refreshes when the file changed. Anything else (a copy changed outside its file, a file
gone, a file added twice) is a disagreement to report, never to settle silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mailflow.config.loading import Loaded
from mailflow.desk.engagement_files import differences, file_hash, source_of


def compare_files_and_store(loaded: Loaded, files: list[tuple[str, dict]],
                            stored: list[tuple[str, dict]], found: Any) -> set[str]:
    """Report each disagreement into `found`; return the ids whose stored copy is a file's."""
    by_path = {str(Path(where).resolve()): record for where, record in files}
    by_id = {record["id"]: (where, record) for where, record in files}
    same: set[str] = set()
    for _, record in stored:
        eid = record["id"]
        source = source_of(record, loaded.project.root)
        source = source.resolve() if source is not None else None
        where, from_file = by_id.get(eid, (None, None))
        if source is not None and str(source) in by_path:
            where, from_file = str(source), by_path[str(source)]
        elif source is not None and not source.is_file():
            found.problem(f"engagement {eid}: its file {source} is gone; the stored copy is "
                          "used (restore the file, or `mailflow engagement archive "
                          f"{eid}`)")
            continue
        elif source is not None and from_file is None:
            continue  # a file outside engagements/: the run re-reads it, nothing to compare
        if from_file is None:
            continue
        if from_file["id"] != eid:
            found.problem(f"{where}: id: the file now says {from_file['id']!r}, but it was "
                          f"added as {eid!r}")
            continue
        same.add(eid)
        changed = differences(record, from_file)
        if not changed:
            continue
        fields = ", ".join(changed)
        if source is not None and file_hash(Path(where)) != record.get("source_hash"):
            found.notes.append(f"{where}: changed since mailflow read it ({fields}); the next "
                               "run reads it again")
        else:
            found.problem(f"engagement {eid}: the stored copy differs from {where} in {fields} "
                          "(changed outside the file); `mailflow engagement add --replace "
                          f"{where}` makes the file's version the one used")
    for where, record in files:
        if record["id"] not in {r["id"] for _, r in stored}:
            found.notes.append(f"{where}: not added yet (mailflow engagement add {where})")
    return same
