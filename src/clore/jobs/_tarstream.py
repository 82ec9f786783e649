"""Tar streams for a job's files: written chunk by chunk for an upload, read member by
member for a download, with nothing extracted outside the destination.

Writing is plain POSIX tar headers (pax for long names and big sizes, via
``tarfile.TarInfo.tobuf``) and the files' bytes, produced as ``bytes`` chunks so the
caller can put each on the wire as it comes: no temporary archive, no thread. Regular
files, directories and symbolic links (kept as links) are written; anything else is
skipped. Owners are written as root (uid 0), so an extraction by root does not hand the
files to a stranger's uid.

Reading uses ``tarfile`` in stream mode (``r|``) on a pipe. Each member must lie under
one of the requested outputs and pass ``tarfile.data_filter`` (Python 3.12, 3.11.4,
3.10.12 and later: no absolute names, no ``..``, no links pointing out, no devices,
no setuid bits), or the same rules checked here on older Pythons; a member that fails is
skipped and reported, never written.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = ["Extracted", "content_bytes", "extract_stream", "tar_chunks"]

CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE
#: Whether this Python has the extraction filters (PEP 706).
HAS_DATA_FILTER = hasattr(tarfile, "data_filter")
_FilterError: type[Exception] | tuple[()] = getattr(tarfile, "FilterError", ())


def _tarinfo(root: Path, rel: Path) -> tuple[tarfile.TarInfo, Path] | None:
    path = root / rel
    st = path.lstat()
    info = tarfile.TarInfo(rel.as_posix())
    info.mtime = int(st.st_mtime)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISREG(st.st_mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
    else:
        return None
    return info, path


def tar_chunks(root: Path, files: Sequence[Path], *, chunk: int = CHUNK) -> Iterator[bytes]:
    """The tar stream of ``files`` (relative to ``root``), in chunks of about ``chunk``
    bytes. A file that shrinks while read is padded with zeros, one that grows is cut at
    the size its header gave (the archive stays well formed)."""
    pending: list[bytes] = []
    size = 0
    for rel in files:
        rel = Path(rel)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"{rel}: not a path inside the directory")
        found = _tarinfo(root, rel)
        if found is None:
            continue
        info, path = found
        pending.append(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        size += len(pending[-1])
        if info.type == tarfile.REGTYPE and info.size:
            left = info.size
            with open(path, "rb") as handle:
                while left:
                    data = handle.read(min(chunk, left))
                    if not data:
                        data = bytes(min(chunk, left))  # shrank meanwhile
                    left -= len(data)
                    pending.append(data)
                    size += len(data)
                    if size >= chunk:
                        yield b"".join(pending)
                        pending, size = [], 0
            tail = -info.size % _BLOCK
            if tail:
                pending.append(bytes(tail))
                size += tail
        if size >= chunk:
            yield b"".join(pending)
            pending, size = [], 0
    pending.append(bytes(2 * _BLOCK))
    yield b"".join(pending)


def content_bytes(root: Path, files: Sequence[Path]) -> int:
    """The bytes of file content ``tar_chunks`` will send (for progress)."""
    total = 0
    for rel in files:
        try:
            st = (root / rel).lstat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            total += st.st_size
    return total


@dataclass
class Extracted:
    """What an extraction wrote (top-level outputs found) and what it refused, and why."""

    outputs: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    members: int = 0


def _under(name: str, outputs: Sequence[str]) -> str | None:
    for out in outputs:
        if name == out or name.startswith(out + "/"):
            return out
    return None


def _inside(base: str, path: str) -> bool:
    return os.path.commonpath([base, path]) == base


def _check_old(member: tarfile.TarInfo, dest: str) -> str | None:
    """The data filter's rules, for Pythons without it: why ``member`` is refused."""
    name = member.name
    if name.startswith("/") or os.path.isabs(name):
        return "an absolute path"
    target = os.path.realpath(os.path.join(dest, name))
    if not _inside(dest, target):
        return "a path outside the destination"
    if member.issym():
        link = member.linkname
        if link.startswith("/") or os.path.isabs(link):
            return "a link to an absolute path"
        where = os.path.realpath(os.path.join(dest, os.path.dirname(name), link))
        if not _inside(dest, where):
            return "a link pointing outside the destination"
    elif member.islnk():
        where = os.path.realpath(os.path.join(dest, member.linkname))
        if not _inside(dest, where):
            return "a hard link pointing outside the destination"
    elif not (member.isreg() or member.isdir()):
        return "a special file"
    return None


def extract_stream(fileobj: IO[bytes], dest: Path, outputs: Sequence[str]) -> Extracted:
    """Extract the tar stream read from ``fileobj`` into ``dest``, keeping only members
    under ``outputs`` that are safe; the stream is read to its end either way."""
    dest.mkdir(parents=True, exist_ok=True)
    base = os.path.realpath(dest)
    wanted = [posixpath.normpath(o).rstrip("/") for o in outputs]
    done = Extracted()
    with tarfile.open(fileobj=fileobj, mode="r|") as archive:
        for member in archive:
            done.members += 1
            name = posixpath.normpath(member.name)
            top = _under(name, wanted)
            if top is None:
                done.refused.append((member.name, "not under a requested output"))
                continue
            try:
                if HAS_DATA_FILTER:
                    archive.extract(member, base, filter="data")
                else:
                    problem = _check_old(member, base)
                    if problem is not None:
                        done.refused.append((member.name, problem))
                        continue
                    member.mode &= 0o755
                    member.uid, member.gid = os.getuid(), os.getgid()
                    member.uname = member.gname = ""
                    archive.extract(member, base)
            except _FilterError as exc:
                done.refused.append((member.name, str(exc)))
                continue
            if top not in done.outputs:
                done.outputs.append(top)
    return done
