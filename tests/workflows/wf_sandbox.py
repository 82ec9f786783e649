"""A small in-process sandbox for the workflow end-to-end tests, on a scripted clock.

The market is a handful of servers written as a seed file, so every poll is cheap; the
sandbox and every client share one ``ScriptedClock``, so pacing waits and poll intervals
move simulated time instantly and scripted market events fire at their moment.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wf_fakes import ScriptedClock

from clore._client import Clore
from clore._pacing import Pacing
from clore.sandbox import BASE_URL, Sandbox
from clore.sandbox.dispatch import SandboxRequest, SandboxResponse
from clore.sandbox.transport import SandboxTransport

GPU_4090 = "1x NVIDIA GeForce RTX 4090"
GPU_3090 = "1x NVIDIA GeForce RTX 3090"


def record(sid: int, price: float, spot: float, gpu: str = GPU_4090) -> dict[str, Any]:
    """A marketplace server record (prices per day in bitcoin, mrl 72 h)."""
    return {
        "id": sid,
        "owner": 5000 + sid,
        "mrl": 72,
        "price": {"on_demand": {"bitcoin": price}, "spot": {"bitcoin": spot}},
        "rented": False,
        "specs": {"gpu": gpu, "gpuram": 24, "cpus": "8/16", "ram": 64, "net": {"cc": "US"}},
        "reliability": 0.99,
        "allowed_coins": ["bitcoin"],
    }


#: Two 4090s above the test cap of 0.0002 BTC/day, one 3090 below it.
DEFAULT_SERVERS = [
    record(11, 0.0005, 0.00005),
    record(12, 0.0004, 0.00006),
    record(13, 0.00015, 0.00004, GPU_3090),
]


class Recorder:
    """Wraps the sandbox's handler: remembers (time, path, HTTP status) of every request."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.seen: list[tuple[float, str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, request: SandboxRequest) -> SandboxResponse:
        response = self.sandbox.handle(request)
        with self._lock:
            self.seen.append((self.sandbox.now(), request.path, response.status))
        return response

    def statuses(self, path_end: str = "") -> list[int]:
        return [status for _, path, status in self.seen if path.endswith(path_end)]


class World:
    """A sandbox, its clock, a request recorder, and a way to make clients."""

    def __init__(self, tmp_path: Path, servers: list[dict[str, Any]] | None = None) -> None:
        seed = tmp_path / "seed.json"
        seed.write_text(json.dumps({"servers": servers or DEFAULT_SERVERS}))
        self.clock = ScriptedClock()
        self.sandbox = Sandbox(db=":memory:", seed=str(seed), clock=self.clock)
        self.recorder = Recorder(self.sandbox)

    def client(self, api_key: str | None = None, *, shared: bool = True) -> Clore:
        """A client of the demo user (or ``api_key``); its pacing is shared with every other."""
        return Clore(
            api_key=api_key or self.sandbox.demo_key,
            base_url=BASE_URL,
            transport=SandboxTransport(self.recorder),
            clock=self.clock,
            pacing=Pacing(shared=True) if shared else None,
        )

    def at(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` ``delay`` simulated seconds from now."""
        self.clock.after(delay, action)

    def set_price(self, sid: int, price: float) -> None:
        self.sandbox.set_server(sid, price={"on_demand": {"bitcoin": price}})

    def close(self) -> None:
        self.sandbox.close()
