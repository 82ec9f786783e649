"""``clore.market``'s public names, and what importing it loads."""

from __future__ import annotations

import subprocess
import sys

import clore.market
from clore.market.models import canonical_model, matches_model


def test_exact_model_helpers_are_public_names_of_the_package() -> None:
    """canonical_model and matches_model are re-exported by clore.market (for faces)."""
    assert (clore.market.canonical_model, clore.market.matches_model) == (
        canonical_model,
        matches_model,
    )
    assert {"canonical_model", "matches_model"} <= set(clore.market.__all__)


def test_importing_the_package_loads_no_io_part() -> None:
    """Importing clore.market loads neither click, msgspec, nor the history or cache."""
    code = (
        "import sys, clore.market\n"
        "names = ('click', 'msgspec', 'sqlite3', 'clore.market.history', 'clore.market.cache')\n"
        "print(','.join(n for n in names if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
