"""The import boundaries (``scripts/check_imports.py``): none is crossed in ``src/``, and the
checker reports each kind of crossing in a tree made to cross them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_imports.py"


@pytest.fixture(scope="module")
def checker() -> ModuleType:
    """``scripts/check_imports.py`` loaded as a module."""
    spec = importlib.util.spec_from_file_location("check_imports", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_imports", module)
    spec.loader.exec_module(module)
    return module


def test_no_module_in_src_crosses_a_boundary(checker: ModuleType) -> None:
    """Every file under src/ passes: faces, sandbox and library keep to their imports."""
    found = [v for path in sorted(checker.ROOT.rglob("*.py")) for v in checker.violations(path)]
    assert found == []


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_each_kind_of_crossing_is_reported(
    checker: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A face importing a private module (lazily or for typing too), sandbox internals or
    another command module; the sandbox importing the client side; the library a face."""
    src = tmp_path / "src"
    _tree(
        src,
        {
            "clore/__init__.py": "",
            "clore/_errors.py": "",
            "clore/_wire/__init__.py": "",
            "clore/market/__init__.py": "",
            "clore/sandbox/__init__.py": "",
            "clore/sandbox/faults.py": "",
            "clore/sandbox/backend/__init__.py": "from clore._errors import X\n",
            "clore/workflows/__init__.py": "from clore.cli import _output\n",
            "clore/cli/__init__.py": "",
            "clore/cli/_output.py": "",
            "clore/cli/_helper.py": "from clore.cli.rent import rent\n",
            "clore/cli/rent.py": (
                "from typing import TYPE_CHECKING\n"
                "from clore.cli._output import json\n"
                "from clore.market import select\n"
                "from clore.sandbox import FAULTS\n"
                "from . import orders\n"
                "if TYPE_CHECKING:\n"
                "    from clore._wire import Order\n"
                "def rent():\n"
                "    from clore.sandbox.faults import FAULTS\n"
                "    import clore._errors\n"
            ),
            "clore/cli/orders.py": "",
        },
    )
    monkeypatch.setattr(checker, "ROOT", src)
    found = sorted(
        _parts(line) for path in sorted(src.rglob("*.py")) for line in checker.violations(path)
    )
    assert found == [
        ("clore.cli._helper", "clore.cli.rent", "no other command module"),
        ("clore.cli.rent", "clore._errors", "no private library module"),
        ("clore.cli.rent", "clore._wire", "no private library module"),
        ("clore.cli.rent", "clore.cli.orders", "no other command module"),
        ("clore.cli.rent", "clore.sandbox.faults", "only the clore.sandbox package"),
        ("clore.sandbox.backend", "clore._errors", "nothing from the client side"),
        ("clore.workflows", "clore.cli", "no face"),
        ("clore.workflows", "clore.cli._output", "no face"),
    ]


def _parts(line: str) -> tuple[str, str, str]:
    """``path:line: A imports B (a face imports no face)`` -> (A, B, what the rule forbids)."""
    what = line.split(": ", 1)[1]
    importer, _, rest = what.partition(" imports ")
    imported, _, reason = rest.partition(" (")
    return importer, imported, reason.rstrip(")").split(" imports ", 1)[1]


def test_the_script_exits_1_listing_violations_and_0_without(
    checker: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``main()`` prints each violation and exits 1; a clean tree exits 0."""
    src = tmp_path / "src"
    _tree(src, {"clore/__init__.py": "", "clore/_wire.py": "", "clore/cli/__init__.py": ""})
    monkeypatch.setattr(checker, "ROOT", src)
    clean = checker.main()
    (src / "clore/cli/market.py").write_text("import clore._wire\n", encoding="utf-8")
    dirty = checker.main()
    out = capsys.readouterr().out
    assert (clean, dirty) == (0, 1)
    assert "src/clore/cli/market.py:1: clore.cli.market imports clore._wire" in out
