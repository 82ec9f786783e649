"""The package's public surface: curated, sorted, importable, and cheap to import."""

from __future__ import annotations

import subprocess
import sys

import clore


def test_all_is_sorted_and_unique() -> None:
    """`clore.__all__` is sorted and lists each name once."""
    assert list(clore.__all__) == sorted(set(clore.__all__))


def test_every_exported_name_resolves() -> None:
    """Every name in `clore.__all__` can be read from the package."""
    missing = [name for name in clore.__all__ if getattr(clore, name, None) is None]
    assert missing == []


def test_unknown_attribute_raises_attribute_error() -> None:
    """Asking the package for a name it does not export is an AttributeError."""
    try:
        clore.does_not_exist  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:  # pragma: no cover - the test fails here
        raise AssertionError("expected AttributeError")


def test_importing_the_package_loads_no_heavy_dependency() -> None:
    """`import clore` alone imports neither httpx, msgspec nor rich (fast CLI start)."""
    code = (
        "import sys, clore; "
        "print(','.join(m for m in ('httpx', 'msgspec', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_all_lists_exactly_the_lazy_exports() -> None:
    """Every lazily exported name is in `__all__`, and nothing else but `__version__`."""
    assert sorted([*clore._EXPORTS, "__version__"]) == list(clore.__all__)
