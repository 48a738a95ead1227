"""Crash-point fault injection: end the process at durability point N, as a kill or power cut.

The store and the transports call `point(name)` at every durability point (each journal
append, fsync, checkpoint write and rename, body write, each SMTP and IMAP command). Unarmed,
a point costs one global lookup. Armed (`MAILFLOW_CRASH_AT=N`, or `arm()` in a test), the N-th
point ends the process with `os._exit` as SIGKILL would; in `powercut` mode it first drops
every write not yet made durable, as a power cut does (the method of SQLite's crash tests and
the ALICE study): journal bytes past the last fsync are cut off, and renames or new files
whose folder was not fsynced are undone. In the errno modes (`enospc`, `erofs`, `eacces`,
`enoent`) the N-th call into the kernel fails with that error instead: a full disk, a
read-only folder, a file of another user, a file that vanished, each of which must end in one
line and leave nothing half-written.

A power cut also reboots the machine: a process armed for one runs in a boot of its own
(`simulated_boot`), so whatever recovers after it sees another boot; a kill keeps the boot.

Counting (`arm(0, "count")`) keeps the power-cut bookkeeping too, and notes the points where a
power cut would drop something (`exposed()`): at every other point a power cut leaves exactly
what a kill leaves, so a test need not try it twice (as ALICE explores only distinct states).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

CRASH_EXIT = 86  # the status a crashed child exits with, so tests can tell it from a failure

_at = int(os.environ.get("MAILFLOW_CRASH_AT") or 0)
_mode = os.environ.get("MAILFLOW_CRASH_MODE") or "kill"
# modes that raise an OSError at point N instead of ending the process
ERRNO_MODES = {"enospc": errno.ENOSPC, "erofs": errno.EROFS, "eacces": errno.EACCES,
               "enoent": errno.ENOENT}
_NOT_IO = ("journal append", "smtp", "imap", "body write")
_TRACKING = ("powercut", "count")  # the modes that keep the power-cut bookkeeping
_count = 0
_names: list[str] = []
# power-cut bookkeeping: a file's size at its last fsync, and folder changes not yet durable
_synced: dict[str, int] = {}
_undo: list[tuple[Path, bytes | None]] = []
_exposed: list[int] = []  # while counting: points where a power cut would drop a write


def arm(at: int, mode: str = "kill") -> None:
    """Crash at point `at` (0 with mode "count": only count) in `mode` (see the module)."""
    global _at, _mode, _count
    _at, _mode, _count = at, mode, 0
    _names.clear()
    _synced.clear()
    _undo.clear()
    _exposed.clear()


def count() -> int:
    """How many durability points this process has passed since it was armed."""
    return _count


def names() -> list[str]:
    """The names of the points passed so far (tracked only while armed)."""
    return list(_names)


def exposed() -> list[int]:
    """The points (counted so far) at which a power cut would drop a write not yet durable."""
    return list(_exposed)


def active() -> bool:
    """Whether points are being counted (a test or MAILFLOW_CRASH_AT armed the injector)."""
    return _at > 0 or _mode == "count"


def point(name: str) -> None:
    """A durability point: counted, and the place where an armed injector strikes."""
    global _count
    if not (_at or _mode == "count"):
        return
    if _mode in ERRNO_MODES and name.startswith(_NOT_IO):
        return  # an error can only come from a call into the kernel
    _count += 1
    _names.append(name)
    if _mode == "count" and _unsynced():
        _exposed.append(_count)
    if _count != _at:
        return
    if _mode in ERRNO_MODES:
        code = ERRNO_MODES[_mode]
        raise OSError(code, os.strerror(code))
    if _mode == "powercut":
        _power_cut()
    os._exit(CRASH_EXIT)


def simulated_boot() -> str | None:
    """While armed for a power cut, this process counts as a boot of its own (None otherwise).

    A real power cut also reboots the machine, and what the next process may trust of the
    journal depends on it (mailflow/boot.py): marks made by a process that dies in a simulated
    power cut must not look like the recovering process's boot, whoever starts that one."""
    return f"simulated-power-cut-{os.getpid()}" if _mode == "powercut" and _at else None


def synced(path: Path, size: int) -> None:
    """`path` was fsynced at `size` bytes: what lies before survives a power cut."""
    if _mode in _TRACKING:
        _synced[str(path)] = size


def replacing(path: Path) -> None:
    """`path` is about to be replaced or created; until its folder is fsynced it may revert."""
    if _mode in _TRACKING:
        try:
            old: bytes | None = path.read_bytes()
        except FileNotFoundError:
            old = None
        _undo.append((path, old))


def folder_synced(folder: Path) -> None:
    """The folder's entries are durable: renames and new files in it stay after a power cut."""
    if _mode in _TRACKING:
        _undo[:] = [(p, old) for p, old in _undo if p.parent != folder]


def _unsynced() -> bool:
    """Whether a power cut now would change anything on disk (see `_power_cut`)."""
    if _undo:
        return True
    for path, size in _synced.items():
        try:
            if os.path.getsize(path) > size:
                return True
        except OSError:
            pass
    return False


def _power_cut() -> None:
    for path, size in _synced.items():
        try:
            if os.path.getsize(path) > size:
                os.truncate(path, size)
        except OSError:
            pass
    for path, old in reversed(_undo):
        if old is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(old)
