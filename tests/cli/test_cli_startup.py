"""The command's start: lazy imports, the entry point, python -m clore, version."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import clore
from clore.cli._group import COMMANDS

HEAVY = ("httpx", "msgspec", "rich")
CLORE = Path(sys.executable).with_name("clore")


def _loaded_after(argv: list[str]) -> list[str]:
    code = (
        "import sys\n"
        "from clore.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    last = done.stderr.strip().splitlines()[-1]
    return [m for m in last.removeprefix("loaded:").split(",") if m]


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["-h"]])
def test_help_and_version_import_no_heavy_dependency(argv: list[str]) -> None:
    """clore --help / --version load neither httpx, msgspec nor rich."""
    assert _loaded_after(argv) == []


def test_listing_commands_imports_no_command_module() -> None:
    """The top-level help reads the command table (and the global options' parameter
    types), not the command modules."""
    code = (
        "import sys\nfrom clore.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('clore.cli.')), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = done.stderr.strip().splitlines()[-1]
    assert loaded == "['clore.cli._group', 'clore.cli._params']"


def test_version_flag_prints_the_package_version() -> None:
    """clore --version prints "clore <version>" and exits 0."""
    done = subprocess.run([str(CLORE), "--version"], capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, f"clore {clore.__version__}")


def test_python_dash_m_clore_runs_the_same_cli() -> None:
    """python -m clore --help shows the clore usage line."""
    done = subprocess.run(
        [sys.executable, "-m", "clore", "--help"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("Usage: clore [OPTIONS] COMMAND [ARGS]...")


def test_help_lists_every_command_in_the_table() -> None:
    """Every command of the lazy table appears in clore --help."""
    done = subprocess.run([str(CLORE), "--help"], capture_output=True, text=True, check=True)
    missing = [name for name in COMMANDS if f"\n  {name} " not in done.stdout]
    assert missing == []


def test_shell_completion_lists_commands_and_options() -> None:
    """click's completion (documented in docs/cli.md) completes commands and options."""
    env = dict(os.environ, _CLORE_COMPLETE="bash_complete", COMP_WORDS="clore mar", COMP_CWORD="1")
    done = subprocess.run([CLORE], capture_output=True, text=True, env=env)
    assert "plain,market" in done.stdout.splitlines()
    env.update(COMP_WORDS="clore market --cur", COMP_CWORD="2")
    done = subprocess.run([CLORE], capture_output=True, text=True, env=env)
    assert "plain,--currency" in done.stdout.splitlines()


def test_the_cli_uses_the_public_sdk_names() -> None:
    """Commands build clients from `clore.Clore`/`clore.Pacing`, not the private modules
    (every import is checked by tests/test_import_boundaries.py; this catches the text)."""
    source = Path(clore.__file__).parent / "cli"
    private = re.compile(r"clore\._client|clore\._pacing|clore\._errors|from clore import _[a-z]")
    offenders = [
        f"{path.name}: {found.group()}"
        for path in sorted(source.glob("*.py"))
        for found in private.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
