"""Where clore keeps files: config (profiles), cache (pacing state, marketplace cache), data.

``CLORE_CONFIG_DIR``, ``CLORE_CACHE_DIR`` and ``CLORE_DATA_DIR`` override the platform
defaults (platformdirs); the test suite points them at temporary directories.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "config_dir", "data_dir"]

_APP = "clore"


def _dir(env: str, kind: str) -> Path:
    override = os.environ.get(env)
    if override:
        return Path(override).expanduser()
    import platformdirs  # imported lazily: keeps `clore --help` fast

    getter = {
        "config": platformdirs.user_config_dir,
        "cache": platformdirs.user_cache_dir,
        "data": platformdirs.user_data_dir,
    }[kind]
    return Path(getter(_APP, appauthor=False))


def config_dir() -> Path:
    """Directory of ``config.toml`` (profiles)."""
    return _dir("CLORE_CONFIG_DIR", "config")


def cache_dir() -> Path:
    """Directory of short-lived state: pacing files, the marketplace cache."""
    return _dir("CLORE_CACHE_DIR", "cache")


def data_dir() -> Path:
    """Directory of lasting data: the sandbox database, workflow state files."""
    return _dir("CLORE_DATA_DIR", "data")
