"""What of a working directory ``clore run`` uploads: git's ignore rules, the root's
.cloreignore, extra excludes, never .git/.venv/__pycache__, no link out of the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clore.jobs.task import TaskError
from clore.jobs.workdir import SIZE_WARNING_BYTES, Selection, select_files


def tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text) under ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def names(selection: Selection) -> list[str]:
    return [path.as_posix() for path in selection.files]


def test_gitignore_patterns_negation_and_directories(tmp_path: Path) -> None:
    """``*.log`` with ``!keep.log`` keeps keep.log; ``logs/`` drops the directory, and, as
    in git, a file under an ignored directory cannot be re-included."""
    root = tree(
        tmp_path,
        {
            ".gitignore": "*.log\n!keep.log\nlogs/\n/build\n",
            "train.py": "print()\n",
            "debug.log": "x",
            "keep.log": "kept",
            "logs/keep.log": "under an ignored directory",
            "logs/other.txt": "x",
            "build/out.bin": "x",
            "src/build/module.py": "anchored /build matches only at the root",
            "src/deep/keep.log": "kept at any depth",
            "src/deep/trace.log": "x",
        },
    )
    selection = select_files(root)
    assert names(selection) == [
        ".gitignore",
        "keep.log",
        "src/build/module.py",
        "src/deep/keep.log",
        "train.py",
    ]
    assert selection.excluded == 4  # debug.log, logs/, build/, src/deep/trace.log


def test_a_directory_pattern_does_not_match_a_file(tmp_path: Path) -> None:
    """``data/`` ignores a directory named data, not a file named data."""
    root = tree(tmp_path, {".gitignore": "data/\n", "data": "a file", "sub/data/x.csv": "x"})
    assert names(select_files(root)) == [".gitignore", "data"]


def test_nested_gitignore_applies_below_its_directory_and_wins(tmp_path: Path) -> None:
    """A deeper .gitignore scopes its patterns to its directory and overrides the root's."""
    root = tree(
        tmp_path,
        {
            ".gitignore": "*.log\n",
            "top.tmp": "the nested *.tmp does not reach up here",
            "a.log": "x",
            "pkg/.gitignore": "*.tmp\n!wanted.log\n/local.txt\n",
            "pkg/x.tmp": "x",
            "pkg/wanted.log": "re-included by the deeper file",
            "pkg/local.txt": "x",
            "pkg/sub/local.txt": "anchored /local.txt is pkg/local.txt only",
            "pkg/sub/y.tmp": "x",
            "pkg/sub/z.log": "x",
        },
    )
    assert names(select_files(root)) == [
        ".gitignore",
        "pkg/.gitignore",
        "pkg/sub/local.txt",
        "pkg/wanted.log",
        "top.tmp",
    ]


def test_cloreignore_and_excludes_come_last(tmp_path: Path) -> None:
    """.cloreignore can bring back a git-ignored file; extra excludes drop more."""
    root = tree(
        tmp_path,
        {
            ".gitignore": "*.csv\n",
            ".cloreignore": "!data.csv\ncheckpoints/\n",
            "data.csv": "needed on the machine",
            "other.csv": "x",
            "checkpoints/step1.pt": "x",
            "notes.md": "x",
            "main.py": "x",
        },
    )
    assert names(select_files(root, ["*.md"])) == [
        ".cloreignore",
        ".gitignore",
        "data.csv",
        "main.py",
    ]
    assert names(select_files(root, ["*.md", "!notes.md", "main.py"])) == [
        ".cloreignore",
        ".gitignore",
        "data.csv",
        "notes.md",
    ]


def test_git_venv_and_pycache_are_never_uploaded(tmp_path: Path) -> None:
    """.git, .venv and __pycache__ stay out at any depth, even when patterns say otherwise."""
    root = tree(
        tmp_path,
        {
            ".cloreignore": "!.git/\n!.venv\n!__pycache__/\n",
            ".git/HEAD": "ref",
            ".venv/bin/python": "x",
            "pkg/__pycache__/m.cpython-311.pyc": "x",
            "pkg/m.py": "x",
            "vendor/lib/.git": "gitdir: ../../.git/modules/lib",
        },
    )
    selection = select_files(root)
    assert names(selection) == [".cloreignore", "pkg/m.py"]
    assert selection.excluded == 4


