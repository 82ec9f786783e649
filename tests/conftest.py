"""Suite-wide isolation: no test reads or writes the user's real config, cache or data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# The public fixtures (sandbox, clore_client, async_clore_client, ...) for every test package.
pytest_plugins = ["clore.testing"]


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, sub in (
        ("CLORE_CONFIG_DIR", "config"),
        ("CLORE_CACHE_DIR", "cache"),
        ("CLORE_DATA_DIR", "data"),
    ):
        monkeypatch.setenv(name, str(tmp_path / "clore-dirs" / sub))
    for name in (
        "CLORE_API_KEY",
        "CLORE_BASE_URL",
        "CLORE_PROFILE",
        "CLORE_PACING",
        "CLORE_PACING_URL",
        "NO_COLOR",
    ):
        monkeypatch.delenv(name, raising=False)
    # The agent server's guards (CLORE_AGENT_*) and --explain are the person's settings.
    for name in [n for n in os.environ if n.startswith("CLORE_AGENT_") or n == "CLORE_EXPLAIN"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield
