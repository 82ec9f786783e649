"""Reading an ``--ssh-key`` file: a private key is recognised from its first bytes and
never read further; a public key is read whole, its ``.pub`` sibling used for a private one."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from clore import ParameterError
from clore._sshkey import read_public_key

PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@box"
HEADERS = [
    "-----BEGIN OPENSSH PRIVATE KEY-----\n",
    "-----BEGIN RSA PRIVATE KEY-----\n",
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n",
    "PuTTY-User-Key-File-3: ssh-ed25519\n",
    "openssh-key-v1\x00",
]


class _Counting:
    """A binary file that adds up how many bytes were read from it."""

    total = 0

    def __init__(self, handle: io.BufferedReader) -> None:
        self._handle = handle

    def read(self, size: int | None = -1) -> bytes:
        data = self._handle.read(size)
        _Counting.total += len(data)
        return data

    def __enter__(self) -> _Counting:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


@pytest.fixture
def bytes_read(monkeypatch: pytest.MonkeyPatch) -> type[_Counting]:
    """Count the bytes read through Path.open(\"rb\")."""
    real_open = Path.open

    def counting_open(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, mode, *args, **kwargs)
        if mode == "rb":
            return _Counting(handle)
        return handle

    _Counting.total = 0
    monkeypatch.setattr(Path, "open", counting_open)
    return _Counting


@pytest.mark.parametrize("header", HEADERS)
def test_a_private_key_is_read_no_further_than_its_first_bytes(
    header: str, tmp_path: Path, bytes_read: type[_Counting]
) -> None:
    """A 1 MB private key file: refused as a private key after reading at most 64 bytes."""
    key = tmp_path / "id_ed25519"
    key.write_text(header + "QUJD" * 262144)
    with pytest.raises(ParameterError) as info:
        read_public_key(key, "--ssh-key")
    assert str(info.value) == (
        f"--ssh-key: {key} is a private key: give its public half (the .pub file) instead"
    )
    assert bytes_read.total <= 64


def test_the_pub_sibling_is_read_instead_and_named(tmp_path: Path) -> None:
    """id_x is private and id_x.pub is a public key: that key, from that file."""
    (tmp_path / "id_x").write_text(HEADERS[0] + "QUJD\n")
    (tmp_path / "id_x.pub").write_text(PUBLIC + "\n")
    found = read_public_key(tmp_path / "id_x")
    assert (found.text, found.path, found.instead_of) == (
        PUBLIC,
        tmp_path / "id_x.pub",
        tmp_path / "id_x",
    )


def test_a_bad_pub_sibling_is_not_used(tmp_path: Path) -> None:
    """id_x.pub that is not a public key either: the refusal names id_x."""
    (tmp_path / "id_x").write_text(HEADERS[0])
    (tmp_path / "id_x.pub").write_text(HEADERS[0])
    with pytest.raises(ParameterError, match="id_x is a private key"):
        read_public_key(tmp_path / "id_x")


def test_a_special_file_is_not_opened(tmp_path: Path) -> None:
    """A FIFO (or a device) is refused without opening it, so nothing blocks."""
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ParameterError, match="is not a regular file"):
        read_public_key(fifo)


def test_a_path_with_control_characters_is_shown_escaped(tmp_path: Path) -> None:
    """The refusal stays one line whatever the file name holds."""
    with pytest.raises(ParameterError) as info:
        read_public_key(tmp_path / "a\nb\x1b[31m")
    assert len(str(info.value).splitlines()) == 1 and "\x1b" not in str(info.value)


def test_a_public_key_file_is_read_whole(tmp_path: Path, bytes_read: type[_Counting]) -> None:
    """A .pub file is read in full (the counter sees every byte) and trimmed."""
    key = tmp_path / "id_ed25519.pub"
    key.write_text(PUBLIC + "\n")
    assert read_public_key(key).text == PUBLIC
    assert bytes_read.total == len(PUBLIC) + 1