def test_symlinks_stay_inside_the_root(tmp_path: Path) -> None:
    """A relative link inside the root is kept as a link; one that leaves the root, an
    absolute one and a loop are left out; a linked directory is never entered."""
    outside = tree(tmp_path / "outside", {"secret.txt": "do not upload", "dir/f.txt": "x"})
    root = tree(tmp_path / "root", {"main.py": "x", "pkg/util.py": "x"})
    (root / "inside").symlink_to("pkg/util.py")
    (root / "pkg" / "up").symlink_to("../main.py")
    (root / "pkg_link").symlink_to("pkg")
    (root / "escape").symlink_to("../outside/secret.txt")
    (root / "pkg" / "escape2").symlink_to("../../outside/dir")
    (root / "absolute").symlink_to(root / "main.py")
    (root / "abs_out").symlink_to(outside / "secret.txt")
    (root / "loop_a").symlink_to("loop_b")
    (root / "loop_b").symlink_to("loop_a")
    (root / "via").symlink_to("pkg/escape2")  # inside, but resolves outside
    selection = select_files(root)
    assert names(selection) == ["inside", "main.py", "pkg/up", "pkg/util.py", "pkg_link"]
    assert selection.excluded == 7
    assert (root / selection.files[0]).is_symlink()
    assert all(root.resolve() in (root / p).resolve().parents for p in selection.files)


def test_total_bytes_counts_regular_files_only(tmp_path: Path) -> None:
    """The size is the selected files' bytes; links and excluded files add nothing."""
    root = tree(tmp_path, {".gitignore": "big.bin\n", "a.txt": "12345", "b/c.txt": "123"})
    (root / "big.bin").write_bytes(b"\0" * 10_000)
    (root / "link").symlink_to("a.txt")
    selection = select_files(root)
    assert selection.total_bytes == len("big.bin\n") + 5 + 3  # .gitignore, a.txt, b/c.txt
    assert selection.total_bytes == sum(
        (root / p).lstat().st_size for p in selection.files if not (root / p).is_symlink()
    )
    assert not selection.too_large


def test_special_files_are_left_out(tmp_path: Path) -> None:
    """A FIFO (or socket, device) has nothing to upload and would hang a reader."""
    root = tree(tmp_path, {"a.txt": "x"})
    os.mkfifo(root / "pipe")
    selection = select_files(root)
    assert names(selection) == ["a.txt"]
    assert selection.excluded == 1


def test_the_size_warning_threshold() -> None:
    """The runner warns above 500 MiB."""
    assert SIZE_WARNING_BYTES == 500 * 1024 * 1024
    at = Selection(root=Path("."), files=(), total_bytes=SIZE_WARNING_BYTES, excluded=0)
    over = Selection(root=Path("."), files=(), total_bytes=SIZE_WARNING_BYTES + 1, excluded=0)
    assert (at.too_large, over.too_large) == (False, True)


def test_a_root_that_is_not_a_directory(tmp_path: Path) -> None:
    """A missing or non-directory root is a one-line TaskError naming workdir."""
    with pytest.raises(TaskError, match=r"^workdir: not a directory: "):
        select_files(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(TaskError, match="not a directory"):
        select_files(tmp_path / "file")


def test_files_are_relative_and_sorted(tmp_path: Path) -> None:
    """Paths are relative to the root, sorted as posix strings; the root is absolute."""
    root = tree(tmp_path, {"b.txt": "", "a/z.txt": "", "a/b/c.txt": "", "A.txt": ""})
    selection = select_files(root)
    assert names(selection) == ["A.txt", "a/b/c.txt", "a/z.txt", "b.txt"]
    assert selection.root == root.resolve()
    assert all(not path.is_absolute() for path in selection.files)
