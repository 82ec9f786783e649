"""``python -m clore``: the same command line as ``clore``."""

from __future__ import annotations

from clore.cli import main

if __name__ == "__main__":
    main()
