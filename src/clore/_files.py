"""Files the package writes: replaced atomically and durably, and changed under a lock.

``write_atomic`` is the one way a file is replaced: the data goes to a temporary file in
the same directory, is flushed to disk, gets its mode, and is renamed over the target;
then the directory is flushed, so that after a crash the file holds either the old or
the new content, never a mix or nothing. ``locked`` holds an exclusive lock on a file
across the threads and processes of the machine (``fcntl.flock``; on Windows
``msvcrt.locking`` of its first byte): a lock belongs to an open file, so two ``locked``
on one path block each other even within one process. It is not re-entrant.

Both create missing parent directories with mode 0700: the files hold keys or a key's
history.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["locked", "write_atomic"]


def _fsync_directory(directory: Path) -> None:
    """Flush ``directory``'s entries (the rename) to disk, where the system allows it."""
    if sys.platform == "win32":  # pragma: no cover - directories cannot be opened there
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path | str, data: bytes | str, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` (str is written as UTF-8), the file getting ``mode``.

    The temporary file exists with mode 0600 from its creation, so a secret is never
    readable by others, not even for a moment; it is removed when anything fails.
    """
    target = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(target.parent)


@contextlib.contextmanager
def locked(path: Path | str) -> Iterator[int]:
    """Hold an exclusive lock on ``path`` (created with mode 0600 when missing).

    Yields the open file descriptor, read-write at offset 0, for callers that keep their
    data in the locked file itself; closing it releases the lock.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _lock(fd)
        try:
            yield fd
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        # Locks the first byte, whether or not the file has one yet; the position must
        # be 0 both to lock and to unlock the same byte.
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
