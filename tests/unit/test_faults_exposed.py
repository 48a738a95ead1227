"""The fault injector's count notes where a power cut would differ from a kill (issue 11).

A crash test skips a power cut only at points where it leaves the very files a kill leaves:
no journal bytes written since the last fsync, no rename or new file whose folder was not
fsynced. These tests pin that bookkeeping to the writes of a real journal and checkpoint.
"""

from __future__ import annotations

import os

import pytest

from mailflow import faults
from mailflow.store.files import write_atomically


@pytest.fixture
def counting():
    faults.arm(0, "count")
    yield
    faults.arm(0, "kill")  # unarmed again for every other test


def test_a_point_after_bytes_written_but_not_fsynced_is_exposed(tmp_path, counting):
    journal = tmp_path / "events.jsonl"
    journal.write_bytes(b"one\n")
    faults.synced(journal, 4)
    faults.point("journal append")          # 1: nothing written since the fsync
    with journal.open("ab") as f:
        f.write(b"two\n")
    faults.point("journal fsync")           # 2: "two" would be lost
    faults.synced(journal, 8)
    faults.point("smtp MAIL")               # 3: durable again
    assert faults.exposed() == [2]


def test_a_rename_is_exposed_until_its_folder_is_fsynced(tmp_path, counting):
    db = tmp_path / "state.json"
    write_atomically(db, b"{}")
    names = faults.names()
    assert names == ["write state.json", "fsync state.json", "rename state.json",
                     "fsync-dir " + tmp_path.name]
    # the folder fsync is the only point after the rename and before it is durable
    assert faults.exposed() == [4]
    faults.point("after")
    assert faults.exposed() == [4]
    assert os.listdir(tmp_path) == ["state.json"]


def test_an_unarmed_injector_keeps_no_bookkeeping(tmp_path):
    faults.arm(0, "kill")
    write_atomically(tmp_path / "state.json", b"{}")
    assert faults.count() == 0 and faults.exposed() == []
