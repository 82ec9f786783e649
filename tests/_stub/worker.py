"""One client process for the two-process pacing test: N calls with pacing, no retries.

Usage: python -m _stub.worker BASE_URL API_KEY CALLS. Prints one JSON line with the
number of calls that succeeded and the errors. ``max_retries=0`` makes any 429 visible.
"""

from __future__ import annotations

import json
import sys

from clore import Clore, CloreError


def main(argv: list[str]) -> int:
    base_url, key, calls = argv[0], argv[1], int(argv[2])
    ok, errors = 0, []
    with Clore(key, base_url=base_url, max_retries=0, timeout=10) as client:
        for _ in range(calls):
            try:
                client.wallets()
                ok += 1
            except CloreError as exc:
                errors.append(type(exc).__name__)
    print(json.dumps({"ok": ok, "errors": errors}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
