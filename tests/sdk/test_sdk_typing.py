"""The SDK's typing catches typos: ``mypy --strict`` passes ``tests/typing/usage.py`` and
fails a copy of it with a misspelt currency or order type (a real mypy process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

USAGE = Path(__file__).resolve().parents[1] / "typing" / "usage.py"

#: (what the typo is, the text in usage.py, the misspelling, the parameter mypy names).
TYPOS = [
    ("search currency", 'currency="usd", sort=', 'currency="uds", sort=', '"currency" to "search"'),
    ("create_order currency", 'currency="btc",', 'currency="bct",', '"currency" to "create_order"'),
    (
        "create_order order_type",
        'order_type="on-demand",',
        'order_type="on-dmand",',
        '"order_type" to "create_order"',
    ),
    (
        "spot order_type",
        'order_type="spot",',
        'order_type="sopt",',
        '"order_type" to "create_order"',
    ),
]


def mypy(path: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` over one file, run from its directory (no project config)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-version",
            "3.10",
            "--cache-dir",
            str(cache),
            "--no-error-summary",
            path.name,
        ],
        capture_output=True,
        text=True,
        cwd=path.parent,
        timeout=110,
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for the module's runs (the first run is the slow one)."""
    return tmp_path_factory.mktemp("mypy-cache")


@pytest.mark.slow
def test_the_typed_usage_passes_mypy_strict(cache: Path) -> None:
    """The usage file, as written, type-checks under --strict."""
    done = mypy(USAGE, cache)
    assert (done.returncode, done.stdout) == (0, "")


@pytest.mark.slow
@pytest.mark.parametrize(("what", "right", "wrong", "named"), TYPOS, ids=[t[0] for t in TYPOS])
def test_a_typo_in_a_literal_argument_fails_mypy(
    tmp_path: Path, cache: Path, what: str, right: str, wrong: str, named: str
) -> None:
    """A copy with one misspelt name fails, mypy naming the argument and the method."""
    text = USAGE.read_text()
    assert text.count(right) == 1, what
    # A module name per case: mypy's cache keys on it (and same-sized copies look alike).
    copy = tmp_path / f"usage_{'_'.join(what.split())}.py"
    copy.write_text(text.replace(right, wrong))
    done = mypy(copy, cache)
    assert done.returncode == 1, done.stdout
    errors = [line for line in done.stdout.splitlines() if ": error: " in line]
    assert len(errors) == 1, done.stdout
    assert named in errors[0] and "[arg-type]" in errors[0]
