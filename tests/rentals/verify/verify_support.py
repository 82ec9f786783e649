"""Helpers of the verification suite: real records of the bundled capture, quick options."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from clore.rentals.verify import Target, VerifyOptions
from clore.sandbox.machines import Endpoint

#: ``start_listing(server_id, delivers=..., ...)`` -> (target, endpoint): the conftest's.
StartListing = Callable[..., tuple[Target, Endpoint]]

SNAPSHOT = (
    Path(__file__).resolve().parents[3]
    / "src"
    / "clore"
    / "sandbox"
    / "data"
    / "marketplace-snapshot-2024.json.gz"
)
#: Real records of the capture: 1x RTX 4090 (450 W, PCIe 4 x16, CUDA 12.2, 24 threads,
#: 31.2 GB), 2x RTX 4090 (350 W each, PCIe 2 x8, 32 threads, 63.5 GB), 8x RTX 3090
#: (eight limits from 250 to 265 W, PCIe 2 x1, CUDA 12.4, 16 threads, 15.9 GB).
ONE_GPU, TWO_GPUS, EIGHT_GPUS = 25756, 25718, 25769

PASSWORD = "Verify12345"

#: A one-second load and a small disk test: the checks are the same, the run is short.
QUICK = VerifyOptions(load_seconds=1, disk_mb=8)


@cache
def _records() -> dict[int, dict[str, Any]]:
    with gzip.open(SNAPSHOT, "rt", encoding="utf-8") as handle:
        servers = json.load(handle)["servers"]
    return {server["id"]: server for server in servers}


def snapshot_server(server_id: int) -> dict[str, Any]:
    """The marketplace record of ``server_id`` in the bundled capture."""
    return _records()[server_id]
