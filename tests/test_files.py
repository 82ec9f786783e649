"""The one file helper: atomic, durable replacement and an exclusive lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from clore._files import locked, write_atomic

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes and flock")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_atomic_writes_bytes_and_text_as_utf8(tmp_path: Path) -> None:
    """Bytes are written as they are and text as UTF-8."""
    write_atomic(tmp_path / "a.bin", b"\x00\xff")
    write_atomic(tmp_path / "b.txt", "clé")
    assert (b"\x00\xff", "clé".encode()) == (
        (tmp_path / "a.bin").read_bytes(),
        (tmp_path / "b.txt").read_bytes(),
    )


def test_write_atomic_replaces_an_existing_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    """Writing over a file replaces its content and leaves only the file in the directory."""
    target = tmp_path / "state.json"
    target.write_text("old content, longer than the new one")
    write_atomic(target, "new")
    assert (target.read_text(), os.listdir(tmp_path)) == ("new", ["state.json"])


@posix_only
def test_write_atomic_gives_mode_0600_by_default_and_the_mode_asked(tmp_path: Path) -> None:
    """The file gets mode 0600 unless another mode is asked for, even over a 0644 file."""
    secret, public = tmp_path / "secret", tmp_path / "public"
    secret.write_text("x")
    secret.chmod(0o644)
    write_atomic(secret, "key")
    write_atomic(public, "listing", mode=0o644)
    assert (_mode(secret), _mode(public)) == (0o600, 0o644)


@posix_only
def test_write_atomic_creates_missing_directories_private(tmp_path: Path) -> None:
    """Missing parent directories are created, the file's own with mode 0700."""
    target = tmp_path / "new" / "dir" / "config.toml"
    write_atomic(target, "x")
    assert (target.read_text(), _mode(target.parent)) == ("x", 0o700)


def test_a_failed_replace_keeps_the_old_target_and_removes_the_temporary(tmp_path: Path) -> None:
    """When the rename fails (the target is a directory) nothing is left behind."""
    target = tmp_path / "taken"
    target.mkdir()
    with pytest.raises(OSError):
        write_atomic(target, "data")
    assert (os.listdir(tmp_path), os.listdir(target)) == (["taken"], [])


def test_write_atomic_flushes_the_file_and_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both the new file and the directory holding its name are flushed to disk."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_atomic(tmp_path / "f", "x")
    expected = ["file"] if sys.platform == "win32" else ["file", "dir"]
    assert expected == synced


def test_locked_creates_the_lock_file_0600_and_yields_a_readable_descriptor(
    tmp_path: Path,
) -> None:
    """The locked file is created when missing and can be read and written through the fd."""
    path = tmp_path / "sub" / "k.json"
    with locked(path) as fd:
        os.write(fd, b"hello")
        os.lseek(fd, 0, os.SEEK_SET)
        content = os.read(fd, 100)
    assert content == b"hello"
    if sys.platform != "win32":
        assert (_mode(path), _mode(path.parent)) == (0o600, 0o700)


def test_locked_excludes_another_thread_until_released(tmp_path: Path) -> None:
    """A second thread locking the same path waits until the first releases it."""
    path = tmp_path / "lock"
    events: list[str] = []
    entered = threading.Event()

    def other() -> None:
        with locked(path):
            events.append("other")
        entered.set()

    with locked(path):
        thread = threading.Thread(target=other)
        thread.start()
        # The other thread cannot get in while we hold the lock.
        assert not entered.wait(0.2)
        events.append("first released")
    assert entered.wait(10)
    thread.join(10)
    assert events == ["first released", "other"]


@posix_only
def test_locked_excludes_another_process(tmp_path: Path) -> None:
    """Another process cannot take the lock while this one holds it."""
    path = tmp_path / "lock"
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try:\n"
        "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n"
        "    print('busy')\n"
        "else:\n"
        "    print('free')\n"
    )

    def ask() -> str:
        run = subprocess.run(
            [sys.executable, "-c", probe, str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return run.stdout.strip()

    with locked(path):
        held = ask()
    assert (held, ask()) == ("busy", "free")
