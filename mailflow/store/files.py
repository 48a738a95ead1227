"""Durable file operations of the store, and storage faults turned into one line each."""

from __future__ import annotations

import datetime as dt
import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from tinydb.storages import Storage

from mailflow import faults
from mailflow.errors import StoreError


def fault(path: Path, action: str, err: OSError) -> StoreError:
    """One line naming the file, what failed, and what to do about it (exit 5)."""
    code = err.errno
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = "the disk is full: free some space, then run the command again"
    elif code == errno.EROFS:
        hint = "the file system is read-only: remount it read-write, then run the command again"
    elif code in (errno.EACCES, errno.EPERM):
        hint = f"permission denied{_owner(path)}: run mailflow as the project's owner"
    elif code == errno.ENOENT:
        hint = "it vanished while mailflow was using it: run `mailflow doctor`"
    elif code in (errno.ENOTDIR, errno.EISDIR):
        hint = "a file and a folder are in each other's place: run `mailflow doctor`"
    else:
        hint = err.strerror or str(err)
    return StoreError(f"{path}: cannot {action}: {hint}; nothing was changed by this command "
                      "beyond what is already recorded")


def _owner(path: Path) -> str:
    for candidate in (path, path.parent):
        try:
            uid = candidate.stat().st_uid
        except OSError:
            continue
        if uid != os.geteuid():
            return f" ({candidate} belongs to user id {uid})"
        return ""
    return ""


@contextmanager
def io(path: Path, action: str) -> Iterator[None]:
    """Turn an OSError from a store operation on `path` into a StoreError line."""
    try:
        yield
    except OSError as err:
        raise fault(path, action, err) from err


def fsync_dir(folder: Path) -> None:
    """Make the folder's entries (new names, renames) durable."""
    faults.point(f"fsync-dir {folder.name}")
    _fsync(folder)
    faults.folder_synced(folder)


def write_atomically(path: Path, payload: bytes, *, backup: Path | None = None,
                     sync_dir: bool = True) -> None:
    """Replace `path` with `payload`: temp file, fsync, rename, fsync the folder; mode 0600.

    A crash at any moment leaves the old file or the new one; a failure leaves no temp file.
    `backup`, when given, becomes a hard link to the file being replaced. Without
    `sync_dir` the caller fsyncs the folder itself (once for many files).
    """
    write_streamed(path, lambda f: f.write(payload), backup=backup, sync_dir=sync_dir)


def write_streamed(path: Path, fill: Callable[[BinaryIO], object], *,
                   backup: Path | None = None, sync_dir: bool = True, sync: bool = True
                   ) -> None:
    """As write_atomically, with the content written into the temp file by `fill(file)`;
    without `sync`, neither the file nor its folder is fsynced (write_deferred)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with io(path, "write"):
        try:
            faults.point(f"write {path.name}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                fill(f)
                if sync:
                    f.flush()
                    faults.point(f"fsync {path.name}")
                    os.fsync(f.fileno())
            if backup is not None and path.exists():
                faults.replacing(backup)
                backup.unlink(missing_ok=True)
                os.link(path, backup)
            faults.point(f"rename {path.name}")
            faults.replacing(path)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if sync and sync_dir:
            fsync_dir(path.parent)


def write_deferred(path: Path, payload: bytes) -> None:
    """As write_atomically without its fsyncs: the caller makes the file and its folder
    durable (fsync_all) before anything that refers to it is."""
    write_streamed(path, lambda f: f.write(payload), sync=False)


def fsync_file(path: Path) -> None:
    """Make a file's content durable."""
    faults.point(f"fsync {path.name}")
    _fsync(path)


def fsync_all(paths: list[Path], *, folders: bool = False) -> None:
    """fsync many files (or folders) together: each one's durability point in order, then
    the fsyncs side by side, each failure naming its path.

    One by one, each fsync of a new file waits for its own commit of the file system's
    journal; issued together they share commits (1,000 drafts' bodies on ext4: 0.4-2.5 s one
    by one, 0.1-0.25 s together; issue 18). Nothing refers to any of them until all are done.
    """
    for path in paths:
        with io(path, "make durable"):
            faults.point(f"fsync-dir {path.name}" if folders else f"fsync {path.name}")
    if len(paths) < 4:
        for path in paths:
            _fsync_named(path)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(16, len(paths))) as pool:
            for _ in pool.map(_fsync_named, paths):
                pass
    if folders:
        for path in paths:
            faults.folder_synced(path)


def _fsync_named(path: Path) -> None:
    with io(path, "make durable"):
        _fsync(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)  # a folder opens read-only too: fsync needs no write
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def json_default(value: Any) -> Any:
    """Dates as ISO text; anything else unknown is a bug."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__}")


class AtomicJSONStorage(Storage):
    """TinyDB storage that replaces its file atomically (temp, fsync, rename), mode 0600.

    The previous checkpoint is kept as a hard link `<name>.bak`: when the newest does not
    match the journal, the older one may, and only the events after it need replaying.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]] | None:
        """The whole database, or None when the file does not exist yet."""
        try:
            with io(self.path, "read"):
                raw = self.path.read_bytes()
        except StoreError as err:
            if isinstance(err.__cause__, FileNotFoundError):
                return None
            raise
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:  # orjson.JSONDecodeError is a ValueError
            raise StoreError(f"{self.path}: the database is damaged ({err}); nothing was "
                             "changed: `mailflow doctor --repair` rebuilds it from the "
                             "journal (the damaged file is kept beside it)") from err
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        """Replace the file atomically with `data`, one record per line (store/checkpoint.py)."""
        from mailflow.store.checkpoint import write_lined
        write_streamed(self.path, lambda f: write_lined(f, data, json_default),
                       backup=self.path.with_name(self.path.name + ".bak"))

    def close(self) -> None:
        """Nothing to release: the file is not held open."""
