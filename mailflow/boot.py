"""Which boot of the machine this process runs in.

The kernel keeps every byte handed to it (`os.write`) when a process is killed, but a power
cut or an OS crash may drop what was not fsynced. So a journal line written without fsync by
a process that died can be trusted to be there only by a process of the same boot
(see engine/sending.py::settle_interrupted).
"""

from __future__ import annotations

import os
from pathlib import Path

from mailflow import faults

BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")  # Linux: a fresh UUID at every boot


def boot_id() -> str | None:
    """This boot's identity; None when it cannot be known (not Linux, or unreadable).

    A process armed for a simulated power cut is a boot of its own (mailflow/faults.py);
    `MAILFLOW_BOOT_ID` overrides the rest (for tests; empty means unknown)."""
    simulated = faults.simulated_boot()
    if simulated is not None:
        return simulated
    override = os.environ.get("MAILFLOW_BOOT_ID")
    if override is not None:
        return override.strip() or None
    try:
        return BOOT_ID_FILE.read_text().strip() or None
    except OSError:
        return None
