"""What of the working directory is uploaded: ``select_files``.

Git's rules, read with ``pathspec``'s ``GitIgnoreSpec``: every ``.gitignore`` of the tree
applies below its own directory (a deeper one wins over a shallower one, and within a
file the last matching pattern wins, so ``!keep.log`` re-includes a file); then the root's
``.cloreignore``, then the extra ``excludes`` (later still wins, so ``.cloreignore`` can
bring back what ``.gitignore`` leaves out). An ignored directory is not entered, so, as in
git, nothing under it can be re-included. ``.git``, ``.venv`` and ``__pycache__`` are
never uploaded, whatever the patterns say.

A symbolic link is kept as a link only when its target is relative and stays inside the
root (checked on the fully resolved path); a link leaving the root, an absolute one and a
loop are left out, and no link is followed into. Sockets, FIFOs and devices are left out.
``Selection.total_bytes`` counts the regular files' sizes; ``SIZE_WARNING_BYTES`` is where
the runner warns before uploading.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from clore.jobs.task import TaskError

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

__all__ = ["ALWAYS_EXCLUDED", "IGNORE_FILE", "SIZE_WARNING_BYTES", "Selection", "select_files"]

#: The runner warns before uploading more than this.
SIZE_WARNING_BYTES: Final = 500 * 1024 * 1024
#: Names never uploaded (a file or a directory, at any depth).
ALWAYS_EXCLUDED: Final = frozenset({".git", ".venv", "__pycache__"})
#: The root's own ignore file, read after the ``.gitignore`` files.
IGNORE_FILE: Final = ".cloreignore"


@dataclass(frozen=True)
class Selection:
    """The files to upload: ``files`` relative to ``root`` (sorted), their ``total_bytes``,
    and how many paths were ``excluded`` (an excluded directory counts once)."""

    root: Path
    files: tuple[Path, ...]
    total_bytes: int
    excluded: int

    @property
    def too_large(self) -> bool:
        """More than ``SIZE_WARNING_BYTES``: the runner warns before uploading."""
        return self.total_bytes > SIZE_WARNING_BYTES


def select_files(root: Path, excludes: Sequence[str] = ()) -> Selection:
    """The files under ``root`` to upload (see the module docstring); ``TaskError`` naming
    ``workdir`` when ``root`` is not a readable directory."""
    from pathspec import GitIgnoreSpec

    base = Path(root)
    if not base.is_dir():
        raise TaskError(f"not a directory: {base}", field="workdir")
    real = base.resolve()
    top = GitIgnoreSpec.from_lines([*_lines(real / IGNORE_FILE), *excludes])
    walk = _Walk(real, top)
    walk.directory(real, "", [])
    files = sorted(walk.files, key=lambda path: path.as_posix())
    return Selection(root=real, files=tuple(files), total_bytes=walk.size, excluded=walk.excluded)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    except OSError as exc:
        raise TaskError(f"cannot read {path}: {exc.strerror or exc}", field="workdir") from None


class _Walk:
    def __init__(self, root: Path, top: GitIgnoreSpec) -> None:
        self.root = root
        self.top = top
        self.files: list[Path] = []
        self.size = 0
        self.excluded = 0

    def ignored(self, rel: str, is_dir: bool, chain: list[tuple[str, GitIgnoreSpec]]) -> bool:
        """Git's verdict for ``rel`` (posix, relative to the root): the last decisive
        pattern of the deepest ignore file that has one, ``.cloreignore`` and excludes last."""
        verdict: bool | None = None
        for prefix, spec in [*chain, ("", self.top)]:
            tail = rel[len(prefix) :] + ("/" if is_dir else "")
            include = spec.check_file(tail).include
            if include is not None:
                verdict = include
        return bool(verdict)

    def directory(self, path: Path, rel: str, chain: list[tuple[str, GitIgnoreSpec]]) -> None:
        from pathspec import GitIgnoreSpec

        lines = _lines(path / ".gitignore")
        if lines:
            chain = [*chain, (rel, GitIgnoreSpec.from_lines(lines))]
        try:
            entries = sorted(os.scandir(path), key=lambda entry: entry.name)
        except OSError as exc:
            shown = rel or "."
            raise TaskError(
                f"cannot read {shown}: {exc.strerror or exc}", field="workdir"
            ) from None
        for entry in entries:
            name = rel + entry.name
            if entry.name in ALWAYS_EXCLUDED:
                self.excluded += 1
            elif entry.is_symlink():
                if self.ignored(name, False, chain) or not self.link_inside(Path(entry.path)):
                    self.excluded += 1
                else:
                    self.files.append(Path(name))
            elif entry.is_dir(follow_symlinks=False):
                if self.ignored(name, True, chain):
                    self.excluded += 1
                else:
                    self.directory(Path(entry.path), name + "/", chain)
            elif entry.is_file(follow_symlinks=False):
                if self.ignored(name, False, chain):
                    self.excluded += 1
                else:
                    self.files.append(Path(name))
                    self.size += entry.stat(follow_symlinks=False).st_size
            else:
                self.excluded += 1  # a socket, FIFO or device: nothing to upload

    def link_inside(self, link: Path) -> bool:
        """The link's target is relative and, fully resolved, inside the root."""
        try:
            if os.path.isabs(os.readlink(link)):
                return False
            target = link.resolve()
        except (OSError, RuntimeError):  # a loop (RuntimeError before Python 3.13)
            return False
        return target == self.root or self.root in target.parents
